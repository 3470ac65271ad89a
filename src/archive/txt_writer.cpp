// txt: one file per conversation, a line per message:
//   [2023-11-14 22:13] Bob: text
//     continuation lines of a multi-line text, indented by two spaces
//   [2023-11-14 22:14] [Alice added Bob]           (system events in brackets)
// Times are local; text is cleaned of control characters (clean_text) so that a file can be
// shown on a terminal safely.
#include <optional>

#include "archive/writers.hpp"

namespace skype_etl::detail::archive {
namespace {

std::string one_line(std::string_view text) {
  std::string out = clean_text(text);
  for (char& c : out)
    if (c == '\n' || c == '\t') c = ' ';
  return out;
}

/// `text`'s lines after the first indented by two spaces.
void append_indented(std::string& out, const std::string& text) {
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
}

class TxtWriter final : public ArchiveWriter {
 public:
  explicit TxtWriter(std::filesystem::path dir) : m_dir(std::move(dir)) {}

  void begin(const std::vector<Conversation>&) override {}

  void begin_conversation(const Conversation& c) override {
    m_file.emplace(m_dir / (c.file_stem + ".txt"));
    std::string head = "Conversation: " + one_line(c.display_name) + "\n";
    head += "Id: " + one_line(c.conversation_id) + "\n";
    if (!c.type.empty()) head += "Type: " + one_line(c.type) + "\n";
    if (!c.topic.empty() && c.topic != c.display_name) head += "Topic: " + one_line(c.topic) + "\n";
    head += "Participants:";
    for (std::size_t i = 0; i < c.participants.size(); ++i) {
      const Participant& p = c.participants[i];
      head += (i ? ", " : " ") + one_line(p.display_name.empty() ? p.id : p.display_name);
      if (p.is_owner) head += " (me)";
    }
    head += "\nMessages: " + std::to_string(c.message_count) + "\n\n";
    m_file->write(head);
  }

  void message(const Message& m) override {
    std::string line = "[";
    line += m.sent_at ? local_minute(*m.sent_at) : std::string("no time");
    line += "] ";
    const std::string text = clean_text(m.content_text);
    if (is_system_event(m)) {
      line += "[";
      append_indented(line, text.empty() ? one_line(m.sender_name) + ": " + m.message_type : text);
      line += "]";
    } else {
      line += one_line(m.sender_name) + ": ";
      if (m.is_deleted) {
        line += "[deleted]";
      } else if (text.empty() && m.attachments.empty()) {
        line += "[" + one_line(m.message_type) + "]";
        if (m.is_edited) line += " [edited]";
      } else {
        append_indented(line, text);
        if (m.is_edited) line += " [edited]";
      }
    }
    for (const Attachment& a : m.attachments) {
      line += "\n  [" + (a.kind.empty() ? std::string("attachment") : one_line(a.kind));
      if (!a.name.empty()) line += ": " + one_line(a.name);
      if (a.size) line += ", " + std::to_string(*a.size) + " bytes";
      if (!a.media_path.empty()) line += ", " + one_line(a.media_path);
      line += "]";
    }
    line += "\n";
    m_file->write(line);
  }

  void end_conversation() override {
    m_file->close();
    m_file.reset();
  }

  void finish(const Statistics&) override {}

 private:
  std::filesystem::path m_dir;
  std::optional<OutputFile> m_file;
};

}  // namespace

std::unique_ptr<ArchiveWriter> make_txt_writer(const std::filesystem::path& dir) {
  return std::make_unique<TxtWriter>(dir);
}

}  // namespace skype_etl::detail::archive
