#include "archive/html_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/html_escape.hpp"
#include "extract/input_file.hpp"  // sha256
#include "skype_etl/errors.hpp"

namespace skype_etl::detail::archive {
namespace {

// The one style sheet and the one script of the archive. The CSP allows exactly these (by
// their SHA-256): no other inline style or script can run, whatever a message holds.
constexpr char k_css[] = R"(
:root{--bg:#f4f5f7;--fg:#1d2128;--muted:#5f6b7a;--card:#fff;--own:#dcf0ff;--line:#d9dee5;
--accent:#0078d4;--system:#eef0f3;--quote:#8a96a6;--mention:#fff1b8}
@media (prefers-color-scheme:dark){:root{--bg:#16181c;--fg:#e6e9ee;--muted:#9aa5b4;
--card:#23272e;--own:#16324a;--line:#343a44;--accent:#4aa3ff;--system:#1d2126;--quote:#6b7685;
--mention:#5a4a12}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
a{color:var(--accent)}
.top{background:var(--card);border-bottom:1px solid var(--line);padding:12px 24px}
.top h1{margin:4px 0;font-size:22px;overflow-wrap:anywhere}
.crumbs,.meta{color:var(--muted);font-size:13px}
.crumbs a{margin-right:12px}
main{max-width:900px;margin:0 auto;padding:12px 16px 32px}
main.wide{max-width:1100px}
nav.pages{margin:10px 0;font-size:14px}
nav.pages a,nav.pages span{display:inline-block;min-width:28px;padding:2px 6px;margin:2px;
text-align:center;border:1px solid var(--line);border-radius:6px;text-decoration:none}
nav.pages span.current{background:var(--accent);color:#fff;border-color:var(--accent)}
nav.pages span.gap{border:none}
h2.day{position:sticky;top:0;margin:18px 0 8px;text-align:center;font-size:13px;
font-weight:600;color:var(--muted)}
h2.day span{background:var(--bg);padding:2px 12px;border:1px solid var(--line);border-radius:12px}
.msg{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:6px 12px 8px;
margin:6px 60px 6px 0;max-width:max-content;min-width:220px;overflow-wrap:anywhere}
.msg.own{background:var(--own);margin:6px 0 6px auto}
.msg .head{font-size:13px;color:var(--muted);display:flex;gap:8px;align-items:baseline}
.msg .sender{font-weight:600;color:var(--fg)}
.msg .head time{white-space:nowrap}
.msg .body{white-space:pre-wrap}
.msg.deleted .body{font-style:italic;color:var(--muted)}
.tag{font-size:11px;border:1px solid var(--line);border-radius:8px;padding:0 6px;color:var(--muted)}
.mention{background:var(--mention);border-radius:4px;padding:0 2px}
blockquote{margin:4px 0 6px;padding:2px 10px;border-left:3px solid var(--quote);color:var(--muted)}
blockquote .quoted{white-space:pre-wrap}
blockquote cite{display:block;font-size:12px;font-style:normal;font-weight:600}
.system{text-align:center;color:var(--muted);font-size:13px;margin:8px 0;overflow-wrap:anywhere}
.system span{background:var(--system);border-radius:10px;padding:3px 12px;display:inline-block}
.call{font-weight:600}
.files{list-style:none;margin:4px 0 0;padding:0}
.files li{margin:4px 0}
.files img,.files video{display:block;max-width:100%;max-height:320px;border-radius:8px;margin-top:4px}
.size{color:var(--muted);font-size:12px}
.reactions{margin-top:4px}
.reaction{display:inline-block;font-size:13px;border:1px solid var(--line);border-radius:10px;
padding:0 6px;margin-right:4px}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line)}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
th button{font:inherit;font-weight:600;color:var(--fg);background:none;border:0;padding:0;cursor:pointer}
th[aria-sort=ascending] button::after{content:" \25B2"}
th[aria-sort=descending] button::after{content:" \25BC"}
td.n,th.n{text-align:right}
.filter{margin:12px 0;display:flex;gap:12px;align-items:center}
.filter input{font:inherit;padding:6px 10px;width:320px;max-width:100%;border:1px solid var(--line);
border-radius:8px;background:var(--card);color:var(--fg)}
svg{display:block;max-width:100%;height:auto;margin:8px 0 24px}
svg text{fill:var(--muted);font-size:11px}
svg text.label{fill:var(--fg);font-size:12px}
svg .bar{fill:var(--accent)}
svg .cell{fill:var(--accent)}
svg .empty{fill:var(--line)}
svg .axis{stroke:var(--line)}
.summary{color:var(--muted)}
)";

constexpr char k_script[] = R"(
(function () {
  var table = document.getElementById('conversations');
  var filter = document.getElementById('filter');
  var shown = document.getElementById('shown');
  if (!table || !filter) return;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  function count() {
    var n = 0;
    rows.forEach(function (r) { if (!r.hidden) n++; });
    shown.textContent = n + ' of ' + rows.length + ' conversations';
  }
  filter.addEventListener('input', function () {
    var q = filter.value.toLowerCase();
    rows.forEach(function (r) { r.hidden = r.textContent.toLowerCase().indexOf(q) === -1; });
    count();
  });
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener('click', function () {
      var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
      Array.prototype.forEach.call(heads, function (o) { o.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
      var numeric = th.classList.contains('n');
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        return dir * (numeric ? Number(x) - Number(y) : x.localeCompare(y));
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  // index.html#q=words filters, #sort=N (#sort=-N: descending) sorts by column N from 1.
  var hash = location.hash.slice(1).split('&');
  hash.forEach(function (kv) {
    var at = kv.indexOf('='), key = kv.slice(0, at), value = decodeURIComponent(kv.slice(at + 1));
    if (key === 'q') {
      filter.value = value;
      filter.dispatchEvent(new Event('input'));
    } else if (key === 'sort') {
      var col = Math.abs(parseInt(value, 10)) - 1;
      if (col >= 0 && col < heads.length) {
        heads[col].click();
        if (value.charAt(0) === '-') heads[col].click();
      }
    }
  });
  count();
})();
)";

std::string base64(const unsigned char* data, std::size_t size) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < size; i += 3) {
    const unsigned v = (unsigned{data[i]} << 16U) |
                       (i + 1 < size ? unsigned{data[i + 1]} << 8U : 0U) |
                       (i + 2 < size ? unsigned{data[i + 2]} : 0U);
    out += alphabet[(v >> 18U) & 63U];
    out += alphabet[(v >> 12U) & 63U];
    out += i + 1 < size ? alphabet[(v >> 6U) & 63U] : '=';
    out += i + 2 < size ? alphabet[v & 63U] : '=';
  }
  return out;
}

std::string csp_hash(std::string_view text) {
  const auto md = sha256(text);
  return "'sha256-" + base64(md.data(), md.size()) + "'";
}

// ---- time ------------------------------------------------------------------------------

struct LocalTime {
  std::tm tm{};
  long offset_seconds = 0;  // east of UTC
};

LocalTime local_time(Micros us) {
  std::time_t seconds = static_cast<std::time_t>(us / 1000000);
  if (us < 0 && us % 1000000 != 0) --seconds;
  LocalTime t;
  localtime_r(&seconds, &t.tm);
  t.offset_seconds = t.tm.tm_gmtoff;
  return t;
}

std::string format(const std::tm& tm, const char* pattern) {
  char buf[128];
  const std::size_t n = std::strftime(buf, sizeof buf, pattern, &tm);
  return std::string(buf, n);
}

std::string utc_offset(long seconds) {
  char buf[40];
  const long a = seconds < 0 ? -seconds : seconds;
  std::snprintf(buf, sizeof buf, "%c%02ld:%02ld", seconds < 0 ? '-' : '+', a / 3600, a / 60 % 60);
  return buf;
}

/// A time as the pages show it, from one conversion to local time (a message's time is
/// shown four ways: this is on the hot path).
struct TimeTexts {
  std::string iso;    ///< "2023-11-14T22:13:05+01:00" (a <time>'s datetime)
  std::string full;   ///< "2023-11-14 22:13:05 +01:00 (2023-11-14 21:13:05 UTC)" (on hover)
  std::string clock;  ///< "22:13"
  std::string date;   ///< "2023-11-14" (local)
};

void put_digits(std::string& out, long value, int width) {
  char buf[24];
  int n = 0;
  unsigned long v = value < 0 ? 0UL : static_cast<unsigned long>(value);
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 20);
  for (int i = n; i < width; ++i) out.push_back('0');
  while (n > 0) out.push_back(buf[--n]);
}

/// "YYYY-MM-DD" `sep` "HH:MM:SS".
void put_tm(std::string& out, const std::tm& tm, char sep) {
  put_digits(out, tm.tm_year + 1900L, 4);
  out.push_back('-');
  put_digits(out, tm.tm_mon + 1L, 2);
  out.push_back('-');
  put_digits(out, tm.tm_mday, 2);
  out.push_back(sep);
  put_digits(out, tm.tm_hour, 2);
  out.push_back(':');
  put_digits(out, tm.tm_min, 2);
  out.push_back(':');
  put_digits(out, tm.tm_sec, 2);
}

TimeTexts time_texts(Micros us) {
  const LocalTime t = local_time(us);
  std::time_t seconds = static_cast<std::time_t>(us / 1000000);
  if (us < 0 && us % 1000000 != 0) --seconds;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  const std::string offset = utc_offset(t.offset_seconds);
  TimeTexts out;
  put_tm(out.iso, t.tm, 'T');
  out.date = out.iso.substr(0, 10);
  out.clock = out.iso.substr(11, 5);
  out.iso += offset;
  out.full.reserve(52);
  put_tm(out.full, t.tm, ' ');
  out.full += ' ';
  out.full += offset;
  out.full += " (";
  put_tm(out.full, utc, ' ');
  out.full += " UTC)";
  return out;
}

std::string full_time(Micros us) {
  return time_texts(us).full;
}

/// "2024-05-17T15:09:00Z" (or with fractional seconds), as details_json writes times;
/// nullopt for anything else.
std::optional<Micros> parse_utc(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) !=
      6)
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<Micros>(timegm(&tm)) * 1000000;
}

std::string local_date(Micros us) {
  return time_texts(us).date;
}

std::string human_size(std::int64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  } else if (bytes < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(bytes) / 1024);
  } else if (bytes < 1024LL * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / (1024 * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  }
  return buf;
}

