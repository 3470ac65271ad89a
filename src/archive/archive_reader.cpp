#include "archive/archive_reader.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <fstream>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/identity.hpp"
#include "core/utf8.hpp"
#include "load/pg_connection.hpp"
#include "load/schema.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail::archive {

namespace {

std::optional<Micros> micros_of(const PgResult& r, int row, int column) {
  if (r.is_null(row, column)) return std::nullopt;
  return static_cast<Micros>(r.integer(row, column));
}

bool bool_of(const PgResult& r, int row, int column) {
  return r.text(row, column) == "t";
}

/// SQL giving the epoch microseconds of a timestamptz expression. date_part gives a double
/// (extract a numeric, whose arithmetic costs more, on every row of the COPY); a double
/// holds epoch microseconds exactly up to the year 2255, and ::bigint rounds to nearest.
std::string micros_sql(const std::string& expression) {
  return "(date_part('epoch', " + expression + ") * 1000000)::bigint";
}

char lower_ascii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower_ascii(std::string text) {
  for (char& c : text) c = lower_ascii(c);
  return text;
}

/// Glob match ignoring ASCII case: `*` any run of bytes, `?` one character (UTF-8 aware).
bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star_p = std::string_view::npos, star_t = 0;
  const auto next_char = [&](std::size_t i) {
    std::size_t j = i + 1;
    while (j < text.size() && (static_cast<unsigned char>(text[j]) & 0xC0) == 0x80) ++j;
    return j;
  };
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = p++;
      star_t = t;
    } else if (p < pattern.size() && pattern[p] == '?') {
      ++p;
      t = next_char(t);
    } else if (p < pattern.size() && lower_ascii(pattern[p]) == lower_ascii(text[t])) {
      ++p;
      ++t;
    } else if (star_p != std::string_view::npos) {
      p = star_p + 1;
      t = star_t = next_char(star_t);
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::uint32_t fnv1a(std::string_view text) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string list_for_message(const std::vector<std::string>& items, std::size_t most = 20) {
  std::string text;
  for (std::size_t i = 0; i < items.size() && i < most; ++i)
    text += (i ? ", " : "") + skype_etl::quoted(items[i]);
  if (items.size() > most) text += ", ... (" + std::to_string(items.size()) + " in all)";
  return text;
}

/// doc_id -> media file `<doc_id>.1.<ext>` below `media_dir`, relative to `output_dir`.
std::map<std::string, std::filesystem::path> index_media(const std::filesystem::path& media_dir,
                                                         const std::filesystem::path& output_dir) {
  namespace fs = std::filesystem;
  std::map<std::string, fs::path> found;
  std::error_code ec;
  if (!fs::is_directory(media_dir, ec))
    throw UsageError("--with-media " + skype_etl::quoted(media_dir.string(), 1024) +
                     " is not a directory (give the --output-dir the load wrote media to)");
  const fs::path base = fs::absolute(output_dir).lexically_normal();
  for (auto it = fs::recursive_directory_iterator(media_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    const auto dot = name.find(".1.");
    if (dot == std::string::npos || dot == 0) continue;
    const fs::path absolute = fs::absolute(it->path()).lexically_normal();
    found.emplace(name.substr(0, dot), absolute.lexically_relative(base));
  }
  return found;
}

/// One row of COPY ... TO STDOUT in text format: fields split at tabs, escapes decoded
/// (backslash b f n r t v, a doubled backslash, octal NNN, xHH); a field of backslash N
/// is NULL. The strings are reused from row
/// to row.
class CopyRow {
 public:
  void parse(std::string_view data) {
    if (!data.empty() && data.back() == '\n') data.remove_suffix(1);
    m_count = 0;
    std::size_t start = 0;
    for (;;) {
      const std::size_t tab = data.find('\t', start);
      field(
          data.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
      if (tab == std::string_view::npos) break;
      start = tab + 1;
    }
  }
  std::size_t size() const noexcept { return m_count; }
  bool is_null(std::size_t i) const { return m_null[i]; }
  const std::string& text(std::size_t i) const { return m_text[i]; }
  /// Field i swapped into `into` (whose old text the next row overwrites).
  void take(std::size_t i, std::string& into) { into.swap(m_text[i]); }
  std::optional<Micros> micros(std::size_t i) const {
    if (m_null[i]) return std::nullopt;
    return static_cast<Micros>(std::stoll(m_text[i]));
  }

 private:
  void field(std::string_view raw) {
    if (m_count == m_text.size()) {
      m_text.emplace_back();
      m_null.push_back(false);
    }
    std::string& out = m_text[m_count];
    out.clear();
    m_null[m_count] = raw == "\\N";
    ++m_count;
    if (m_null[m_count - 1]) return;
    // Runs without a backslash are copied whole (most fields have none).
    for (std::size_t i = 0; i < raw.size(); ++i) {
      const std::size_t backslash = raw.find('\\', i);
      if (backslash == std::string_view::npos) {
        out.append(raw.substr(i));
        break;
      }
      out.append(raw.substr(i, backslash - i));
      i = backslash;
      if (i + 1 == raw.size()) {
        out += '\\';
        break;
      }
      const char e = raw[++i];
      switch (e) {
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x': {
          int value = 0, digits = 0;
          while (digits < 2 && i + 1 < raw.size() &&
                 std::isxdigit(static_cast<unsigned char>(raw[i + 1]))) {
            const char h = raw[++i];
            value = value * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
            ++digits;
          }
          out += static_cast<char>(value);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            int value = e - '0', digits = 1;
            while (digits < 3 && i + 1 < raw.size() && raw[i + 1] >= '0' && raw[i + 1] <= '7') {
              value = value * 8 + (raw[++i] - '0');
              ++digits;
            }
            out += static_cast<char>(value);
          } else {
            out += e;
          }
      }
    }
  }

  std::vector<std::string> m_text;
  std::vector<bool> m_null;
  std::size_t m_count = 0;
};

}  // namespace

std::string local_time_zone_name() {
  if (const char* tz = std::getenv("TZ"); tz && *tz) return tz[0] == ':' ? tz + 1 : tz;
  std::error_code ec;
  const std::filesystem::path link = std::filesystem::read_symlink("/etc/localtime", ec);
  if (!ec) {
    const std::string target = link.string();
    const auto at = target.find("zoneinfo/");
    if (at != std::string::npos) return target.substr(at + 9);
  }
  std::ifstream in("/etc/timezone");
  std::string name;
  if (in >> name && !name.empty()) return name;
  return "UTC";
}

namespace {

/// Whether a (non-ASCII) code point may be part of a file name: not a control, space,
/// format (zero width, bidirectional), separator-like, private-use or non-character one.
bool name_code_point(char32_t c) {
  if (c <= 0xA0 || c == 0xAD || c == 0x034F || c == 0x061C || c == 0x1680 || c == 0x180E)
    return false;
  if ((c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
      (c >= 0x205F && c <= 0x206F) || c == 0x2044 || c == 0x2215 || c == 0x3000)
    return false;
  if ((c >= 0xE000 && c <= 0xF8FF) || (c >= 0xFDD0 && c <= 0xFDEF) || c == 0xFEFF ||
      (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xFFF0 && c <= 0xFFFF) || c == 0xFF0F || c == 0xFF3C)
    return false;
  if ((c & 0xFFFE) == 0xFFFE || (c >= 0xE0000)) return false;  // non-characters, tags, PUA
  return true;
}

}  // namespace

std::string file_stem_for(const std::string& name, const std::string& conversation_id) {
  constexpr std::size_t most = 40;
  std::string stem;
  bool gap = false;
  for (std::size_t i = 0; i < name.size();) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    std::size_t n = 0;
    if (c < 0x80) {
      n = (std::isalnum(c) != 0 || c == '-' || c == '_') ? 1 : 0;
    } else {
      char32_t cp = 0;
      n = decode_utf8(name, i, cp);
      if (n != 0 && !name_code_point(cp)) {
        i += n;  // a whole character left out, not its bytes one by one
        gap = true;
        continue;
      }
    }
    if (n == 0) {
      ++i;
      gap = true;
      continue;
    }
    const bool sep = gap && !stem.empty();
    if (stem.size() + (sep ? 1 : 0) + n > most) break;  // whole characters only
    if (sep) stem += '_';
    gap = false;
    stem.append(name, i, n);
    i += n;
  }
  while (!stem.empty() && (stem.back() == '_' || stem.back() == '-')) stem.pop_back();
  // Nor a leading '-' (a file name that reads as a command's option).
  stem.erase(0, std::min(stem.find_first_not_of("-_"), stem.size()));
  if (stem.empty()) stem = "conversation";
  char hash[16];
  std::snprintf(hash, sizeof hash, "-%08x", fnv1a(conversation_id));
  return stem + hash;
}

ArchiveReader::ArchiveReader(PgConnection& conn, const ArchiveFilter& filter)
    : m_conn(conn), m_since(filter.since), m_until(filter.until), m_with_raw(filter.with_raw) {
  m_conn.exec("SET client_encoding = 'UTF8'");
  const int version = current_schema_version(m_conn);
  if (version == 0)
    throw DatabaseError("the database (" + m_conn.describe() +
                        ") holds no skype-etl schema: nothing was loaded into it (skype-etl run "
                        "loads an export)");
  // Version 8 made every stored id canonical (what --account and the owner's messages are
  // matched by); later versions add nothing the export reads.
  constexpr int oldest_readable = 8;
  if (version < oldest_readable)
    throw DatabaseError("the database's schema skype is at version " + std::to_string(version) +
                        ", older than this skype-etl reads (" + std::to_string(oldest_readable) +
                        " or later): loading an export into it with skype-etl run upgrades it");
  if (version > latest_schema_version())
    throw DatabaseError("the database's schema skype is at version " + std::to_string(version) +
                        ", newer than this skype-etl knows (" +
                        std::to_string(latest_schema_version()) + "): upgrade skype-etl");
  m_conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  // JIT compiles each conversation's query anew (a third of a second for a large one, the
  // cost estimate of the attachments' subquery sets it off) to save less than that.
  m_conn.exec("SET LOCAL jit = off");
  // Each conversation's COPY would start parallel workers (a Gather Merge over two sorts):
  // their start costs more than it saves on a conversation, and the writer wants the cores.
  m_conn.exec("SET LOCAL max_parallel_workers_per_gather = 0");
  // For statistics() on another connection, while this one reads the messages.
  m_snapshot = std::string(m_conn.exec("SELECT pg_export_snapshot()").text(0, 0));
  m_conn.exec_params("SELECT set_config('TimeZone', $1, true)",
                     std::vector<std::string>{local_time_zone_name()});

  PgResult accounts = m_conn.exec(
      "SELECT account_id, coalesce(display_name, '') FROM skype.accounts ORDER BY account_id");
  std::vector<std::string> ids;
  for (int i = 0; i < accounts.rows(); ++i) ids.emplace_back(accounts.text(i, 0));
  if (ids.empty())
    throw UsageError("the database holds no account: nothing was loaded into it yet");
  if (filter.account.empty()) {
    if (ids.size() > 1)
      throw UsageError("the database holds " + std::to_string(ids.size()) +
                       " accounts: choose one with --account (" + list_for_message(ids) + ")");
    m_account = ids.front();
  } else {
    m_account = canonical_person_id(filter.account);
    if (std::find(ids.begin(), ids.end(), m_account) == ids.end())
      throw UsageError("no account " + skype_etl::quoted(filter.account) +
                       " in the database; it holds " + list_for_message(ids));
  }
  for (int i = 0; i < accounts.rows(); ++i)
    if (accounts.text(i, 0) == m_account) m_owner_name = accounts.text(i, 1);
  if (m_owner_name.empty()) m_owner_name = "Me";
  if (!filter.media_dir.empty()) m_media = index_media(filter.media_dir, filter.output_dir);
  read_conversations(filter);
}

ArchiveReader::~ArchiveReader() {
  m_conn.rollback();
}

std::string ArchiveReader::message_filter_sql(const std::string& a,
                                              const PgConnection& conn) const {
  std::string sql = a + ".account_id = " + conn.quote_literal(m_account);
  if (!m_conversation_ids_literal.empty())
    sql += " AND " + a + ".conversation_id = ANY(" + m_conversation_ids_literal + ")";
  if (!m_since.empty())
    sql += " AND " + a + ".sent_at >= " + conn.quote_literal(m_since) + "::timestamptz";
  if (!m_until.empty())
    sql += " AND " + a + ".sent_at < " + conn.quote_literal(m_until) + "::timestamptz";
  return sql;
}

void ArchiveReader::read_conversations(const ArchiveFilter& filter) {
  const std::string account = m_conn.quote_literal(m_account);
  PgResult r = m_conn.exec(
      "SELECT conversation_id, coalesce(conversation_type, ''), coalesce(display_name, ''), "
      "coalesce(topic, '') FROM skype.conversations WHERE account_id = " +
      account + " ORDER BY conversation_id");
  std::vector<Conversation> all;
  all.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    Conversation c;
    c.account_id = m_account;
    c.conversation_id = r.text(i, 0);
    c.type = r.text(i, 1);
    c.display_name = r.text(i, 2);
    c.topic = r.text(i, 3);
    all.push_back(std::move(c));
  }
  // Participants: the owner first, then by id.
  PgResult p = m_conn.exec(
      "SELECT conversation_id, participant_id, coalesce(display_name, ''), is_owner FROM "
      "skype.participants WHERE account_id = " +
      account + " ORDER BY conversation_id, is_owner DESC, participant_id");
  {
    std::unordered_map<std::string, std::size_t> at;
    for (std::size_t i = 0; i < all.size(); ++i) at.emplace(all[i].conversation_id, i);
    for (int i = 0; i < p.rows(); ++i) {
      const auto it = at.find(std::string(p.text(i, 0)));
      if (it == at.end()) continue;
      Participant person;
      person.id = p.text(i, 1);
      person.display_name = p.text(i, 2);
      person.is_owner = bool_of(p, i, 3) || person.id == m_account;
      if (person.is_owner && person.display_name.empty()) person.display_name = m_owner_name;
      all[it->second].participants.push_back(std::move(person));
    }
  }
  for (Conversation& c : all) {
    if (c.display_name.empty()) c.display_name = c.topic;
    if (c.display_name.empty()) {
      std::vector<std::string> names;
      for (const Participant& person : c.participants)
        if (!person.is_owner)
          names.push_back(person.display_name.empty() ? person.id : person.display_name);
      std::sort(names.begin(), names.end());
      for (std::size_t i = 0; i < names.size(); ++i) c.display_name += (i ? ", " : "") + names[i];
    }
    if (c.display_name.empty()) c.display_name = c.conversation_id;
  }

  // The selection.
  if (!filter.conversations.empty()) {
    std::vector<bool> chosen(all.size(), false);
    for (const std::string& pattern : filter.conversations) {
      const bool glob = pattern.find_first_of("*?") != std::string::npos;
      const std::string lowered = lower_ascii(pattern);
      bool any = false;
      for (std::size_t i = 0; i < all.size(); ++i) {
        const Conversation& c = all[i];
        const std::string& name = c.display_name;
        const bool match = glob
                               ? glob_match(pattern, c.conversation_id) || glob_match(pattern, name)
                               : c.conversation_id == pattern || lower_ascii(name) == lowered;
        if (match) chosen[i] = any = true;
      }
      if (!any)
        throw UsageError("--conversation " + skype_etl::quoted(pattern) +
                         " matches no conversation of account " + skype_etl::quoted(m_account) +
                         " (an id, a name, or a pattern with * and ?; skype-etl stats lists the "
                         "busiest)");
    }
    std::vector<Conversation> selected;
    for (std::size_t i = 0; i < all.size(); ++i)
      if (chosen[i]) selected.push_back(std::move(all[i]));
    all = std::move(selected);
    m_conversation_ids_literal = "ARRAY[";
    for (std::size_t i = 0; i < all.size(); ++i)
      m_conversation_ids_literal += (i ? "," : "") + m_conn.quote_literal(all[i].conversation_id);
    m_conversation_ids_literal += "]::text[]";
  }

  // Counts, first and last within the filters.
  PgResult s = m_conn.exec("SELECT m.conversation_id, count(*), " + micros_sql("min(m.sent_at)") +
                           ", " + micros_sql("max(m.sent_at)") + " FROM skype.messages m WHERE " +
                           message_filter_sql("m", m_conn) + " GROUP BY m.conversation_id");
  {
    std::unordered_map<std::string, std::size_t> at;
    for (std::size_t i = 0; i < all.size(); ++i) at.emplace(all[i].conversation_id, i);
    for (int i = 0; i < s.rows(); ++i) {
      const auto it = at.find(std::string(s.text(i, 0)));
      if (it == at.end()) continue;
      Conversation& c = all[it->second];
      c.message_count = s.integer(i, 1);
      c.first_message_at = micros_of(s, i, 2);
      c.last_message_at = micros_of(s, i, 3);
    }
  }
  if (!m_since.empty() || !m_until.empty())
    all.erase(std::remove_if(all.begin(), all.end(),
                             [](const Conversation& c) { return c.message_count == 0; }),
              all.end());
  std::sort(all.begin(), all.end(), [](const Conversation& a, const Conversation& b) {
    if (a.last_message_at != b.last_message_at) {
      if (!a.last_message_at) return false;
      if (!b.last_message_at) return true;
      return *a.last_message_at > *b.last_message_at;
    }
    return a.conversation_id < b.conversation_id;
  });
  std::set<std::string> taken;
  for (Conversation& c : all) {
    std::string stem = file_stem_for(c.display_name, c.conversation_id);
    std::string unique = stem;
    for (int n = 2; !taken.insert(lower_ascii(unique)).second; ++n)
      unique = stem + "-" + std::to_string(n);
    c.file_stem = unique;
  }
  m_conversations = std::move(all);
}

