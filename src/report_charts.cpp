#include "report_charts.hpp"

#include "core/html_escape.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

namespace skype_etl::detail {
namespace {

std::string number(double value, int decimals = 1) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

double number_in(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return 0;
  const auto found = object.find(key);
  return found != object.end() && found->is_number() ? found->get<double>() : 0;
}

std::string string_in(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return "";
  const auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

const nlohmann::json& array_in(const nlohmann::json& object, const char* key) {
  static const nlohmann::json empty = nlohmann::json::array();
  if (!object.is_object()) return empty;
  const auto found = object.find(key);
  return found != object.end() && found->is_array() ? *found : empty;
}

const nlohmann::json& steps_of(const nlohmann::json& e) {
  static const nlohmann::json null;
  if (!e.is_object()) return null;
  const auto load = e.find("load");
  return load != e.end() ? array_in(*load, "steps") : array_in(null, "steps");
}

/// The colour of a load step, the same for one name wherever it is.
const char* step_colour(const std::string& name) {
  static const char* palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  std::size_t hash = 0;
  for (char c : name) hash = hash * 31 + static_cast<unsigned char>(c);
  return palette[hash % (sizeof palette / sizeof *palette)];
}

struct Series {
  std::string name;
  const char* colour;
  std::vector<std::pair<double, double>> points;  // (epoch seconds, value)
  bool dashed = false;
};

/// One line chart: `series` against time, y from 0 to the largest value (or `y_max`).
std::string line_chart(const char* id, const std::string& title, const std::string& unit,
                       const std::vector<Series>& series, const TimeAxis& axis) {
  const int height = 190, top = 24, plot = 130;
  double y_max = 0;
  for (const Series& s : series)
    for (const auto& [t, v] : s.points) y_max = std::max(y_max, v);
  // Up to a round number (1, 2, 2.5 or 5 times a power of ten), so the grid's labels are.
  double step = 1;
  while (step * 10 < y_max) step *= 10;
  while (step > 1e-3 && step / 10 >= y_max) step /= 10;
  for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (step * m >= y_max) {
      y_max = step * m;
      break;
    }
  if (y_max <= 0) y_max = 1;
  auto y = [&](double v) { return top + plot - v / y_max * plot; };
  std::string svg = "<h3>" + escaped(title) + "</h3>\n<svg class=\"chart\" data-chart=\"" + id +
                    "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    std::to_string(axis.width) + "\" height=\"" + std::to_string(height) +
                    "\" role=\"img\" aria-label=\"" + escaped(title) + "\">\n";
  for (int k = 0; k <= 4; ++k) {
    const double v = y_max * k / 4;
    svg += "<line x1=\"" + std::to_string(axis.left) + "\" x2=\"" +
           std::to_string(axis.width - axis.right) + "\" y1=\"" + number(y(v)) + "\" y2=\"" +
           number(y(v)) + "\" stroke=\"#e4e4e4\"/><text x=\"" + std::to_string(axis.left - 6) +
           "\" y=\"" + number(y(v) + 4) + "\" font-size=\"11\" text-anchor=\"end\">" +
           number(v, v >= 100 || v == 0 ? 0 : 1) + "</text>";
  }
  svg += "<text x=\"0\" y=\"12\" font-size=\"11\">" + escaped(unit) + "</text>\n";
  double legend_x = axis.left;
  for (const Series& s : series) {
    std::string d;
    for (const auto& [t, v] : s.points)
      d += (d.empty() ? "M" : " L") + number(axis.x(t)) + "," + number(y(v));
    if (d.empty()) continue;
    svg += "<path data-series=\"" + escaped(s.name) + "\" d=\"" + d + "\" fill=\"none\" stroke=\"" +
           s.colour + "\" stroke-width=\"1.5\"" + (s.dashed ? " stroke-dasharray=\"5,4\"" : "") +
           "/>\n";
    svg += "<rect x=\"" + number(legend_x) + "\" y=\"4\" width=\"10\" height=\"10\" fill=\"" +
           s.colour + "\"/><text x=\"" + number(legend_x + 14) + "\" y=\"13\" font-size=\"11\">" +
           escaped(s.name) + "</text>";
    legend_x += 24 + 7.0 * static_cast<double>(s.name.size());
  }
  svg += axis.ticks(top + plot) + "</svg>\n";
  return svg;
}

}  // namespace

double TimeAxis::x(double epoch_seconds) const {
  const double scale = (width - left - right) / std::max(span, 1e-6);
  return left + std::clamp(epoch_seconds - origin, 0.0, span) * scale;
}

std::string TimeAxis::ticks(int y) const {
  std::string svg = "<line x1=\"" + std::to_string(left) + "\" y1=\"" + std::to_string(y) +
                    "\" x2=\"" + std::to_string(width - right) + "\" y2=\"" + std::to_string(y) +
                    "\" stroke=\"#888\"/>\n";
  for (int tick = 0; tick <= 10; ++tick) {
    const double at = left + (width - left - right) * tick / 10.0;
    svg += "<text x=\"" + number(at - 10) + "\" y=\"" + std::to_string(y + 16) +
           "\" font-size=\"11\">" + number(span * tick / 10.0, span < 10 ? 2 : 1) + "s</text>";
  }
  return svg + "\n";
}

void time_range_of(const nlohmann::json& exports, const nlohmann::json& sampling, double& first,
                   double& last) {
  auto widen = [&](double start, double end) {
    if (start <= 0) return;
    first = first < 0 ? start : std::min(first, start);
    last = std::max(last, std::max(start, end));
  };
  if (exports.is_array())
    for (const auto& e : exports)
      for (const auto& step : steps_of(e))
        widen(number_in(step, "start_us") / 1e6, number_in(step, "end_us") / 1e6);
  for (const auto& sample : array_in(sampling, "samples")) {
    const double t = number_in(sample, "time_us") / 1e6;
    widen(t, t);
  }
}

std::string load_steps_gantt(const nlohmann::json& exports, const TimeAxis& axis, int top,
                             int& height) {
  if (!exports.is_array()) return "";
  // One row per step name and connection, in the order they first ran.
  std::map<std::pair<std::string, std::int64_t>, int> rows;
  std::string bars, labels;
  const int row = 18;
  for (const auto& e : exports) {
    const std::string file = string_in(e, "file");
    for (const auto& step : steps_of(e)) {
      const std::string name = string_in(step, "step");
      const auto connection = static_cast<std::int64_t>(number_in(step, "connection"));
      auto [found, added] = rows.emplace(std::make_pair(name, connection), rows.size());
      const int y = top + row * found->second;
      if (added)
        labels += "<text x=\"0\" y=\"" + std::to_string(y + 12) + "\" font-size=\"11\">" +
                  escaped(name) + (connection > 0 ? " #" + std::to_string(connection) : "") +
                  "</text>";
      const double start = number_in(step, "start_us") / 1e6;
      const double end = std::max(start, number_in(step, "end_us") / 1e6);
      const double x = axis.x(start);
      const double w = std::max(axis.x(end) - x, 1.0);
      const std::string detail = string_in(step, "detail");
      bars += "<rect class=\"step\" data-step=\"" + escaped(name) + "\" x=\"" + number(x) +
              "\" y=\"" + std::to_string(y) + "\" width=\"" + number(w) +
              "\" height=\"14\" fill=\"" + step_colour(name) + "\"><title>" + escaped(file) + ": " +
              escaped(name) + (detail.empty() ? "" : " (" + escaped(detail) + ")") +
              (connection > 0 ? " on stream " + std::to_string(connection) : "") + ", " +
              number(start - axis.origin, 3) + " s to " + number(end - axis.origin, 3) + " s (" +
              number(end - start, 3) + " s)</title></rect>\n";
    }
  }
  if (rows.empty()) return "";
  height += row * static_cast<int>(rows.size()) + 6;
  return "<line x1=\"0\" x2=\"" + std::to_string(axis.width - axis.right) + "\" y1=\"" +
         std::to_string(top - 4) + "\" y2=\"" + std::to_string(top - 4) + "\" stroke=\"#ccc\"/>\n" +
         labels + "\n" + bars;
}

std::string sample_charts(const nlohmann::json& sampling, const TimeAxis& axis) {
  const nlohmann::json& samples = array_in(sampling, "samples");
  if (samples.size() < 2) return "";
  std::vector<Series> rates{
      {"extract", "#4e79a7", {}}, {"transform", "#f28e2b", {}}, {"load", "#59a14f", {}}};
  Series in_flight{"batches in flight", "#4e79a7", {}};
  Series limit{"limiter bound", "#b00020", {}, true};
  Series memory{"private memory (RssAnon)", "#b07aa1", {}};
  Series memory_limit{"--memory-limit-mb", "#b00020", {}, true};
  const double bound = number_in(sampling, "batches_in_flight_limit");
  const double memory_limit_mb = number_in(sampling, "memory_limit_mb");
  const char* phases[] = {"extract", "transform", "load"};
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const nlohmann::json& s = samples[i];
    const double t = number_in(s, "time_us") / 1e6;
    if (i > 0) {
      const nlohmann::json& p = samples[i - 1];
      const double dt = t - number_in(p, "time_us") / 1e6;
      for (std::size_t k = 0; k < 3; ++k) {
        // A phase's count restarts (at 0) when it starts again: no negative rates.
        const double d = number_in(s, phases[k]) - number_in(p, phases[k]);
        rates[k].points.emplace_back(t, dt > 0 && d > 0 ? d / dt : 0);
      }
    } else {
      for (auto& r : rates) r.points.emplace_back(t, 0);
    }
    in_flight.points.emplace_back(t, number_in(s, "batches_in_flight"));
    if (bound > 0) limit.points.emplace_back(t, bound);
    memory.points.emplace_back(t, number_in(s, "rss_anon_mb"));
    if (memory_limit_mb > 0) memory_limit.points.emplace_back(t, memory_limit_mb);
  }
  std::vector<Series> memory_series{memory};
  if (!memory_limit.points.empty()) memory_series.push_back(memory_limit);
  std::string html;
  html += line_chart("rates", "Messages per second, per phase", "messages/s", rates, axis);
  html += line_chart("in_flight", "Batches in flight and the limiter's bound", "batches",
                     {in_flight, limit}, axis);
  html += line_chart("memory", "Private memory", "MB", memory_series, axis);
  return html;
}

}  // namespace skype_etl::detail