std::string duration_text(double seconds) {
  if (!(seconds >= 0) || seconds > 1e9) return {};
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld h %02lld min %02lld s", s / 3600, s / 60 % 60, s % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%lld min %02lld s", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld s", s);
  return buf;
}

/// At most `max` code points of clean_for_html(text), "…" when cut.
std::string shorten(std::string_view text, std::size_t max) {
  std::string clean = clean_for_html(text);
  std::size_t points = 0;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    if ((static_cast<unsigned char>(clean[i]) & 0xC0U) == 0x80U) continue;
    if (points++ == max) {
      clean.resize(i);
      clean += "\xE2\x80\xA6";
      break;
    }
  }
  return clean;
}

std::string to_string(std::int64_t v) {
  return std::to_string(v);
}

/// Page 1 is "<stem>.html", page k "<stem>-p<k>.html": "-p<k>" never ends a stem of the
/// reader's (they end in "-<8 hex digits>", then maybe "-<n>" when two would be the same),
/// so no page of one conversation can be another's first page.
std::string page_file(const std::string& stem, std::int64_t page) {
  return page <= 1 ? stem + ".html" : stem + "-p" + std::to_string(page) + ".html";
}

/// relative_url() of a page of ours; our file stems are safe, so it never fails.
std::string page_url(const std::string& file) {
  auto url = relative_url(file);
  return url ? *url : std::string("index.html");
}

