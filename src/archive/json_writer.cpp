// json: `<file_stem>.json` per conversation, {"conversation": {...}, "messages": [...]},
// written a message at a time; `index.json` with every conversation and the statistics.
// details and properties are the stored JSON objects; times are UTC ISO strings.
#include <optional>

#include "archive/writers.hpp"

namespace skype_etl::detail::archive {
namespace {

nlohmann::json time_json(const std::optional<Micros>& at) {
  return at ? nlohmann::json(utc_iso(*at)) : nlohmann::json(nullptr);
}

nlohmann::json conversation_json(const Conversation& c) {
  nlohmann::json people = nlohmann::json::array();
  for (const Participant& p : c.participants)
    people.push_back({{"id", p.id}, {"name", p.display_name}, {"is_owner", p.is_owner}});
  return {{"file", c.file_stem + ".json"},
          {"account_id", c.account_id},
          {"conversation_id", c.conversation_id},
          {"type", c.type},
          {"name", c.display_name},
          {"topic", c.topic},
          {"participants", std::move(people)},
          {"message_count", c.message_count},
          {"first_message_at", time_json(c.first_message_at)},
          {"last_message_at", time_json(c.last_message_at)}};
}

void time_value(std::string& out, const std::optional<Micros>& at) {
  if (at) {
    out += '"';
    out += utc_iso(*at);
    out += '"';
  } else {
    out += "null";
  }
}

constexpr auto k_dump = nlohmann::json::error_handler_t::replace;

class JsonWriter final : public ArchiveWriter {
 public:
  explicit JsonWriter(std::filesystem::path dir) : m_dir(std::move(dir)) {}

  void begin(const std::vector<Conversation>& conversations) override {
    m_conversations = &conversations;
  }

  void begin_conversation(const Conversation& c) override {
    m_file.emplace(m_dir / (c.file_stem + ".json"));
    m_file->write("{\"conversation\": " + conversation_json(c).dump(-1, ' ', false, k_dump) +
                  ",\n\"messages\": [");
    m_first = true;
  }

  void message(const Message& m) override {
    // Written by hand, not through nlohmann::json: a million messages' objects built and
    // dumped took four times the CPU of the txt format. details and properties are
    // PostgreSQL's jsonb text, valid JSON as they are.
    std::string& o = m_out;
    o.clear();
    o += m_first ? "\n" : ",\n";
    m_first = false;
    o += "{\"message_id\":";
    append_json_string(o, m.message_id);
    o += ",\"sent_at\":";
    time_value(o, m.sent_at);
    o += ",\"sender_id\":";
    append_json_string(o, m.sender_id);
    o += ",\"sender_name\":";
    append_json_string(o, m.sender_name);
    o += m.from_owner ? ",\"from_owner\":true" : ",\"from_owner\":false";
    o += ",\"message_type\":";
    append_json_string(o, m.message_type);
    o += ",\"text\":";
    append_json_string(o, m.content_text);
    o += ",\"content_raw\":";
    append_json_string(o, m.content_raw);
    o += m.is_edited ? ",\"edited\":true" : ",\"edited\":false";
    o += ",\"edited_at\":";
    time_value(o, m.edited_at);
    o += m.is_deleted ? ",\"deleted\":true" : ",\"deleted\":false";
    o += ",\"deleted_at\":";
    time_value(o, m.deleted_at);
    o += m.is_server_generated ? ",\"server_generated\":true" : ",\"server_generated\":false";
    o += ",\"details\":";
    o += m.details_json.empty() ? std::string_view("null") : std::string_view(m.details_json);
    o += ",\"properties\":";
    o += m.properties_json.empty() ? std::string_view("null") : std::string_view(m.properties_json);
    o += ",\"attachments\":[";
    for (std::size_t i = 0; i < m.attachments.size(); ++i) {
      const Attachment& a = m.attachments[i];
      o += i ? ",{\"ordinal\":" : "{\"ordinal\":";
      o += std::to_string(a.ordinal);
      const auto text = [&o](const char* key, const std::string& value) {
        o += key;
        append_json_string(o, value);
      };
      const auto number = [&o](const char* key, const auto& value) {
        o += key;
        if (value) {
          o += nlohmann::json(*value).dump();  // the shortest text that reads back the same
        } else {
          o += "null";
        }
      };
      text(",\"kind\":", a.kind);
      text(",\"name\":", a.name);
      text(",\"content_type\":", a.content_type);
      text(",\"uri\":", a.uri);
      text(",\"thumbnail_uri\":", a.thumbnail_uri);
      text(",\"doc_id\":", a.doc_id);
      number(",\"size\":", a.size);
      number(",\"width\":", a.width);
      number(",\"height\":", a.height);
      number(",\"duration_seconds\":", a.duration_seconds);
      text(",\"media_path\":", a.media_path);
      o += '}';
    }
    o += "]}";
    m_file->write(o);
  }

  void end_conversation() override {
    m_file->write("\n]}\n");
    m_file->close();
    m_file.reset();
  }

  void finish(const Statistics& statistics) override {
    nlohmann::json index;
    nlohmann::json list = nlohmann::json::array();
    if (m_conversations)
      for (const Conversation& c : *m_conversations) list.push_back(conversation_json(c));
    index["conversations"] = std::move(list);
    index["statistics"] = statistics_json(statistics);
    OutputFile file(m_dir / "index.json");
    file.write(index.dump(1, ' ', false, k_dump) + "\n");
    file.close();
  }

 private:
  std::filesystem::path m_dir;
  std::optional<OutputFile> m_file;
  const std::vector<Conversation>* m_conversations = nullptr;
  bool m_first = true;
  std::string m_out;
};

}  // namespace

std::unique_ptr<ArchiveWriter> make_json_writer(const std::filesystem::path& dir) {
  return std::make_unique<JsonWriter>(dir);
}

}  // namespace skype_etl::detail::archive
