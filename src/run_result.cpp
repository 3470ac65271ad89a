#include "skype_etl/result.hpp"

namespace skype_etl {
namespace {

std::uint64_t count(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::string text(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

ExportOutcome outcome_of(const nlohmann::json& entry) {
  ExportOutcome o;
  o.file = text(entry, "file");
  o.status = text(entry, "status");
  if (const auto id = entry.find("export_id"); id != entry.end() && id->is_number_integer())
    o.export_id = id->get<std::int64_t>();
  o.account_id = text(entry, "account_id");
  o.user_id = text(entry, "user_id");
  o.conversations = count(entry, "conversations");
  const nlohmann::json messages = entry.value("messages", nlohmann::json::object());
  o.messages.read = count(messages, "read");
  o.messages.inserted = count(messages, "new");
  o.messages.updated = count(messages, "updated");
  o.messages.unchanged = count(messages, "unchanged");
  o.messages.superseded = count(messages, "superseded");
  o.messages.skipped = count(messages, "skipped");
  o.messages.failed = count(messages, "failed");
  o.messages.invalid_timestamps = count(messages, "invalid_timestamps");
  o.error = text(entry, "error");
  if (const auto code = entry.find("exit_code"); code != entry.end() && code->is_number_integer())
    o.exit_code = code->get<int>();
  o.statistics = entry;
  return o;
}

}  // namespace

nlohmann::json RunResult::to_json() const {
  nlohmann::json json{{"success", success}, {"exit_code", exit_code}, {"stopped", stopped}};
  if (!error.empty() || !success) {
    json["error"] = error;
    json["error_type"] = error_type;
  }
  json["exports"] = nlohmann::json::array();
  for (const ExportOutcome& e : exports) json["exports"].push_back(e.statistics);
  json["phases"] = nlohmann::json::object();
  for (const auto& [name, p] : phases)
    json["phases"][name] = {{"status", p.status},
                            {"start_time", p.start_time},
                            {"end_time", p.end_time},
                            {"duration_seconds", p.duration_seconds},
                            {"conversations_processed", p.conversations},
                            {"messages_processed", p.messages}};
  return json;
}

RunResult RunResult::from_json(const nlohmann::json& json) {
  RunResult r;
  r.success = json.value("success", false);
  r.exit_code = json.value("exit_code", 0);
  r.error = text(json, "error");
  r.error_type = text(json, "error_type");
  r.stopped = json.value("stopped", false);
  if (const auto exports = json.find("exports"); exports != json.end() && exports->is_array())
    for (const auto& entry : *exports) r.exports.push_back(outcome_of(entry));
  if (const auto phases = json.find("phases"); phases != json.end() && phases->is_object())
    for (const auto& [name, p] : phases->items()) {
      PhaseResult phase;
      phase.status = text(p, "status");
      phase.start_time = text(p, "start_time");
      phase.end_time = text(p, "end_time");
      phase.duration_seconds = p.contains("duration_seconds") && p["duration_seconds"].is_number()
                                   ? p["duration_seconds"].get<double>()
                                   : 0.0;
      phase.conversations = count(p, "conversations_processed");
      phase.messages = count(p, "messages_processed");
      r.phases.emplace(name, std::move(phase));
    }
  return r;
}

}  // namespace skype_etl
