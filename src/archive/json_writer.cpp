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
    // Written by hand (core/json_object_writer.hpp), not through nlohmann::json. details
    // and properties are PostgreSQL's jsonb text, valid JSON as they are.
    std::string& o = m_out;
    o.clear();
    o += m_first ? "\n" : ",\n";
    m_first = false;
    JsonObjectWriter w(o);
    w.str("message_id", m.message_id);
    time_value(w.key("sent_at"), m.sent_at);
    w.str("sender_id", m.sender_id);
    w.str("sender_name", m.sender_name);
    w.boolean("from_owner", m.from_owner);
    w.str("message_type", m.message_type);
    w.str("text", m.content_text);
    w.str("content_raw", m.content_raw);
    w.boolean("edited", m.is_edited);
    time_value(w.key("edited_at"), m.edited_at);
    w.boolean("deleted", m.is_deleted);
    time_value(w.key("deleted_at"), m.deleted_at);
    w.boolean("server_generated", m.is_server_generated);
    w.raw("details", m.details_json.empty() ? std::string_view("null") : m.details_json);
    w.raw("properties", m.properties_json.empty() ? std::string_view("null") : m.properties_json);
    std::string& list = w.key("attachments");
    list += '[';
    for (std::size_t i = 0; i < m.attachments.size(); ++i) {
      const Attachment& a = m.attachments[i];
      if (i) list += ',';
      JsonObjectWriter aw(list);
      aw.key("ordinal") += std::to_string(a.ordinal);
      const auto number = [&aw](std::string_view key, const auto& value) {
        std::string& to = aw.key(key);
        if (value) {
          to += nlohmann::json(*value).dump();  // the shortest text that reads back the same
        } else {
          to += "null";
        }
      };
      aw.str("kind", a.kind);
      aw.str("name", a.name);
      aw.str("content_type", a.content_type);
      aw.str("uri", a.uri);
      aw.str("thumbnail_uri", a.thumbnail_uri);
      aw.str("doc_id", a.doc_id);
      number("size", a.size);
      number("width", a.width);
      number("height", a.height);
      number("duration_seconds", a.duration_seconds);
      aw.str("media_path", a.media_path);
      aw.finish();
    }
    list += ']';
    w.finish();
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