std::int64_t ArchiveReader::message_count() const noexcept {
  std::int64_t n = 0;
  for (const Conversation& c : m_conversations) n += c.message_count;
  return n;
}

void ArchiveReader::read_messages(const Conversation& conversation,
                                  const std::function<void(Message&)>& on_message,
                                  PgConnection* other) {
  PgConnection& conn = other ? *other : m_conn;
  std::unordered_map<std::string, std::string> names;
  for (const Participant& p : conversation.participants)
    if (!p.display_name.empty()) names.emplace(p.id, p.display_name);
  const std::string account = conn.quote_literal(m_account);
  const std::string id = conn.quote_literal(conversation.conversation_id);
  const std::string where = message_filter_sql("m", conn) + " AND m.conversation_id = " + id;
  // COPY streams: the server goes on producing rows while this process writes them, and
  // the socket's buffers bound what waits in between. The conversation's attachments are
  // grouped once and hash-joined: a subquery per message took 3.7 times as long on the
  // largest conversation of the 1M benchmark (332 ms against 91 ms).
  const std::string sql =
      "COPY (SELECT m.message_id, " + micros_sql("m.sent_at") +
      ", m.sender_id, m.sender_name, m.message_type, " + (m_with_raw ? "m.content_raw" : "NULL") +
      ", m.content_text, m.is_edited, " + micros_sql("m.edited_at") + ", m.is_deleted, " +
      micros_sql("m.deleted_at") + ", m.is_server_generated, m.details, " +
      (m_with_raw ? "m.properties" : "NULL") +
      ", att.list "
      "FROM skype.messages m LEFT JOIN (SELECT a.message_id, json_agg(json_build_array("
      "a.ordinal, a.kind, a.name, a.content_type, a.uri, a.thumbnail_uri, a.doc_id, a.size, "
      "a.width, a.height, a.duration_seconds) ORDER BY a.ordinal) AS list FROM "
      "skype.attachments a WHERE a.account_id = " +
      account + " AND a.conversation_id = " + id +
      " GROUP BY a.message_id) att ON att.message_id = m.message_id WHERE " + where +
      " ORDER BY m.sent_at ASC NULLS LAST, m.message_id) TO STDOUT";
  Message m;
  CopyRow row;
  conn.copy_out(sql, [&](std::string_view data) {
    row.parse(data);
    if (row.size() != 15)
      throw DatabaseError("COPY of the messages of " +
                          skype_etl::quoted(conversation.conversation_id) + " gave a row of " +
                          std::to_string(row.size()) + " fields, not 15");
    row.take(0, m.message_id);
    m.sent_at = row.micros(1);
    row.take(2, m.sender_id);
    m.from_owner = m.sender_id == m_account;
    if (m.from_owner) {
      m.sender_name = m_owner_name;
    } else if (!row.text(3).empty()) {
      row.take(3, m.sender_name);
    } else if (const auto it = names.find(m.sender_id); it != names.end()) {
      m.sender_name = it->second;
    } else {
      m.sender_name = m.sender_id;
    }
    row.take(4, m.message_type);
    row.take(5, m.content_raw);
    row.take(6, m.content_text);
    m.is_edited = row.text(7) == "t";
    m.edited_at = row.micros(8);
    m.is_deleted = row.text(9) == "t";
    m.deleted_at = row.micros(10);
    m.is_server_generated = row.text(11) == "t";
    row.take(12, m.details_json);
    row.take(13, m.properties_json);
    m.attachments.clear();
    if (!row.is_null(14)) {
      const std::string& text = row.text(14);
      const auto rows = nlohmann::json::parse(text.begin(), text.end());
      for (const auto& a_row : rows) {
        Attachment a;
        const auto str = [&](std::size_t k) {
          return a_row[k].is_string() ? a_row[k].get<std::string>() : std::string();
        };
        const auto num = [&](std::size_t k) -> std::optional<std::int64_t> {
          if (!a_row[k].is_number()) return std::nullopt;
          return a_row[k].get<std::int64_t>();
        };
        a.ordinal = a_row[0].is_number() ? a_row[0].get<int>() : 0;
        a.kind = str(1);
        a.name = str(2);
        a.content_type = str(3);
        a.uri = str(4);
        a.thumbnail_uri = str(5);
        a.doc_id = str(6);
        a.size = num(7);
        a.width = num(8);
        a.height = num(9);
        if (a_row[10].is_number()) a.duration_seconds = a_row[10].get<double>();
        if (!a.doc_id.empty()) {
          if (const auto it = m_media.find(a.doc_id); it != m_media.end())
            a.media_path = it->second.generic_string();
        }
        m.attachments.push_back(std::move(a));
      }
    }
    on_message(m);
  });
}

