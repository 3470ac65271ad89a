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

nlohmann::json stored_json(const std::string& text) {
  if (text.empty()) return nullptr;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(text) : j;
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
    nlohmann::json attachments = nlohmann::json::array();
    for (const Attachment& a : m.attachments) {
      nlohmann::json j = {{"ordinal", a.ordinal},
                          {"kind", a.kind},
                          {"name", a.name},
                          {"content_type", a.content_type},
                          {"uri", a.uri},
                          {"thumbnail_uri", a.thumbnail_uri},
                          {"doc_id", a.doc_id},
                          {"size", nullptr},
                          {"width", nullptr},
                          {"height", nullptr},
                          {"duration_seconds", nullptr},
                          {"media_path", a.media_path}};
      if (a.size) j["size"] = *a.size;
      if (a.width) j["width"] = *a.width;
      if (a.height) j["height"] = *a.height;
      if (a.duration_seconds) j["duration_seconds"] = *a.duration_seconds;
      attachments.push_back(std::move(j));
    }
    const nlohmann::json j = {{"message_id", m.message_id},
                              {"sent_at", time_json(m.sent_at)},
                              {"sender_id", m.sender_id},
                              {"sender_name", m.sender_name},
                              {"from_owner", m.from_owner},
                              {"message_type", m.message_type},
                              {"text", m.content_text},
                              {"content_raw", m.content_raw},
                              {"edited", m.is_edited},
                              {"edited_at", time_json(m.edited_at)},
                              {"deleted", m.is_deleted},
                              {"deleted_at", time_json(m.deleted_at)},
                              {"server_generated", m.is_server_generated},
                              {"details", stored_json(m.details_json)},
                              {"properties", stored_json(m.properties_json)},
                              {"attachments", std::move(attachments)}};
    m_file->write(m_first ? "\n" : ",\n");
    m_first = false;
    m_file->write(j.dump(-1, ' ', false, k_dump));
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
};

}  // namespace

std::unique_ptr<ArchiveWriter> make_json_writer(const std::filesystem::path& dir) {
  return std::make_unique<JsonWriter>(dir);
}

}  // namespace skype_etl::detail::archive
