#include "report.hpp"

#include "core/civil_time.hpp"
#include "core/html_escape.hpp"
#include "core/json_text.hpp"
#include "report_charts.hpp"

#include <algorithm>
#include <cstdio>

namespace skype_etl::detail {
namespace {

std::string number(double value, int decimals = 0) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

/// A JSON value as it reads in a page: strings without their quotes, null as nothing.
std::string shown(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return json_text(value);
}

/// object[key], or null when `object` is not an object or has no such key. (json::value()
/// throws when the key is there with another type, e.g. null: a failed run has nulls.)
const nlohmann::json& member(const nlohmann::json& object, const char* key) {
  static const nlohmann::json null;
  if (!object.is_object()) return null;
  const auto found = object.find(key);
  return found != object.end() ? *found : null;
}

std::string text_of(const nlohmann::json& object, const char* key) {
  return shown(member(object, key));
}

double number_of(const nlohmann::json& object, const char* key, double fallback = 0) {
  const nlohmann::json& value = member(object, key);
  return value.is_number() ? value.get<double>() : fallback;
}

std::uint64_t count_of(const nlohmann::json& object, const char* key) {
  const nlohmann::json& value = member(object, key);
  return value.is_number_integer() ? value.get<std::uint64_t>() : 0;
}

}  // namespace

nlohmann::json summarize_exports(const nlohmann::json& exports) {
  nlohmann::json messages = nlohmann::json::object();
  for (const char* name : k_message_counts) messages[name] = std::uint64_t{0};
  std::uint64_t count = 0, loaded = 0, already = 0, failed = 0, conversations = 0;
  if (exports.is_array()) {
    for (const auto& e : exports) {
      ++count;
      const std::string status = text_of(e, "status");
      loaded += status == "loaded" ? 1 : 0;
      already += status == "already loaded" ? 1 : 0;
      failed += status == "failed" ? 1 : 0;
      conversations += count_of(e, "conversations");
      for (const char* name : k_message_counts)
        messages[name] =
            messages[name].get<std::uint64_t>() + count_of(member(e, "messages"), name);
    }
  }
  return nlohmann::json{{"exports", count},
                        {"loaded", loaded},
                        {"already_loaded", already},
                        {"failed", failed},
                        {"conversations", conversations},
                        {"messages", messages}};
}

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
  const nlohmann::json& statistics = member(run, "statistics");
  const nlohmann::json& phases = member(statistics, "phases");

  struct Bar {
    std::string name;
    double start = 0, end = 0;
    nlohmann::json data;
  };
  std::vector<Bar> bars;
  double origin = -1, finish = -1;
  for (const char* name : {"extract", "transform", "load"}) {
    if (!member(phases, name).is_object()) continue;
    Bar bar;
    bar.name = name;
    bar.data = phases[name];
    bar.start = iso_to_epoch_seconds(text_of(bar.data, "start_time"));
    bar.end = iso_to_epoch_seconds(text_of(bar.data, "end_time"));
    if (bar.start < 0) continue;
    if (bar.end < 0) bar.end = bar.start;  // still running when the run stopped
    if (bar.end < bar.start) bar.end = bar.start;
    origin = origin < 0 ? bar.start : std::min(origin, bar.start);
    finish = std::max(finish, bar.end);
    bars.push_back(bar);
  }
  // The load's steps and the samples share the phases' time axis (the last sample may come
  // after the phases' end).
  const nlohmann::json& exports = member(run, "exports");
  const nlohmann::json& sampling = member(run, "sampling");
  time_range_of(exports, sampling, origin, finish);
  const double span = std::max(finish - origin, 1e-6);
  TimeAxis axis;
  axis.origin = origin;
  axis.span = span;

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
  const bool success = member(run, "success").is_boolean() && run["success"].get<bool>();
  html += "<h1>skype-etl run report</h1>\n<p class=\"" + std::string(success ? "ok" : "failed") +
          "\">" + (success ? "Succeeded" : "Failed: " + escaped(text_of(run, "error"))) + " in " +
          number(number_of(run, "seconds", bars.empty() ? 0 : span), 2) + " s</p>\n";