// ---- page frame ------------------------------------------------------------------------

void page_head(Html& h, const std::string& csp, std::string_view title) {
  h.raw_trusted("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
  h.empty("meta", {{"http-equiv", "Content-Security-Policy"}, {"content", csp}});
  h.raw_trusted(
      "<meta name=\"referrer\" content=\"no-referrer\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
  h.element("title", {}, title);
  h.raw_trusted("<style>");
  h.raw_trusted(k_css);
  h.raw_trusted("</style></head>\n<body>");
}

void page_top(Html& h, std::string_view site_title, std::string_view heading) {
  h.open("header", {{"class", "top"}});
  h.open("nav", {{"class", "crumbs"}});
  h.element("a", {{"href", "index.html"}}, "All conversations");
  h.element("a", {{"href", "stats.html"}}, "Statistics");
  h.element("span", {}, site_title);
  h.close("nav");
  h.element("h1", {}, heading);
}

void page_end(Html& h, bool with_script) {
  if (with_script) {
    h.raw_trusted("<script>");
    h.raw_trusted(k_script);
    h.raw_trusted("</script>");
  }
  h.raw_trusted("\n</body></html>\n");
}

/// A file written as it is built; OutputError names it when writing fails.
class PageFile {
 public:
  explicit PageFile(std::filesystem::path path) : m_path(std::move(path)) {
    m_out.open(m_path, std::ios::binary | std::ios::trunc);
    if (!m_out) fail();
  }
  void write(Html& h) {
    m_out.write(h.str().data(), static_cast<std::streamsize>(h.size()));
    if (!m_out) fail();
    h.clear();
  }
  void close(Html& h) {
    write(h);
    m_out.close();
    if (m_out.fail()) fail();
  }

 private:
  [[noreturn]] void fail() const {
    const int e = errno;
    throw OutputError("archive page", m_path.string(), e ? std::strerror(e) : "write failed");
  }
  std::filesystem::path m_path;
  std::ofstream m_out;
};

// ---- details ---------------------------------------------------------------------------

const nlohmann::json* member(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string string_of(const nlohmann::json* j, const char* key) {
  if (!j) return {};
  const nlohmann::json* v = member(*j, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

bool iprefix(std::string_view s, std::size_t at, std::string_view prefix) {
  if (s.size() - at < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[at + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != prefix[i]) return false;
  }
  return true;
}

/// The URL starting at `at` (http://, https://, mailto:) and its length; 0 if none.
std::size_t url_length(std::string_view s, std::size_t at) {
  if (!(iprefix(s, at, "http://") || iprefix(s, at, "https://") || iprefix(s, at, "mailto:")))
    return 0;
  if (at > 0) {
    const char before = s[at - 1];
    if ((before >= 'a' && before <= 'z') || (before >= 'A' && before <= 'Z')) return 0;
  }
  std::size_t end = at;
  while (end < s.size()) {
    const auto c = static_cast<unsigned char>(s[end]);
    if (c <= 0x20 || c == '<' || c == '>' || c == '"' || c == '\'' || c == 0x7F) break;
    ++end;
  }
  while (end > at && std::strchr(".,;:!?)]}", s[end - 1]) != nullptr) --end;
  return end - at;
}

}  // namespace

std::string html_content_security_policy() {
  return "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src " +
         csp_hash(k_css) + "; script-src " + csp_hash(k_script) +
         "; base-uri 'none'; form-action 'none'";
}

namespace {

class HtmlWriter final : public ArchiveWriter {
 public:
  HtmlWriter(std::filesystem::path dir, HtmlOptions options)
      : m_dir(std::move(dir)),
        m_options(std::move(options)),
        m_csp(html_content_security_policy()) {
    if (m_options.messages_per_page == 0) m_options.messages_per_page = 1;
  }

  void begin(const std::vector<Conversation>& conversations) override;
  void begin_conversation(const Conversation& conversation) override;
  void message(const Message& message) override;
  void end_conversation() override;
  void finish(const Statistics& statistics) override;

 private:
  void open_page();
  void close_page(bool more);
  void page_nav();
  void render(const Message& m);
  void render_text(std::string_view text, const nlohmann::json* mentions);
  void render_time(const TimeTexts& t);
  void render_attachments(const Message& m, const nlohmann::json& details);
  void render_reactions(const nlohmann::json& reactions);
  void render_call(const nlohmann::json& call, const Message& m);
  std::string name_of(const std::string& id) const;

  std::filesystem::path m_dir;
  HtmlOptions m_options;
  std::string m_csp;
  Html m_html;

  // The conversation being written.
  Conversation m_conversation;  // a copy: the caller's may not outlive begin_conversation()
  std::unordered_map<std::string, std::string> m_names;  // participant id -> display name
  std::unique_ptr<PageFile> m_page;
  std::int64_t m_page_number = 0;
  std::int64_t m_pages_expected = 1;
  std::size_t m_on_page = 0;
  std::int64_t m_index = 0;  // of the message within the conversation
  std::string m_day;
  std::string m_heading;
};

void HtmlWriter::begin(const std::vector<Conversation>& conversations) {
  Html& h = m_html;
  page_head(h, m_csp, m_options.title);
  page_top(h, m_options.title, m_options.title);
  std::int64_t total = 0;
  for (const auto& c : conversations) total += c.message_count;
  h.element("p", {{"class", "meta"}},
            to_string(static_cast<std::int64_t>(conversations.size())) + " conversations, " +
                to_string(total) + " messages");
  h.close("header");
  h.open("main", {{"class", "wide"}});
  h.open("div", {{"class", "filter"}});
  h.empty("input", {{"id", "filter"},
                    {"type", "search"},
                    {"placeholder", "Filter conversations"},
                    {"aria-label", "Filter conversations"}});
  h.element("span", {{"id", "shown"}, {"class", "meta"}}, "");
  h.close("div");
  h.raw_trusted(
      "<table id=\"conversations\"><thead><tr>"
      "<th><button type=\"button\">Conversation</button></th>"
      "<th><button type=\"button\">Type</button></th>"
      "<th class=\"n\"><button type=\"button\">Participants</button></th>"
      "<th class=\"n\"><button type=\"button\">Messages</button></th>"
      "<th class=\"n\"><button type=\"button\">First message</button></th>"
      "<th class=\"n\"><button type=\"button\">Last message</button></th>"
      "</tr></thead><tbody>\n");
  PageFile file(m_dir / "index.html");
  for (const auto& c : conversations) {
    const std::string name = c.display_name.empty() ? c.conversation_id : c.display_name;
    h.open("tr");
    h.open("td", {{"data-sort", clean_for_html(name)}});
    h.element("a", {{"href", page_url(page_file(c.file_stem, 1))}}, name);
    h.close("td");
    h.element("td", {{"data-sort", c.type}}, c.type);
    const std::string participants = to_string(static_cast<std::int64_t>(c.participants.size()));
    h.element("td", {{"class", "n"}, {"data-sort", participants}}, participants);
    h.element("td", {{"class", "n"}, {"data-sort", to_string(c.message_count)}},
              to_string(c.message_count));
    for (const auto& at : {c.first_message_at, c.last_message_at}) {
      const std::string sort = at ? to_string(*at) : "0";
      h.open("td", {{"class", "n"}, {"data-sort", sort}});
      if (at) {
        const TimeTexts t = time_texts(*at);
        h.element("time", {{"datetime", t.iso}, {"title", t.full}}, t.date);
      }
      h.close("td");
    }
    h.raw_trusted("</tr>\n");
    if (h.size() > (256U << 10U)) file.write(h);
  }
  h.raw_trusted("</tbody></table>");
  h.close("main");
  page_end(h, true);
  file.close(h);
}

void HtmlWriter::begin_conversation(const Conversation& conversation) {
  // The reader's stems are safe (archive.hpp); a page is never written outside the directory.
  const std::string& stem = conversation.file_stem;
  if (stem.empty() || stem == "." || stem == ".." ||
      stem.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos)
    throw std::invalid_argument("html archive: not a safe file name for conversation " +
                                skype_etl::printable(conversation.conversation_id) + ": " +
                                skype_etl::quoted(stem));
  m_conversation = conversation;
  m_names.clear();
  for (const auto& p : conversation.participants)
    if (!p.display_name.empty()) m_names.emplace(p.id, p.display_name);
  m_heading =
      conversation.display_name.empty() ? conversation.conversation_id : conversation.display_name;
  const auto per_page = static_cast<std::int64_t>(m_options.messages_per_page);
  m_pages_expected =
      std::max<std::int64_t>(1, (conversation.message_count + per_page - 1) / per_page);
  m_page_number = 0;
  m_index = 0;
  open_page();
}

std::string HtmlWriter::name_of(const std::string& id) const {
  const auto it = m_names.find(id);
  if (it != m_names.end()) return it->second;
  return id;
}

void HtmlWriter::page_nav() {
  const std::int64_t pages = std::max(m_pages_expected, m_page_number);
  if (pages <= 1) return;
  Html& h = m_html;
  const std::string& stem = m_conversation.file_stem;
  h.open("nav", {{"class", "pages"}, {"aria-label", "Pages"}});
  if (m_page_number > 1)
    h.element("a", {{"href", page_url(page_file(stem, m_page_number - 1))}, {"rel", "prev"}},
              "\xE2\x80\xB9 Previous");
  bool gap = false;
  for (std::int64_t p = 1; p <= pages; ++p) {
    const bool near = p == 1 || p == pages || (p >= m_page_number - 3 && p <= m_page_number + 3);
    if (!near) {
      if (!gap) h.element("span", {{"class", "gap"}}, "\xE2\x80\xA6");
      gap = true;
      continue;
    }
    gap = false;
    if (p == m_page_number)
      h.element("span", {{"class", "current"}}, to_string(p));
    else
      h.element("a", {{"href", page_url(page_file(stem, p))}}, to_string(p));
  }
  if (m_page_number < pages)
    h.element("a", {{"href", page_url(page_file(stem, m_page_number + 1))}, {"rel", "next"}},
              "Next \xE2\x80\xBA");
  h.close("nav");
}

void HtmlWriter::open_page() {
  ++m_page_number;
  m_on_page = 0;
  m_day.clear();
  const Conversation& c = m_conversation;
  m_page = std::make_unique<PageFile>(m_dir / page_file(c.file_stem, m_page_number));
  Html& h = m_html;
  std::string title = m_heading;
  if (m_pages_expected > 1)
    title += " (page " + to_string(m_page_number) + " of " + to_string(m_pages_expected) + ")";
  page_head(h, m_csp, title);
  page_top(h, m_options.title, m_heading);
  std::string meta = c.type.empty() ? std::string("conversation") : c.type;
  meta += " \xC2\xB7 " + to_string(static_cast<std::int64_t>(c.participants.size())) +
          " participants \xC2\xB7 " + to_string(c.message_count) + " messages";
  if (c.first_message_at && c.last_message_at)
    meta += " \xC2\xB7 " + local_date(*c.first_message_at) + " \xE2\x80\x93 " +
            local_date(*c.last_message_at);
  h.element("p", {{"class", "meta"}}, meta);
  if (!c.topic.empty() && c.topic != m_heading)
    h.element("p", {{"class", "meta"}}, "Topic: " + c.topic);
  h.close("header");
  h.open("main");
  page_nav();
}

void HtmlWriter::close_page(bool more) {
  if (more && m_page_number >= m_pages_expected) m_pages_expected = m_page_number + 1;
  Html& h = m_html;
  if (m_on_page == 0) h.element("p", {{"class", "system"}}, "No messages.");
  page_nav();
  h.close("main");
  page_end(h, false);
  m_page->close(h);
  m_page.reset();
}

void HtmlWriter::message(const Message& m) {
  if (m_on_page >= m_options.messages_per_page) {
    close_page(true);
    open_page();
  }
  render(m);
  ++m_on_page;
  ++m_index;
  if (m_html.size() > (256U << 10U)) m_page->write(m_html);
}

void HtmlWriter::end_conversation() {
  close_page(false);
  // Pages the count promised but no message filled: written, so that no link is broken.
  while (m_page_number < m_pages_expected) {
    open_page();
    close_page(false);
  }
}

void HtmlWriter::render_time(const TimeTexts& t) {
  m_html.element("time", {{"datetime", t.iso}, {"title", t.full}}, t.clock);
}

void HtmlWriter::render_text(std::string_view text, const nlohmann::json* mentions) {
  std::vector<std::string> names;
  if (mentions && mentions->is_array())
    for (const auto& mention : *mentions) {
      std::string name = string_of(&mention, "name");
      if (!name.empty()) names.push_back(std::move(name));
    }
  Html& h = m_html;
  std::size_t plain = 0;
  for (std::size_t at = 0; at < text.size();) {
    const char c = text[at];
    const bool may_be_url = c == 'h' || c == 'H' || c == 'm' || c == 'M';
    if (!may_be_url && names.empty()) {
      ++at;
      continue;
    }
    if (const std::size_t n = may_be_url ? url_length(text, at) : 0; n != 0) {
      h.text(text.substr(plain, at - plain));
      h.link(text.substr(at, n));
      at += n;
      plain = at;
      continue;
    }
    std::size_t mention = 0;
    for (const auto& name : names)
      if (text.compare(at, name.size(), name) == 0) {
        mention = name.size();
        break;
      }
    if (mention != 0) {
      // "@name" when written so, else the name alone.
      std::size_t from = at > plain && text[at - 1] == '@' ? at - 1 : at;
      h.text(text.substr(plain, from - plain));
      h.element("span", {{"class", "mention"}}, text.substr(from, at + mention - from));
      at += mention;
      plain = at;
      continue;
    }
    ++at;
  }
  h.text(text.substr(plain));
}

void HtmlWriter::render_call(const nlohmann::json& call, const Message& m) {
  Html& h = m_html;
  std::string line = "\xF0\x9F\x93\x9E Call";
  const std::string state = string_of(&call, "state");
  if (!state.empty()) line += " " + state;
  if (const auto* d = member(call, "duration_seconds"); d && d->is_number()) {
    const std::string text = duration_text(d->get<double>());
    if (!text.empty()) line += " \xC2\xB7 " + text;
  }
  std::string with;
  if (const auto* parts = member(call, "participants"); parts && parts->is_array())
    for (const auto& p : *parts) {
      std::string name = string_of(&p, "name");
      if (name.empty()) name = name_of(string_of(&p, "id"));
      if (name.empty()) continue;
      if (!with.empty()) with += ", ";
      with += name;
    }
  if (!with.empty()) line += " \xC2\xB7 with " + with;
  h.element("div", {{"class", "call"}}, line);
  (void)m;
}

void HtmlWriter::render_attachments(const Message& m, const nlohmann::json& details) {
  Html& h = m_html;
  const nlohmann::json* files = member(details, "files");
  if (m.attachments.empty() && !(files && files->is_array() && !files->empty())) return;
  h.open("ul", {{"class", "files"}});
  for (const Attachment& a : m.attachments) {
    h.open("li");
    std::string name = a.name;
    if (name.empty()) name = a.kind.empty() ? std::string("attachment") : a.kind;
    const auto url = a.media_path.empty() ? std::nullopt : relative_url(a.media_path);
    const bool image = a.content_type.rfind("image/", 0) == 0 || a.kind == "image" ||
                       a.kind == "picture" || a.kind == "sticker";
    const bool video = a.content_type.rfind("video/", 0) == 0 || a.kind == "video";
    const bool audio = a.content_type.rfind("audio/", 0) == 0 || a.kind == "audio";
    h.text("\xF0\x9F\x93\x8E ");
    if (url)
      h.element("a", {{"href", *url}}, name);
    else
      h.text(name);
    if (a.size) h.text(" ").element("span", {{"class", "size"}}, human_size(*a.size));
    if (url && image) {
      h.open("a", {{"href", *url}});
      h.empty("img", {{"src", *url}, {"alt", name}, {"loading", "lazy"}});
      h.close("a");
    } else if (url && video) {
      h.open("video", {{"src", *url}, {"controls", "controls"}, {"preload", "metadata"}});
      h.close("video");
    } else if (url && audio) {
      h.open("audio", {{"src", *url}, {"controls", "controls"}, {"preload", "metadata"}});
      h.close("audio");
    }
    h.close("li");
  }
  if (m.attachments.empty())
    for (const auto& f : *files) {
      h.open("li");
      std::string name = string_of(&f, "name");
      h.text("\xF0\x9F\x93\x8E ").text(name.empty() ? std::string("file") : name);
      if (const auto* size = member(f, "size"); size && size->is_number_integer())
        h.text(" ").element("span", {{"class", "size"}}, human_size(size->get<std::int64_t>()));
      h.close("li");
    }
  h.close("ul");
}

void HtmlWriter::render_reactions(const nlohmann::json& reactions) {
  if (!reactions.is_array() || reactions.empty()) return;
  static const std::pair<const char*, const char*> emoji[] = {
      {"like", "\xF0\x9F\x91\x8D"},  {"heart", "\xE2\x9D\xA4\xEF\xB8\x8F"},
      {"laugh", "\xF0\x9F\x98\x86"}, {"surprised", "\xF0\x9F\x98\xAE"},
      {"sad", "\xF0\x9F\x98\xA2"},   {"angry", "\xF0\x9F\x98\xA0"},
      {"yes", "\xE2\x9C\x85"},       {"hug", "\xF0\x9F\xA4\x97"}};
  Html& h = m_html;
  h.open("div", {{"class", "reactions"}});
  for (const auto& r : reactions) {
    std::string key = string_of(&r, "key");
    if (key.empty()) continue;
    std::string shown = key;
    for (const auto& [k, e] : emoji)
      if (key == k) shown = e;
    std::string who;
    std::size_t count = 0;
    if (const auto* users = member(r, "users"); users && users->is_array())
      for (const auto& u : *users) {
        ++count;
        if (!who.empty()) who += ", ";
        std::string id = string_of(&u, "mri");
        if (id.rfind("8:", 0) == 0) id = id.substr(2);
        who += name_of(id);
      }
    if (count > 1) shown += " " + std::to_string(count);
    h.element("span", {{"class", "reaction"}, {"title", key + (who.empty() ? "" : ": " + who)}},
              shown);
  }
  h.close("div");
}

void HtmlWriter::render(const Message& m) {
  Html& h = m_html;
  nlohmann::json details;
  if (!m.details_json.empty()) details = nlohmann::json::parse(m.details_json, nullptr, false);
  if (details.is_discarded()) details = nullptr;

  std::optional<TimeTexts> sent;
  if (m.sent_at) {
    sent = time_texts(*m.sent_at);
    if (sent->date != m_day) {
      m_day = sent->date;
      h.open("h2", {{"class", "day"}});
      h.element("span", {}, format(local_time(*m.sent_at).tm, "%A, %e %B %Y"));
      h.close("h2");
    }
  }
  const std::string id = "m" + to_string(m_index + 1);
  const bool membership = member(details, "membership") != nullptr;
  // System events as the txt format tells them (is_system_event: ThreadActivity/, Event/,
  // InviteFreeRelationshipChanged/), and anything the server wrote; a call is a bubble of
  // its own (who called, how long).
  const std::string_view type = m.message_type;
  const bool system = membership || m.is_server_generated ||
                      type.rfind("ThreadActivity/", 0) == 0 || type.rfind("Event/", 0) == 0 ||
                      type.rfind("InviteFreeRelationshipChanged/", 0) == 0;
  if (system && member(details, "call") == nullptr) {
    h.open("div", {{"class", "system"}, {"id", id}});
    h.open("span");
    if (sent) {
      render_time(*sent);
      h.text(" ");
    }
    std::string text = m.content_text;
    if (text.empty() && membership) {
      const auto& mb = details["membership"];
      text = name_of(string_of(&mb, "initiator")) + " " + string_of(&mb, "kind");
      if (const auto* targets = member(mb, "targets"); targets && targets->is_array())
        for (const auto& t : *targets)
          if (t.is_string()) text += " " + name_of(t.get<std::string>());
      const std::string value = string_of(&mb, "value");
      if (!value.empty()) text += ": " + value;
    }
    if (text.empty()) text = m.message_type;
    h.text(text);
    h.close("span");
    h.close("div");
    return;
  }

  std::string cls = "msg";
  if (m.from_owner) cls += " own";
  if (m.is_deleted) cls += " deleted";
  h.open("article", {{"class", cls}, {"id", id}});
  h.open("div", {{"class", "head"}});
  h.element("span", {{"class", "sender"}, {"title", m.sender_id}},
            m.sender_name.empty() ? m.sender_id : m.sender_name);
  if (sent) render_time(*sent);
  if (m.is_edited)
    h.element(
        "span",
        {{"class", "tag"}, {"title", m.edited_at ? "edited " + full_time(*m.edited_at) : "edited"}},
        "edited");
  if (m.is_deleted)
    h.element("span",
              {{"class", "tag"},
               {"title", m.deleted_at ? "deleted " + full_time(*m.deleted_at) : "deleted"}},
              "deleted");
  h.close("div");

  if (const auto* quote = member(details, "quote")) {
    h.open("blockquote");
    std::string cite = string_of(quote, "author_name");
    if (cite.empty()) cite = name_of(string_of(quote, "author_id"));
    std::string time = string_of(quote, "time");
    const auto when = parse_utc(time);
    if (when) time = format(local_time(*when).tm, "%Y-%m-%d %H:%M");
    if (!time.empty()) cite += (cite.empty() ? "" : ", ") + time;
    if (!cite.empty()) h.element("cite", {{"title", when ? full_time(*when) : time}}, cite);
    h.element("div", {{"class", "quoted"}}, string_of(quote, "text"));
    h.close("blockquote");
  }
  if (const auto* call = member(details, "call")) render_call(*call, m);

  if (m.is_deleted && m.content_text.empty()) {
    h.element("div", {{"class", "body"}}, "This message was deleted.");
  } else if (!m.content_text.empty()) {
    h.open("div", {{"class", "body"}});
    render_text(m.content_text, member(details, "mentions"));
    h.close("div");
  }

  // Links the markup named that the text does not show.
  if (const auto* links = member(details, "links"); links && links->is_array()) {
    bool opened = false;
    for (const auto& l : *links) {
      if (!l.is_string()) continue;
      const std::string& url = l.get_ref<const std::string&>();
      if (m.content_text.find(url) != std::string::npos) continue;
      if (!opened) h.open("div", {{"class", "links"}});
      opened = true;
      h.link(url).raw_trusted(" ");
    }
    if (opened) h.close("div");
  }
  if (const auto* location = member(details, "location")) {
    std::string where = string_of(location, "address");
    h.element("div", {{"class", "meta"}},
              "\xF0\x9F\x93\x8D " + (where.empty() ? "Location" : where));
  }
  if (const auto* contacts = member(details, "contacts"); contacts && contacts->is_array())
    for (const auto& c : *contacts)
      h.element("div", {{"class", "meta"}}, "\xF0\x9F\x91\xA4 " + string_of(&c, "name"));
  if (const auto* poll = member(details, "poll")) {
    const std::string question = string_of(poll, "question");
    if (!question.empty()) h.element("div", {{"class", "meta"}}, "Poll: " + question);
  }
  render_attachments(m, details);
  if (const auto* reactions = member(details, "reactions")) render_reactions(*reactions);
  h.close("article");
  h.raw_trusted("\n");
}

// ---- stats.html ------------------------------------------------------------------------

void month_chart(Html& h, const Statistics& s) {
  const auto& months = s.per_month;
  if (months.empty()) {
    h.element("p", {{"class", "summary"}}, "No messages.");
    return;
  }
  std::int64_t max = 1;
  for (const auto& m : months) max = std::max(max, m.messages);
  const double width = 960, height = 260, left = 56, right = 12, top = 12, bottom = 40;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const double step = plot_w / static_cast<double>(months.size());
  h.open("svg", {{"xmlns", "http://www.w3.org/2000/svg"},
                 {"viewBox", "0 0 960 260"},
                 {"width", "960"},
                 {"height", "260"},
                 {"role", "img"},
                 {"class", "chart"},
                 {"data-chart", "months"},
                 {"aria-label", "Messages per month"}});
  for (int i = 0; i <= 4; ++i) {
    const double y = top + plot_h - plot_h * i / 4;
    h.empty("line", {{"class", "axis"},
                     {"x1", svg_number(left)},
                     {"x2", svg_number(width - right)},
                     {"y1", svg_number(y)},
                     {"y2", svg_number(y)}});
    h.element("text",
              {{"x", svg_number(left - 6)}, {"y", svg_number(y + 4)}, {"text-anchor", "end"}},
              to_string(static_cast<std::int64_t>(static_cast<double>(max) * i / 4 + 0.5)));
  }
  const std::size_t label_every = std::max<std::size_t>(1, (months.size() + 11) / 12);
  for (std::size_t i = 0; i < months.size(); ++i) {
    const auto& m = months[i];
    const double bar_h = plot_h * static_cast<double>(m.messages) / static_cast<double>(max);
    const double x = left + step * static_cast<double>(i);
    h.open("rect", {{"class", "bar"},
                    {"x", svg_number(x + step * 0.1)},
                    {"y", svg_number(top + plot_h - bar_h)},
                    {"width", svg_number(std::max(step * 0.8, 0.5))},
                    {"height", svg_number(bar_h)}});
    h.element("title", {}, m.month + ": " + to_string(m.messages) + " messages");
    h.close("rect");
    if (i % label_every == 0)
      h.element("text",
                {{"x", svg_number(x + step / 2)},
                 {"y", svg_number(height - bottom + 16)},
                 {"text-anchor", "middle"}},
                m.month);
  }
  h.close("svg");
}

void heat_map(Html& h, const Statistics& s) {
  static const char* days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  std::int64_t max = 0;
  for (const auto& row : s.hour_by_weekday)
    for (const auto v : row) max = std::max(max, v);
  const double left = 44, top = 22, cell_w = 36, cell_h = 26;
  h.open("svg", {{"xmlns", "http://www.w3.org/2000/svg"},
                 {"viewBox", "0 0 920 210"},
                 {"width", "920"},
                 {"height", "210"},
                 {"role", "img"},
                 {"class", "chart"},
                 {"data-chart", "heat"},
                 {"aria-label", "Messages by hour of day and weekday"}});
  for (int hour = 0; hour < 24; hour += 2)
    h.element("text",
              {{"x", svg_number(left + cell_w * hour + cell_w / 2)},
               {"y", "14"},
               {"text-anchor", "middle"}},
              to_string(hour) + "h");
  for (int d = 0; d < 7; ++d) {
    h.element("text", {{"x", "0"}, {"y", svg_number(top + cell_h * d + cell_h * 0.65)}}, days[d]);
    for (int hour = 0; hour < 24; ++hour) {
      const std::int64_t v = s.hour_by_weekday[d][hour];
      const double level =
          max > 0 ? 0.12 + 0.88 * static_cast<double>(v) / static_cast<double>(max) : 0;
      h.open("rect", {{"class", v > 0 ? "cell" : "empty"},
                      {"x", svg_number(left + cell_w * hour + 1)},
                      {"y", svg_number(top + cell_h * d + 1)},
                      {"width", svg_number(cell_w - 2)},
                      {"height", svg_number(cell_h - 2)},
                      {"rx", "3"},
                      {"fill-opacity", v > 0 ? svg_number(level) : "1"}});
      h.element("title", {},
                std::string(days[d]) + " " + to_string(hour) + ":00\xE2\x80\x93" + to_string(hour) +
                    ":59: " + to_string(v) + " messages");
      h.close("rect");
    }
  }
  h.close("svg");
}

void ranking(Html& h, const std::vector<Statistics::Ranked>& ranked, std::string_view chart) {
  const std::size_t n = std::min<std::size_t>(ranked.size(), 15);
  if (n == 0) {
    h.element("p", {{"class", "summary"}}, "None.");
    return;
  }
  std::int64_t max = 1;
  for (std::size_t i = 0; i < n; ++i) max = std::max(max, ranked[i].messages);
  const double row = 24, label_w = 300, bar_w = 560;
  const std::string height = svg_number(row * static_cast<double>(n) + 8);
  const std::string box = "0 0 960 " + height;
  h.open("svg", {{"xmlns", "http://www.w3.org/2000/svg"},
                 {"viewBox", box},
                 {"width", "960"},
                 {"height", height},
                 {"role", "img"},
                 {"class", "chart"},
                 {"data-chart", chart}});
  for (std::size_t i = 0; i < n; ++i) {
    const auto& r = ranked[i];
    const double y = row * static_cast<double>(i) + 4;
    const std::string name = r.name.empty() ? r.id : r.name;
    h.open("text", {{"class", "label"},
                    {"x", svg_number(label_w - 8)},
                    {"y", svg_number(y + 15)},
                    {"text-anchor", "end"}});
    h.text(shorten(name, 40));
    h.element("title", {}, name);
    h.close("text");
    const double w = bar_w * static_cast<double>(r.messages) / static_cast<double>(max);
    h.empty("rect", {{"class", "bar"},
                     {"x", svg_number(label_w)},
                     {"y", svg_number(y + 3)},
                     {"width", svg_number(std::max(w, 1.0))},
                     {"height", svg_number(row - 8)},
                     {"rx", "3"}});
    h.element("text",
              {{"x", svg_number(label_w + std::max(w, 1.0) + 6)}, {"y", svg_number(y + 15)}},
              to_string(r.messages));
  }
  h.close("svg");
}

void HtmlWriter::finish(const Statistics& s) {
  Html& h = m_html;
  page_head(h, m_csp, "Statistics \xC2\xB7 " + m_options.title);
  page_top(h, m_options.title, "Statistics");
  std::string summary =
      to_string(s.messages) + " messages in " + to_string(s.conversations) + " conversations";
  if (s.first_message_at && s.last_message_at)
    summary +=
        ", " + local_date(*s.first_message_at) + " \xE2\x80\x93 " + local_date(*s.last_message_at);
  h.element("p", {{"class", "meta"}}, summary);
  h.close("header");
  h.open("main", {{"class", "wide"}});
  h.element("h2", {}, "Messages per month");
  month_chart(h, s);
  h.element("h2", {}, "Hour of day and weekday");
  heat_map(h, s);
  h.element("h2", {}, "Top conversations");
  ranking(h, s.top_conversations, "conversations");
  h.element("h2", {}, "Top senders");
  ranking(h, s.top_senders, "senders");
  h.close("main");
  page_end(h, false);
  PageFile file(m_dir / "stats.html");
  file.close(h);
}

}  // namespace

std::unique_ptr<ArchiveWriter> make_html_writer(const std::filesystem::path& dir,
                                                const HtmlOptions& options) {
  return std::make_unique<HtmlWriter>(dir, options);
}

}  // namespace skype_etl::detail::archive