void ArchiveReader::share_snapshot(PgConnection& other) const {
  other.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  other.exec("SET TRANSACTION SNAPSHOT " + other.quote_literal(m_snapshot));
  other.exec("SET LOCAL jit = off");
  other.exec("SET LOCAL max_parallel_workers_per_gather = 0");
  other.exec_params("SELECT set_config('TimeZone', $1, true)",
                    std::vector<std::string>{local_time_zone_name()});
}

Statistics ArchiveReader::statistics(PgConnection* other) {
  PgConnection& conn = other ? *other : m_conn;
  if (other) share_snapshot(conn);
  struct Rollback {
    PgConnection* conn;
    ~Rollback() {
      if (conn) conn->rollback();
    }
  } rollback{other};
  // Two scans of the selection: one GROUP BY (month, weekday, hour) in the session's (the
  // local) time zone, one by sender. Totals and the top conversations come from the counts
  // read with the conversation list.
  Statistics st;
  st.conversations = static_cast<std::int64_t>(m_conversations.size());
  for (const Conversation& c : m_conversations) {
    st.messages += c.message_count;
    if (c.first_message_at && (!st.first_message_at || *c.first_message_at < *st.first_message_at))
      st.first_message_at = c.first_message_at;
    if (c.last_message_at && (!st.last_message_at || *c.last_message_at > *st.last_message_at))
      st.last_message_at = c.last_message_at;
  }
  const std::string where = message_filter_sql("m", conn);
  // Grouped by the hour first (one cheap key per row; extract's numeric on each of a
  // million rows took 2.6 times as long), then the hours by month, weekday and hour.
  PgResult grid = conn.exec(
      "SELECT to_char(h.hour, 'YYYY-MM'), date_part('isodow', h.hour)::int - 1, "
      "date_part('hour', h.hour)::int, sum(h.n)::bigint FROM (SELECT date_trunc('hour', "
      "m.sent_at) AS hour, count(*) AS n FROM skype.messages m WHERE " +
      where + " AND m.sent_at IS NOT NULL GROUP BY 1) h GROUP BY 1, 2, 3 ORDER BY 1");
  for (int i = 0; i < grid.rows(); ++i) {
    const std::string month(grid.text(i, 0));
    const long long day = grid.integer(i, 1), hour = grid.integer(i, 2), n = grid.integer(i, 3);
    if (day >= 0 && day < 7 && hour >= 0 && hour < 24) st.hour_by_weekday[day][hour] += n;
    if (st.per_month.empty() || st.per_month.back().month != month) {
      // The months between the last one seen and this one, with no message.
      if (!st.per_month.empty()) {
        int year = std::stoi(st.per_month.back().month.substr(0, 4));
        int mon = std::stoi(st.per_month.back().month.substr(5, 2));
        for (;;) {
          if (++mon == 13) {
            mon = 1;
            ++year;
          }
          char text[32];
          std::snprintf(text, sizeof text, "%04d-%02d", year, mon);
          if (text >= month) break;
          st.per_month.push_back({text, 0});
        }
      }
      st.per_month.push_back({month, 0});
    }
    st.per_month.back().messages += n;
  }

  std::vector<const Conversation*> ranked;
  for (const Conversation& c : m_conversations)
    if (c.message_count > 0) ranked.push_back(&c);
  std::sort(ranked.begin(), ranked.end(), [](const Conversation* a, const Conversation* b) {
    if (a->message_count != b->message_count) return a->message_count > b->message_count;
    return a->conversation_id < b->conversation_id;
  });
  for (std::size_t i = 0; i < ranked.size() && i < 10; ++i)
    st.top_conversations.push_back(
        {ranked[i]->conversation_id, ranked[i]->display_name, ranked[i]->message_count});

  // A sender's name: the owner's; else the one on their latest participation.
  PgResult top_s = conn.exec(
      "SELECT t.sender_id, coalesce((SELECT nullif(p.display_name, '') FROM skype.participants p "
      "WHERE p.account_id = " +
      conn.quote_literal(m_account) +
      " AND p.participant_id = t.sender_id AND p.display_name IS NOT NULL ORDER BY "
      "p.last_seen_at DESC NULLS LAST LIMIT 1), t.sender_id), t.n FROM (SELECT "
      "coalesce(m.sender_id, '') AS sender_id, count(*) AS n FROM skype.messages m WHERE " +
      where + " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10) t ORDER BY t.n DESC, t.sender_id");
  for (int i = 0; i < top_s.rows(); ++i) {
    Statistics::Ranked r;
    r.id = top_s.text(i, 0);
    r.name = r.id == m_account ? m_owner_name : std::string(top_s.text(i, 1));
    r.messages = top_s.integer(i, 2);
    st.top_senders.push_back(std::move(r));
  }
  return st;
}

