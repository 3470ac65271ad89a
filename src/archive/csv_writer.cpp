// csv: RFC 4180. One file per conversation (a header row, then a row per message) and
// conversations.csv. A field containing a comma, a double quote, CR or LF is quoted, its
// quotes doubled; rows end in CRLF. Text is as stored (UTF-8, newlines kept), times UTC.
#include <optional>

#include "archive/writers.hpp"

namespace skype_etl::detail::archive {
namespace {

void field(std::string& row, std::string_view value, bool first = false) {
  if (!first) row += ',';
  if (value.find_first_of(",\"\r\n") == std::string_view::npos) {
    row.append(value);
    return;
  }
  row += '"';
  for (char c : value) {
    if (c == '"') row += '"';
    row += c;
  }
  row += '"';
}

std::string time_field(const std::optional<Micros>& at) {
  return at ? utc_iso(*at) : std::string();
}

class CsvWriter final : public ArchiveWriter {
 public:
  explicit CsvWriter(std::filesystem::path dir) : m_dir(std::move(dir)) {}

  void begin(const std::vector<Conversation>& conversations) override {
    OutputFile index(m_dir / "conversations.csv");
    index.write(
        "file,conversation_id,type,name,topic,participants,messages,first_message_at,"
        "last_message_at\r\n");
    for (const Conversation& c : conversations) {
      std::string row;
      field(row, c.file_stem + ".csv", true);
      field(row, c.conversation_id);
      field(row, c.type);
      field(row, c.display_name);
      field(row, c.topic);
      std::string people;
      for (std::size_t i = 0; i < c.participants.size(); ++i)
        people += (i ? "; " : "") + c.participants[i].id;
      field(row, people);
      field(row, std::to_string(c.message_count));
      field(row, time_field(c.first_message_at));
      field(row, time_field(c.last_message_at));
      row += "\r\n";
      index.write(row);
    }
    index.close();
  }

  void begin_conversation(const Conversation& c) override {
    m_file.emplace(m_dir / (c.file_stem + ".csv"));
    m_file->write(
        "message_id,sent_at,local_time,sender_id,sender_name,message_type,text,edited,"
        "edited_at,deleted,attachments\r\n");
  }

  void message(const Message& m) override {
    m_row.clear();
    field(m_row, m.message_id, true);
    field(m_row, time_field(m.sent_at));
    field(m_row, m.sent_at ? local_minute(*m.sent_at) : std::string());
    field(m_row, m.sender_id);
    field(m_row, m.sender_name);
    field(m_row, m.message_type);
    field(m_row, m.content_text);
    field(m_row, m.is_edited ? "true" : "false");
    field(m_row, time_field(m.edited_at));
    field(m_row, m.is_deleted ? "true" : "false");
    std::string attachments;
    for (std::size_t i = 0; i < m.attachments.size(); ++i) {
      const Attachment& a = m.attachments[i];
      attachments += (i ? "; " : "") + (a.name.empty() ? a.kind : a.name);
      if (!a.media_path.empty()) attachments += " (" + a.media_path + ")";
    }
    field(m_row, attachments);
    m_row += "\r\n";
    m_file->write(m_row);
  }

  void end_conversation() override {
    m_file->close();
    m_file.reset();
  }

  void finish(const Statistics&) override {}

 private:
  std::filesystem::path m_dir;
  std::optional<OutputFile> m_file;
  std::string m_row;
};

}  // namespace

std::unique_ptr<ArchiveWriter> make_csv_writer(const std::filesystem::path& dir) {
  return std::make_unique<CsvWriter>(dir);
}

}  // namespace skype_etl::detail::archive