  // Timeline: one row per phase, x = seconds since the run's first time; under the phases,
  // the load's steps as a Gantt.
  const int width = axis.width, left = axis.left, row = 34, top = 20;
  const double scale = (width - left - axis.right) / span;
  int steps_height = 0;
  const std::string gantt =
      load_steps_gantt(exports, axis, top + row * static_cast<int>(bars.size()) + 8, steps_height);
  const int height = top + row * static_cast<int>(bars.size()) + steps_height + 40;
  html +=
      "<h2>Phases and load steps</h2>\n<svg class=\"timeline\" "
      "xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
      std::to_string(width) + "\" height=\"" + std::to_string(height) +
      "\" role=\"img\" aria-label=\"timeline of the phases and the load's steps\">\n";
  const char* colours[] = {"#4e79a7", "#f28e2b", "#59a14f"};
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const Bar& bar = bars[i];
    const double x = left + (bar.start - origin) * scale;
    const double w = std::max((bar.end - bar.start) * scale, 1.0);
    const int y = top + row * static_cast<int>(i);
    const std::string status = text_of(bar.data, "status");
    html += "<text x=\"0\" y=\"" + std::to_string(y + 18) + "\">" + bar.name + "</text>";
    html += "<rect class=\"phase\" data-phase=\"" + bar.name + "\" x=\"" + number(x, 1) +
            "\" y=\"" + std::to_string(y) + "\" width=\"" + number(w, 1) +
            "\" height=\"24\" fill=\"" + (status == "failed" ? "#b00020" : colours[i % 3]) +
            "\"><title>" + bar.name + ": " + number(bar.start - origin, 3) + " s to " +
            number(bar.end - origin, 3) + " s (" + escaped(status) + ")</title></rect>\n";
  }
  html += gantt;
  html += axis.ticks(top + row * static_cast<int>(bars.size()) + steps_height + 10);
  html += "</svg>\n";

  html +=
      "<table><tr><th>phase</th><th>status</th><th>start (s)</th><th>end (s)</th>"
      "<th>seconds</th><th>conversations</th><th>messages</th><th>messages/s</th></tr>\n";
  for (const Bar& bar : bars) {
    html += "<tr><td>" + bar.name + "</td><td>" + escaped(text_of(bar.data, "status")) +
            "</td><td>" + number(bar.start - origin, 3) + "</td><td>" +
            number(bar.end - origin, 3) + "</td><td>" +
            number(number_of(bar.data, "duration_seconds"), 3) + "</td><td>" +
            escaped(text_of(bar.data, "processed_conversations")) + "</td><td>" +
            escaped(text_of(bar.data, "processed_messages")) + "</td><td>" +
            number(number_of(bar.data, "messages_per_second")) + "</td></tr>\n";
  }
  html += "</table>\n";

  const std::string charts = sample_charts(sampling, axis);
  if (!charts.empty()) html += "<h2>Over time</h2>\n" + charts;

  const nlohmann::json& memory = member(statistics, "memory");
  html +=
      "<h2>Memory</h2>\n<p>Peak private memory (RssAnon): " + escaped(text_of(memory, "peak_mb")) +
      " MB";
  if (!member(memory, "limit_mb").is_null())
    html += " (limit " + escaped(text_of(memory, "limit_mb")) + " MB)";
  html += "</p>\n";

  // Exports: one row each, then the totals, with the console summary's names.
  html +=
      "<h2>Exports</h2>\n<table><tr><th>file</th><th>status</th><th>export</th>"
      "<th>conversations</th>";
  for (const char* name : k_message_counts) {
    std::string heading = name;
    for (char& c : heading)
      if (c == '_') c = ' ';
    html += "<th>" + heading + "</th>";
  }
  html += "</tr>\n";
  auto counts_row = [&html](const std::string& file, const std::string& status,
                            const std::string& export_id, std::uint64_t conversations,
                            const nlohmann::json& messages) {
    html += "<tr data-export=\"" + escaped(file) + "\"><td>" + escaped(file) + "</td><td>" +
            escaped(status) + "</td><td>" + escaped(export_id) +
            "</td><td data-count=\"conversations\">" + std::to_string(conversations) + "</td>";
    for (const char* name : k_message_counts)
      html += "<td data-count=\"" + std::string(name) + "\">" +
              std::to_string(count_of(messages, name)) + "</td>";
    html += "</tr>\n";
  };
  if (exports.is_array()) {
    for (const auto& e : exports)
      counts_row(text_of(e, "file"), text_of(e, "status"), text_of(e, "export_id"),
                 count_of(e, "conversations"), member(e, "messages"));
  }
  const nlohmann::json totals = summarize_exports(exports);
  counts_row("", "total", "", count_of(totals, "conversations"), totals["messages"]);
  html += "</table>\n";

  // Warnings: what was loaded but deserves a look.
  std::string warnings;
  if (exports.is_array()) {
    for (const auto& e : exports) {
      const std::uint64_t invalid = count_of(member(e, "messages"), "invalid_timestamps");
      if (invalid == 0) continue;
      warnings += "<li>" + escaped(text_of(e, "file")) + ": " + std::to_string(invalid) +
                  " message(s) without a valid timestamp, stored with no time";
      const nlohmann::json& first = member(member(e, "transform"), "first_invalid_timestamp");
      if (first.is_object())
        warnings += "; the first in conversation " + escaped(text_of(first, "conversation_id")) +
                    ", message " + escaped(text_of(first, "message_index")) + ", at byte " +
                    escaped(text_of(first, "byte_offset"));
      warnings += "</li>\n";
    }
  }
  if (!warnings.empty()) html += "<h2>Warnings</h2>\n<ul>\n" + warnings + "</ul>\n";

  const nlohmann::json& errors = member(statistics, "errors");
  if (errors.is_array() && !errors.empty()) {
    html += "<h2>Errors</h2>\n<ul>\n";
    for (const auto& e : errors)
      html += "<li class=\"failed\">" + escaped(text_of(e, "phase")) + ": " +
              escaped(text_of(e, "error_type")) + ": " + escaped(text_of(e, "error_message")) +
              "</li>\n";
    html += "</ul>\n";
  }
  html += "<h2>Statistics</h2>\n<pre>" + escaped(json_text(statistics, 2)) + "</pre>\n";
  html += "</body></html>\n";
  return html;
}

}  // namespace skype_etl::detail