namespace {

/// Messages on their way from the reading thread to the writing one: a fixed set of
/// batches goes round (free -> filled by the reader -> written -> free), so memory holds
/// at most k_batches * k_batch_size messages whatever the history's size, and the
/// strings of a batch's messages keep their capacity from one round to the next.
class MessageHandoff {
 public:
  static constexpr std::size_t k_batch_size = 256;
  /// A batch is handed over at k_batch_size messages or this many bytes of text, and the
  /// strings a message left longer than k_kept_capacity are freed once written: memory is
  /// bounded in bytes too, whatever the messages' size.
  static constexpr std::size_t k_batch_bytes = 1 << 20;
  static constexpr std::size_t k_kept_capacity = 4096;
  struct Batch {
    std::size_t conversation = 0;  ///< index in the reader's conversations()
    std::vector<Message> messages;
    std::size_t count = 0;
    std::size_t bytes = 0;
    bool last = false;  ///< the conversation's last batch
  };
  /// Thrown in the reading thread when the writing one gave up.
  struct Cancelled {};

  explicit MessageHandoff(std::size_t batches) {
    m_storage.resize(batches);
    for (Batch& b : m_storage) {
      b.messages.resize(k_batch_size);
      m_free.push_back(&b);
    }
  }
  // Reading thread.
  Batch* take_free() {
    std::unique_lock lock(m_mutex);
    m_changed.wait(lock, [&] { return m_cancelled || !m_free.empty(); });
    if (m_cancelled) throw Cancelled{};
    Batch* b = m_free.front();
    m_free.pop_front();
    b->count = 0;
    b->bytes = 0;
    b->last = false;
    return b;
  }
  void hand_over(Batch* b) {
    {
      std::lock_guard lock(m_mutex);
      m_filled.push_back(b);
    }
    m_changed.notify_all();
  }
  void fail(std::exception_ptr error) {
    {
      std::lock_guard lock(m_mutex);
      m_error = std::move(error);
    }
    m_changed.notify_all();
  }
  // Writing thread.
  Batch* take_filled() {
    std::unique_lock lock(m_mutex);
    m_changed.wait(lock, [&] { return m_error || !m_filled.empty(); });
    if (m_filled.empty()) std::rethrow_exception(m_error);
    Batch* b = m_filled.front();
    m_filled.pop_front();
    return b;
  }
  void give_back(Batch* b) {
    {
      std::lock_guard lock(m_mutex);
      m_free.push_back(b);
    }
    m_changed.notify_all();
  }
  void cancel() {
    {
      std::lock_guard lock(m_mutex);
      m_cancelled = true;
    }
    m_changed.notify_all();
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::vector<Batch> m_storage;
  std::deque<Batch*> m_free, m_filled;
  std::exception_ptr m_error;
  bool m_cancelled = false;
};

}  // namespace

void write_archive(ArchiveReader& reader, ArchiveWriter& writer,
                   const std::function<void(std::int64_t)>& on_progress,
                   PgConnection* statistics_connection, PgConnection* second_reading_connection) {
  // Threads read (PostgreSQL's COPY and the rows' decoding) while this one writes: the
  // server, the decoding and the writing overlap. With a second reading connection, two
  // threads take the conversations in turns, so the server already sorts the next
  // conversation while the rows of this one are written.
  const auto& conversations = reader.conversations();
  const std::size_t lanes = second_reading_connection ? 2 : 1;
  if (second_reading_connection) reader.share_snapshot(*second_reading_connection);
  std::vector<std::unique_ptr<MessageHandoff>> handoffs;
  for (std::size_t lane = 0; lane < lanes; ++lane)
    handoffs.push_back(std::make_unique<MessageHandoff>(16 / lanes));
  std::vector<std::thread> reading;
  struct Join {  // when writing fails: stop the reading threads and wait for them
    std::vector<std::unique_ptr<MessageHandoff>>& handoffs;
    std::vector<std::thread>& threads;
    ~Join() {
      for (auto& h : handoffs) h->cancel();
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } join{handoffs, reading};
  for (std::size_t lane = 0; lane < lanes; ++lane)
    reading.emplace_back([&, lane] {
      MessageHandoff& handoff = *handoffs[lane];
      PgConnection* conn = lane == 0 ? nullptr : second_reading_connection;
      try {
        for (std::size_t i = lane; i < conversations.size(); i += lanes) {
          MessageHandoff::Batch* batch = handoff.take_free();
          batch->conversation = i;
          reader.read_messages(
              conversations[i],
              [&](Message& m) {
                if (batch->count == batch->messages.size() ||
                    batch->bytes >= MessageHandoff::k_batch_bytes) {
                  handoff.hand_over(batch);
                  batch = handoff.take_free();
                  batch->conversation = i;
                }
                // A swap: the batch's old strings, with their capacity, go back to the reader.
                batch->bytes += m.content_raw.size() + m.content_text.size() +
                                m.details_json.size() + m.properties_json.size();
                std::swap(batch->messages[batch->count++], m);
              },
              conn);
          batch->last = true;
          handoff.hand_over(batch);
        }
      } catch (const MessageHandoff::Cancelled&) {
      } catch (...) {
        handoff.fail(std::current_exception());
      }
    });

  // The statistics meanwhile, on the other connection if there is one.
  std::optional<Statistics> statistics;
  std::exception_ptr statistics_error;
  std::thread counting;
  if (statistics_connection)
    counting = std::thread([&] {
      try {
        statistics = reader.statistics(statistics_connection);
      } catch (...) {
        statistics_error = std::current_exception();
      }
    });
  struct JoinCounting {
    std::thread& thread;
    ~JoinCounting() {
      if (thread.joinable()) thread.join();
    }
  } join_counting{counting};

  writer.begin(conversations);
  std::int64_t written = 0;
  for (std::size_t i = 0; i < conversations.size(); ++i) {
    writer.begin_conversation(conversations[i]);
    for (bool last = false; !last;) {
      MessageHandoff& handoff = *handoffs[i % lanes];
      MessageHandoff::Batch* batch = handoff.take_filled();
      if (batch->conversation != i)
        throw std::logic_error("write_archive: a batch of another conversation");
      for (std::size_t k = 0; k < batch->count; ++k) {
        Message& m = batch->messages[k];
        writer.message(m);
        if (++written % k_progress_rows == 0 && on_progress) on_progress(written);
        for (std::string* text :
             {&m.content_raw, &m.content_text, &m.details_json, &m.properties_json})
          if (text->capacity() > MessageHandoff::k_kept_capacity) std::string().swap(*text);
      }
      last = batch->last;
      handoff.give_back(batch);
    }
    writer.end_conversation();
  }
  if (on_progress) on_progress(written);
  for (auto& t : reading) t.join();  // done: the connection is free for the statistics
  if (counting.joinable()) counting.join();
  if (statistics_error) std::rethrow_exception(statistics_error);
  writer.finish(statistics ? *statistics : reader.statistics());
}

}  // namespace skype_etl::detail::archive
