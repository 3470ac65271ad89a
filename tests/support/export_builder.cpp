#include "support/export_builder.hpp"

#include <algorithm>

namespace skype_etl::test {

std::string message_json(const std::string& id, const std::string& content_escaped,
                         const std::string& extra_members) {
  // A member of extra_members replaces the default of its key: the reader refuses a key
  // given twice.
  const auto overridden = [&](const std::string& key) {
    const std::string member = "\"" + key + "\":";
    return extra_members.compare(0, member.size(), member) == 0 ||
           extra_members.find("," + member) != std::string::npos;
  };
  std::string m = "{\"id\":\"" + id + "\"";
  const auto add = [&](const std::string& key, const std::string& value) {
    if (!overridden(key)) m += ",\"" + key + "\":" + value;
  };
  add("displayName", "\"Tester\"");
  add("originalarrivaltime", "\"2024-01-02T03:04:05.678Z\"");
  add("messagetype", "\"RichText\"");
  add("version", "1700000000000.0");
  add("content", "\"" + content_escaped + "\"");
  add("from", "\"8:tester\"");
  if (!extra_members.empty()) m += "," + extra_members;
  return m + "}";
}

std::string conversation_json(const std::string& id, const std::vector<std::string>& messages,
                              const std::string& extra_members) {
  std::string c = "{\"id\":\"" + id + "\",\"displayName\":null,\"version\":1.0,";
  if (!extra_members.empty()) c += extra_members + ",";
  c += "\"MessageList\":[";
  for (std::size_t i = 0; i < messages.size(); ++i) c += (i ? "," : "") + messages[i];
  return c + "]}";
}

std::string export_json(const std::vector<std::string>& conversations, const std::string& user_id) {
  std::string e =
      "{\"userId\":\"" + user_id + "\",\"exportDate\":\"2025-04-30T10:13\",\"conversations\":[";
  for (std::size_t i = 0; i < conversations.size(); ++i) e += (i ? ",\n" : "\n") + conversations[i];
  return e + "]}\n";
}

std::string numbered_conversation(const std::string& id, int count, const std::string& prefix) {
  std::vector<std::string> messages;
  messages.reserve(static_cast<std::size_t>(count));
  for (int i = count; i >= 1; --i)  // newest first, as Skype writes them
    messages.push_back(message_json(prefix + std::to_string(i), "message " + std::to_string(i)));
  return conversation_json(id, messages);
}

std::optional<std::vector<std::filesystem::path>> shared_sample_exports() {
  const std::filesystem::path samples =
      std::filesystem::path(SKYPE_ETL_SOURCE_DIR) / ".." / "shared" / "samples";
  if (!std::filesystem::exists(samples)) return std::nullopt;
  std::vector<std::filesystem::path> exports;
  for (const auto& entry : std::filesystem::directory_iterator(samples)) {
    const std::string name = entry.path().filename().string();
    if (name.find("messages") != std::string::npos && entry.path().extension() == ".json")
      exports.push_back(entry.path());
  }
  std::sort(exports.begin(), exports.end());
  return exports;
}

}  // namespace skype_etl::test
