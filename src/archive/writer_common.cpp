#include <cerrno>
#include <cstring>
#include <ctime>

#include "archive/writers.hpp"
#include "core/utf8.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail::archive {

OutputFile::OutputFile(const std::filesystem::path& path) : m_path(path) {
  m_file = std::fopen(path.c_str(), "wbx");
  if (!m_file) throw OutputError("export file", path.string(), std::strerror(errno));
  std::setvbuf(m_file, nullptr, _IOFBF, 1 << 16);
}

OutputFile::~OutputFile() {
  if (m_file) std::fclose(m_file);
}

void OutputFile::write(std::string_view text) {
  if (!m_file) throw OutputError("export file", m_path.string(), "already closed");
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), m_file) != text.size())
    throw OutputError("export file", m_path.string(), std::strerror(errno));
}

void OutputFile::close() {
  if (!m_file) return;
  const bool flushed = std::fflush(m_file) == 0 && !std::ferror(m_file);
  const int error = errno;
  const bool closed = std::fclose(m_file) == 0;
  m_file = nullptr;
  if (!flushed || !closed)
    throw OutputError("export file", m_path.string(), std::strerror(flushed ? errno : error));
}

namespace {

std::tm broken_down(Micros at, bool local) {
  Micros seconds = at / 1000000;
  if (at % 1000000 < 0) --seconds;
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (local)
    localtime_r(&t, &tm);
  else
    gmtime_r(&t, &tm);
  return tm;
}

}  // namespace

std::string local_minute(Micros at) {
  const std::tm tm = broken_down(at, true);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02d %02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min);
  return text;
}

std::string utc_iso(Micros at) {
  const std::tm tm = broken_down(at, false);
  Micros micros = at % 1000000;
  if (micros < 0) micros += 1000000;
  char text[80];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(micros / 1000));
  return text;
}

std::string utc_offset(Micros at) {
  const std::tm tm = broken_down(at, true);
  long offset = tm.tm_gmtoff / 60;
  const char sign = offset < 0 ? '-' : '+';
  if (offset < 0) offset = -offset;
  char text[48];
  std::snprintf(text, sizeof text, "%c%02ld:%02ld", sign, offset / 60, offset % 60);
  return text;
}

std::string clean_text(std::string_view text) {
  static const char replacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      if (c == '\r') {
        out += '\n';
        i += (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
        continue;
      }
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F)
        out += replacement;
      else
        out += static_cast<char>(c);
      ++i;
      continue;
    }
    const std::size_t len = utf8_length(text, i);
    const bool valid = len != 0;
    if (!valid) {
      out += replacement;
      ++i;
      continue;
    }
    // C1 controls (U+0080..U+009F) are two bytes C2 80..C2 9F.
    if (c == 0xC2 && s[i + 1] < 0xA0)
      out += replacement;
    else
      out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

bool is_system_event(const Message& m) {
  const std::string_view type = m.message_type;
  return type.rfind("ThreadActivity/", 0) == 0 || type.rfind("Event/", 0) == 0 ||
         type.rfind("InviteFreeRelationshipChanged/", 0) == 0;
}

nlohmann::json statistics_json(const Statistics& s) {
  nlohmann::json j;
  j["messages"] = s.messages;
  j["conversations"] = s.conversations;
  j["first_message_at"] =
      s.first_message_at ? nlohmann::json(utc_iso(*s.first_message_at)) : nlohmann::json(nullptr);
  j["last_message_at"] =
      s.last_message_at ? nlohmann::json(utc_iso(*s.last_message_at)) : nlohmann::json(nullptr);
  nlohmann::json months = nlohmann::json::array();
  for (const auto& m : s.per_month)
    months.push_back({{"month", m.month}, {"messages", m.messages}});
  j["per_month"] = std::move(months);
  nlohmann::json grid = nlohmann::json::array();
  for (const auto& day : s.hour_by_weekday) {
    nlohmann::json row = nlohmann::json::array();
    for (std::int64_t n : day) row.push_back(n);
    grid.push_back(std::move(row));
  }
  j["hour_by_weekday"] = std::move(grid);
  const auto ranked = [](const std::vector<Statistics::Ranked>& list) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& r : list)
      a.push_back({{"id", r.id}, {"name", r.name}, {"messages", r.messages}});
    return a;
  };
  j["top_conversations"] = ranked(s.top_conversations);
  j["top_senders"] = ranked(s.top_senders);
  return j;
}

}  // namespace skype_etl::detail::archive
