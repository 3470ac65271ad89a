#include "report.hpp"

#include "core/civil_time.hpp"

#include <algorithm>
#include <cstdio>

namespace skype_etl::detail {
namespace {

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string number(double value, int decimals = 0) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string json_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

}  // namespace

double iso_to_epoch_seconds(const std::string& text) noexcept {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0;
  double second = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf", &year, &month, &day, &hour, &minute,
                  &second) != 6)
    return -1;
  if (month < 1 || month > 12 || day < 1 || day > 31) return -1;
  const auto days = static_cast<double>(
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)));
  return days * 86400 + hour * 3600 + minute * 60 + second;
}

std::string render_html_report(const nlohmann::json& run) {
  const nlohmann::json statistics = run.value("statistics", nlohmann::json::object());
  const nlohmann::json phases = statistics.value("phases", nlohmann::json::object());

  struct Bar {
    std::string name;
    double start = 0, end = 0;
    nlohmann::json data;
  };
  std::vector<Bar> bars;
  double origin = -1, finish = -1;
  for (const char* name : {"extract", "transform", "load"}) {
    if (!phases.contains(name)) continue;
    Bar bar;
    bar.name = name;
    bar.data = phases[name];
    bar.start = iso_to_epoch_seconds(bar.data.value("start_time", ""));
    bar.end = iso_to_epoch_seconds(bar.data.value("end_time", ""));
    if (bar.start < 0) continue;
    if (bar.end < bar.start) bar.end = bar.start;
    origin = origin < 0 ? bar.start : std::min(origin, bar.start);
    finish = std::max(finish, bar.end);
    bars.push_back(bar);
  }
  const double span = std::max(finish - origin, 1e-6);

  std::string html;
  html +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>skype-etl run report</title><style>"
      "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
      "table{border-collapse:collapse;margin:1em 0}"
      "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
      "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
      ".ok{color:#176f2c}.failed{color:#b00020}"
      "</style></head><body>\n";
  const bool success = run.value("success", false);
  html += "<h1>skype-etl run report</h1>\n<p class=\"" + std::string(success ? "ok" : "failed") +
          "\">" + (success ? "Succeeded" : "Failed: " + escape_html(run.value("error", ""))) +
          " in " + number(run.value("seconds", span), 2) + " s</p>\n";

  // Timeline: one row per phase, x = seconds since the first phase started.
  const int width = 900, left = 90, row = 34, top = 20;
  const int height = top + row * static_cast<int>(bars.size()) + 40;
  const double scale = (width - left - 20) / span;
  html += "<h2>Phases</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
          std::to_string(width) + "\" height=\"" + std::to_string(height) +
          "\" role=\"img\" aria-label=\"timeline of the phases\">\n";
  const char* colours[] = {"#4e79a7", "#f28e2b", "#59a14f"};
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const Bar& bar = bars[i];
    const double x = left + (bar.start - origin) * scale;
    const double w = std::max((bar.end - bar.start) * scale, 1.0);
    const int y = top + row * static_cast<int>(i);
    const std::string status = bar.data.value("status", "");
    html += "<text x=\"0\" y=\"" + std::to_string(y + 18) + "\">" + bar.name + "</text>";
    html += "<rect class=\"phase\" data-phase=\"" + bar.name + "\" x=\"" + number(x, 1) +
            "\" y=\"" + std::to_string(y) + "\" width=\"" + number(w, 1) +
            "\" height=\"24\" fill=\"" + (status == "failed" ? "#b00020" : colours[i % 3]) +
            "\"><title>" + bar.name + ": " + number(bar.start - origin, 3) + " s to " +
            number(bar.end - origin, 3) + " s (" + escape_html(status) + ")</title></rect>\n";
  }
  const int axis = top + row * static_cast<int>(bars.size()) + 10;
  html += "<line x1=\"" + std::to_string(left) + "\" y1=\"" + std::to_string(axis) + "\" x2=\"" +
          std::to_string(width - 20) + "\" y2=\"" + std::to_string(axis) + "\" stroke=\"#888\"/>\n";
  for (int tick = 0; tick <= 10; ++tick) {
    const double x = left + (width - left - 20) * tick / 10.0;
    html += "<text x=\"" + number(x - 10, 1) + "\" y=\"" + std::to_string(axis + 18) +
            "\" font-size=\"11\">" + number(span * tick / 10.0, span < 10 ? 2 : 1) + "s</text>";
  }
  html += "\n</svg>\n";

  html +=
      "<table><tr><th>phase</th><th>status</th><th>start (s)</th><th>end (s)</th>"
      "<th>seconds</th><th>conversations</th><th>messages</th><th>messages/s</th></tr>\n";
  for (const Bar& bar : bars) {
    html += "<tr><td>" + bar.name + "</td><td>" + escape_html(bar.data.value("status", "")) +
            "</td><td>" + number(bar.start - origin, 3) + "</td><td>" +
            number(bar.end - origin, 3) + "</td><td>" +
            number(bar.data.value("duration_seconds", 0.0), 3) + "</td><td>" +
            json_text(bar.data.value("processed_conversations", nlohmann::json())) + "</td><td>" +
            json_text(bar.data.value("processed_messages", nlohmann::json())) + "</td><td>" +
            number(bar.data.value("messages_per_second", 0.0)) + "</td></tr>\n";
  }
  html += "</table>\n";

  const nlohmann::json memory = statistics.value("memory", nlohmann::json::object());
  html += "<h2>Memory</h2>\n<p>Peak private memory (RssAnon): " +
          escape_html(json_text(memory.value("peak_mb", nlohmann::json()))) + " MB";
  if (memory.contains("limit_mb") && !memory["limit_mb"].is_null())
    html += " (limit " + escape_html(json_text(memory["limit_mb"])) + " MB)";
  html += "</p>\n";

  html +=
      "<h2>Exports</h2>\n<table><tr><th>file</th><th>status</th><th>export</th>"
      "<th>conversations</th><th>messages</th></tr>\n";
  for (const auto& e : run.value("exports", nlohmann::json::array())) {
    html += "<tr><td>" + escape_html(e.value("file", "")) + "</td><td>" +
            escape_html(e.value("status", "")) + "</td><td>" +
            json_text(e.value("export_id", nlohmann::json())) + "</td><td>" +
            json_text(e.value("conversations", nlohmann::json())) + "</td><td>" +
            json_text(e.value("messages", nlohmann::json())) + "</td></tr>\n";
  }
  html += "</table>\n";

  const nlohmann::json errors = statistics.value("errors", nlohmann::json::array());
  if (!errors.empty()) {
    html += "<h2>Errors</h2>\n<ul>\n";
    for (const auto& e : errors)
      html += "<li class=\"failed\">" + escape_html(e.value("phase", "")) + ": " +
              escape_html(e.value("error_type", "")) + ": " +
              escape_html(e.value("error_message", "")) + "</li>\n";
    html += "</ul>\n";
  }
  html += "<h2>Statistics</h2>\n<pre>" + escape_html(statistics.dump(2)) + "</pre>\n";
  html += "</body></html>\n";
  return html;
}

}  // namespace skype_etl::detail
