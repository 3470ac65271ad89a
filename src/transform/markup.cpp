#include "transform/markup.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/identity.hpp"
#include "transform/timestamps.hpp"

namespace skype_etl::detail {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// ---------------------------------------------------------------------------------------
// Character classes

constexpr bool is_alpha(char c) noexcept {
  return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}
constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
constexpr bool is_alnum(char c) noexcept {
  return is_alpha(c) || is_digit(c);
}
constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
constexpr bool is_name_char(char c) noexcept {
  return is_alnum(c) || c == '_' || c == '-' || c == ':' || c == '.';
}
constexpr char to_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

/// Bytes that stop the plain-text scan: '<', '&' and NUL (>= 0x80 is checked separately).
struct StopTable {
  std::array<bool, 256> stop{};
  constexpr StopTable() {
    stop['<'] = true;
    stop['&'] = true;
    stop[0] = true;
  }
};
constexpr StopTable kStop;

void append_utf8(std::string& out, std::uint32_t cp) {
  char buf[4];
  std::size_t n;
  if (cp < 0x80) {
    buf[0] = static_cast<char>(cp);
    n = 1;
  } else if (cp < 0x800) {
    buf[0] = static_cast<char>(0xC0 | (cp >> 6));
    buf[1] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    buf[0] = static_cast<char>(0xE0 | (cp >> 12));
    buf[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    buf[2] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    buf[0] = static_cast<char>(0xF0 | (cp >> 18));
    buf[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 4;
  }
  out.append(buf, n);
}

// ---------------------------------------------------------------------------------------
// Named entities: HTML 4 (Latin-1, symbols, Greek, specials) plus &apos;.

struct NamedEntity {
  std::string_view name;
  std::uint32_t code_point;
};

constexpr NamedEntity kEntities[] = {
    {"quot", 34},     {"amp", 38},      {"apos", 39},      {"lt", 60},        {"gt", 62},
    {"nbsp", 160},    {"iexcl", 161},   {"cent", 162},     {"pound", 163},    {"curren", 164},
    {"yen", 165},     {"brvbar", 166},  {"sect", 167},     {"uml", 168},      {"copy", 169},
    {"ordf", 170},    {"laquo", 171},   {"not", 172},      {"shy", 173},      {"reg", 174},
    {"macr", 175},    {"deg", 176},     {"plusmn", 177},   {"sup2", 178},     {"sup3", 179},
    {"acute", 180},   {"micro", 181},   {"para", 182},     {"middot", 183},   {"cedil", 184},
    {"sup1", 185},    {"ordm", 186},    {"raquo", 187},    {"frac14", 188},   {"frac12", 189},
    {"frac34", 190},  {"iquest", 191},  {"Agrave", 192},   {"Aacute", 193},   {"Acirc", 194},
    {"Atilde", 195},  {"Auml", 196},    {"Aring", 197},    {"AElig", 198},    {"Ccedil", 199},
    {"Egrave", 200},  {"Eacute", 201},  {"Ecirc", 202},    {"Euml", 203},     {"Igrave", 204},
    {"Iacute", 205},  {"Icirc", 206},   {"Iuml", 207},     {"ETH", 208},      {"Ntilde", 209},
    {"Ograve", 210},  {"Oacute", 211},  {"Ocirc", 212},    {"Otilde", 213},   {"Ouml", 214},
    {"times", 215},   {"Oslash", 216},  {"Ugrave", 217},   {"Uacute", 218},   {"Ucirc", 219},
    {"Uuml", 220},    {"Yacute", 221},  {"THORN", 222},    {"szlig", 223},    {"agrave", 224},
    {"aacute", 225},  {"acirc", 226},   {"atilde", 227},   {"auml", 228},     {"aring", 229},
    {"aelig", 230},   {"ccedil", 231},  {"egrave", 232},   {"eacute", 233},   {"ecirc", 234},
    {"euml", 235},    {"igrave", 236},  {"iacute", 237},   {"icirc", 238},    {"iuml", 239},
    {"eth", 240},     {"ntilde", 241},  {"ograve", 242},   {"oacute", 243},   {"ocirc", 244},
    {"otilde", 245},  {"ouml", 246},    {"divide", 247},   {"oslash", 248},   {"ugrave", 249},
    {"uacute", 250},  {"ucirc", 251},   {"uuml", 252},     {"yacute", 253},   {"thorn", 254},
    {"yuml", 255},    {"OElig", 338},   {"oelig", 339},    {"Scaron", 352},   {"scaron", 353},
    {"Yuml", 376},    {"fnof", 402},    {"circ", 710},     {"tilde", 732},    {"Alpha", 913},
    {"Beta", 914},    {"Gamma", 915},   {"Delta", 916},    {"Epsilon", 917},  {"Zeta", 918},
    {"Eta", 919},     {"Theta", 920},   {"Iota", 921},     {"Kappa", 922},    {"Lambda", 923},
    {"Mu", 924},      {"Nu", 925},      {"Xi", 926},       {"Omicron", 927},  {"Pi", 928},
    {"Rho", 929},     {"Sigma", 931},   {"Tau", 932},      {"Upsilon", 933},  {"Phi", 934},
    {"Chi", 935},     {"Psi", 936},     {"Omega", 937},    {"alpha", 945},    {"beta", 946},
    {"gamma", 947},   {"delta", 948},   {"epsilon", 949},  {"zeta", 950},     {"eta", 951},
    {"theta", 952},   {"iota", 953},    {"kappa", 954},    {"lambda", 955},   {"mu", 956},
    {"nu", 957},      {"xi", 958},      {"omicron", 959},  {"pi", 960},       {"rho", 961},
    {"sigmaf", 962},  {"sigma", 963},   {"tau", 964},      {"upsilon", 965},  {"phi", 966},
    {"chi", 967},     {"psi", 968},     {"omega", 969},    {"thetasym", 977}, {"upsih", 978},
    {"piv", 982},     {"ensp", 8194},   {"emsp", 8195},    {"thinsp", 8201},  {"zwnj", 8204},
    {"zwj", 8205},    {"lrm", 8206},    {"rlm", 8207},     {"ndash", 8211},   {"mdash", 8212},
    {"lsquo", 8216},  {"rsquo", 8217},  {"sbquo", 8218},   {"ldquo", 8220},   {"rdquo", 8221},
    {"bdquo", 8222},  {"dagger", 8224}, {"Dagger", 8225},  {"bull", 8226},    {"hellip", 8230},
    {"permil", 8240}, {"prime", 8242},  {"Prime", 8243},   {"lsaquo", 8249},  {"rsaquo", 8250},
    {"oline", 8254},  {"frasl", 8260},  {"euro", 8364},    {"image", 8465},   {"weierp", 8472},
    {"real", 8476},   {"trade", 8482},  {"alefsym", 8501}, {"larr", 8592},    {"uarr", 8593},
    {"rarr", 8594},   {"darr", 8595},   {"harr", 8596},    {"crarr", 8629},   {"lArr", 8656},
    {"uArr", 8657},   {"rArr", 8658},   {"dArr", 8659},    {"hArr", 8660},    {"forall", 8704},
    {"part", 8706},   {"exist", 8707},  {"empty", 8709},   {"nabla", 8711},   {"isin", 8712},
    {"notin", 8713},  {"ni", 8715},     {"prod", 8719},    {"sum", 8721},     {"minus", 8722},
    {"lowast", 8727}, {"radic", 8730},  {"prop", 8733},    {"infin", 8734},   {"ang", 8736},
    {"and", 8743},    {"or", 8744},     {"cap", 8745},     {"cup", 8746},     {"int", 8747},
    {"there4", 8756}, {"sim", 8764},    {"cong", 8773},    {"asymp", 8776},   {"ne", 8800},
    {"equiv", 8801},  {"le", 8804},     {"ge", 8805},      {"sub", 8834},     {"sup", 8835},
    {"nsub", 8836},   {"sube", 8838},   {"supe", 8839},    {"oplus", 8853},   {"otimes", 8855},
    {"perp", 8869},   {"sdot", 8901},   {"lceil", 8968},   {"rceil", 8969},   {"lfloor", 8970},
    {"rfloor", 8971}, {"lang", 9001},   {"rang", 9002},    {"loz", 9674},     {"spades", 9824},
    {"clubs", 9827},  {"hearts", 9829}, {"diams", 9830},
};
constexpr std::size_t kEntityCount = sizeof kEntities / sizeof kEntities[0];

/// The table sorted by name once (thread-safe static initialisation).
const std::array<NamedEntity, kEntityCount>& sorted_entities() {
  static const std::array<NamedEntity, kEntityCount> table = [] {
    std::array<NamedEntity, kEntityCount> t{};
    std::copy(std::begin(kEntities), std::end(kEntities), t.begin());
    std::sort(t.begin(), t.end(),
              [](const NamedEntity& a, const NamedEntity& b) { return a.name < b.name; });
    return t;
  }();
  return table;
}

std::optional<std::uint32_t> lookup_entity(std::string_view name) {
  const auto& table = sorted_entities();
  auto it = std::lower_bound(table.begin(), table.end(), name,
                             [](const NamedEntity& e, std::string_view n) { return e.name < n; });
  if (it != table.end() && it->name == name) return it->code_point;
  return std::nullopt;
}

/// Decodes the entity at p ('&'); appends its text and returns the byte after it, or
/// returns nullptr when it is not a complete, known entity (the caller keeps '&' literally).
const char* decode_entity(const char* p, const char* end, std::string& out, MarkupResult& r) {
  const char* q = p + 1;
  if (q < end && *q == '#') {
    ++q;
    bool hex = false;
    if (q < end && (*q == 'x' || *q == 'X')) {
      hex = true;
      ++q;
    }
    std::uint64_t value = 0;
    std::size_t digits = 0;
    while (q < end && digits < 16) {
      const char c = *q;
      unsigned d;
      if (is_digit(c)) {
        d = static_cast<unsigned>(c - '0');
      } else if (hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
        d = static_cast<unsigned>((c | 0x20) - 'a' + 10);
      } else {
        break;
      }
      value = value * (hex ? 16 : 10) + d;
      if (value > 0x10FFFF) value = 0x110000;  // saturate: invalid anyway
      ++digits;
      ++q;
    }
    if (digits == 0 || q >= end || *q != ';') return nullptr;
    if (value == 0 || (value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) {
      out.append(kReplacement);
      ++r.invalid_utf8;
    } else {
      append_utf8(out, static_cast<std::uint32_t>(value));
    }
    return q + 1;
  }
  const char* name_begin = q;
  while (q < end && is_alnum(*q) && q - name_begin < 10) ++q;
  if (q == name_begin || q >= end || *q != ';') return nullptr;
  const auto cp =
      lookup_entity(std::string_view(name_begin, static_cast<std::size_t>(q - name_begin)));
  if (!cp) return nullptr;
  append_utf8(out, *cp);
  return q + 1;
}

// ---------------------------------------------------------------------------------------
// Elements

enum class El : std::uint8_t {
  other,
  at,
  a,
  quote,
  legacyquote,
  e_m,
  br,
  p,
  div,
  hr,
  img,
  wbr,
  partlist,
  part,
  name,
  duration,
  uriobject,
  originalname,
  filesize,
  meta,
  swift,
  title,
  description,
  question,
  answer,
  multiplechoice,
  contacts,
  c,
  location,
  files,
  file,
  addmember,
  deletemember,
  topicupdate,
  pictureupdate,
  roleupdate,
  historydisclosedupdate,
  joiningenabledupdate,
  eventtime,
  initiator,
  target,
  value,
  id,
  role,
  sms,
  status,
  failurereason,
  targets,
  encoded_body
};

struct ElName {
  std::string_view name;
  El el;
};
constexpr ElName kElements[] = {
    {"at", El::at},
    {"a", El::a},
    {"quote", El::quote},
    {"legacyquote", El::legacyquote},
    {"e_m", El::e_m},
    {"br", El::br},
    {"p", El::p},
    {"div", El::div},
    {"hr", El::hr},
    {"img", El::img},
    {"wbr", El::wbr},
    {"partlist", El::partlist},
    {"part", El::part},
    {"name", El::name},
    {"duration", El::duration},
    {"uriobject", El::uriobject},
    {"originalname", El::originalname},
    {"filesize", El::filesize},
    {"meta", El::meta},
    {"swift", El::swift},
    {"title", El::title},
    {"description", El::description},
    {"question", El::question},
    {"answer", El::answer},
    {"multiplechoice", El::multiplechoice},
    {"contacts", El::contacts},
    {"c", El::c},
    {"location", El::location},
    {"files", El::files},
    {"file", El::file},
    {"addmember", El::addmember},
    {"deletemember", El::deletemember},
    {"topicupdate", El::topicupdate},
    {"pictureupdate", El::pictureupdate},
    {"roleupdate", El::roleupdate},
    {"historydisclosedupdate", El::historydisclosedupdate},
    {"joiningenabledupdate", El::joiningenabledupdate},
    {"eventtime", El::eventtime},
    {"initiator", El::initiator},
    {"target", El::target},
    {"value", El::value},
    {"id", El::id},
    {"role", El::role},
    {"sms", El::sms},
    {"status", El::status},
    {"failurereason", El::failurereason},
    {"targets", El::targets},
    {"encoded_body", El::encoded_body},
};

El element_of(std::string_view name) noexcept {
  for (const auto& e : kElements)
    if (e.name.size() == name.size() && iequals(e.name, name)) return e.el;
  return El::other;
}

/// What closing a frame does.
enum class Kind : std::uint8_t {
  generic,
  mention,
  link,
  quote,
  suppress,
  call,
  call_part,
  part_name,
  part_duration,
  uri,
  contacts,
  location,
  file,
  membership,
  ev_time,
  ev_initiator,
  ev_target,
  ev_value,
  ev_id,
  ev_role,
  sms,
  poll,
  poll_title
};

struct Frame {
  El el;
  Kind kind;
  std::uint32_t out_start;
  std::string_view name;   ///< raw tag name (for El::other matching)
  std::string_view attrs;  ///< raw attribute text
};

std::string membership_kind(El el) {
  switch (el) {
    case El::addmember:
      return "add_member";
    case El::deletemember:
      return "delete_member";
    case El::topicupdate:
      return "topic_update";
    case El::pictureupdate:
      return "picture_update";
    case El::roleupdate:
      return "role_update";
    case El::historydisclosedupdate:
      return "history_disclosed_update";
    case El::joiningenabledupdate:
      return "joining_enabled_update";
    default:
      return "other";
  }
}

std::optional<double> parse_double(std::string_view text) {
  text = trim_ascii(text);
  if (text.empty() || text.size() > 60) return std::nullopt;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  char* end = nullptr;
  const double v = std::strtod(buf, &end);
  if (end != buf + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  text = trim_ascii(text);
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  std::size_t i = 0;
  bool neg = false;
  if (text[0] == '-') {
    neg = true;
    i = 1;
  }
  if (i == text.size()) return std::nullopt;
  for (; i < text.size(); ++i) {
    if (!is_digit(text[i])) {
      // "12345.0" etc.
      const auto d = parse_double(text);
      // "1e95" is short but no 64-bit integer (casting it is undefined): refused, like a
      // string of more than 18 digits.
      if (!d || std::fabs(*d) >= 9.0e18) return std::nullopt;
      return static_cast<std::int64_t>(*d);
    }
    v = v * 10 + (text[i] - '0');
  }
  return neg ? -v : v;
}

/// Standard base64 (and URL-safe), padding optional; nullopt on bad input.
std::optional<std::string> decode_base64(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+' || c == '-')
      v = 62;
    else if (c == '/' || c == '_')
      v = 63;
    else if (c == '=' || is_space(c))
      continue;
    else
      return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string format_duration(double seconds) {
  const auto total = static_cast<long long>(std::llround(seconds));
  const long long h = total / 3600, m = total / 60 % 60, s = total % 60;
  char buf[48];
  if (h > 0)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", m, s);
  return buf;
}

bool contains_ci(std::string_view text, std::string_view what) noexcept {
  if (what.size() > text.size()) return false;
  for (std::size_t i = 0; i + what.size() <= text.size(); ++i)
    if (iequals(text.substr(i, what.size()), what)) return true;
  return false;
}

std::string attachment_kind(std::string_view type) {
  // URIObject@type, e.g. "Picture.1", "Video.1/Message.1", "Video.2/CallRecording.1".
  auto has = [type](std::string_view what) { return contains_ci(type, what); };
  if (has("CallRecording")) return "call_recording";
  if (has("Audio")) return "voice_message";
  if (has("Flik")) return "flik";
  if (has("Video")) return "video";
  if (has("Picture") || has("Image")) return "picture";
  if (has("SWIFT")) return "card";
  if (has("File")) return "file";
  if (type.empty()) return {};  // the caller derives it from the message type
  std::string kind;
  for (char ch : type) kind.push_back(to_lower(ch));
  return kind;
}

/// An attachment that names no file or media (a <URIObject> with nothing but a type): no
/// row is made of it.
bool names_nothing(const Attachment& a) noexcept {
  return a.uri.empty() && a.thumbnail_uri.empty() && a.doc_id.empty() && a.name.empty() &&
         a.content_type.empty() && !a.size && !a.width && !a.height && !a.duration_seconds;
}

int hex_digit(char c) noexcept {
  if (is_digit(c)) return c - '0';
  const char l = to_lower(c);
  return l >= 'a' && l <= 'f' ? l - 'a' + 10 : -1;
}

/// `text` with its %XX escapes decoded; anything else (a bare '%') is kept.
std::string percent_decoded(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int hi = hex_digit(text[i + 1]), lo = hex_digit(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The renderer: one pass over the input, a small stack of open elements.

class Renderer {
 public:
  Renderer(std::string& out, MarkupResult& r) : m_out(out), m_r(r) {}

  void run(std::string_view input) {
    const char* p = input.data();
    const char* const end = p + input.size();
    while (p < end) {
      // A run of plain bytes: ASCII other than '<' '&' NUL, and valid UTF-8 sequences.
      const char* run = p;
      while (p < end) {
        const auto c = static_cast<unsigned char>(*p);
        if (c < 0x80) {
          if (kStop.stop[c]) break;
          ++p;
        } else {
          const std::size_t n = utf8_sequence_length(reinterpret_cast<const unsigned char*>(p),
                                                     reinterpret_cast<const unsigned char*>(end));
          if (n == 0) break;
          p += n;
        }
      }
      if (p > run) emit(run, static_cast<std::size_t>(p - run));
      if (p >= end) break;
      const char c = *p;
      if (c == '<') {
        p = tag(p, end);
      } else if (c == '&') {
        if (m_suppress > 0) {
          ++p;  // suppressed text is dropped whole, entities included
        } else {
          const char* after = decode_entity(p, end, m_out, m_r);
          if (after) {
            p = after;
          } else {
            m_out.push_back('&');
            ++p;
          }
        }
      } else if (c == '\0') {
        ++m_r.nul_removed;
        ++p;
      } else {
        ++m_r.invalid_utf8;
        emit(kReplacement.data(), kReplacement.size());
        ++p;
      }
    }
    if (m_depth > 0) {
      ++m_r.broken_markup;
      while (m_depth > 0) close_top();
    }
  }

 private:
  static constexpr std::size_t kMaxDepth = 64;

  void emit(const char* p, std::size_t n) {
    if (m_suppress == 0) m_out.append(p, n);
  }
  void emit(std::string_view s) { emit(s.data(), s.size()); }
  void newline_if_needed() {
    if (m_suppress == 0 && !m_out.empty() && m_out.back() != '\n') m_out.push_back('\n');
  }

  /// Text written since `start`, trimmed, then removed from the output.
  std::string take(std::uint32_t start) {
    std::string text;
    if (start < m_out.size()) {
      text.assign(trim_ascii(std::string_view(m_out).substr(start)));
      m_out.resize(start);
    }
    return text;
  }

  std::string attr(std::string_view attrs, std::string_view name) {
    const auto raw = find_attribute(attrs, name);
    if (!raw) return {};
    std::string value;
    append_decoded(value, *raw, m_r);
    return value;
  }

  /// How text shows a Skype user named by id only: without the "8:" every such id has.
  static std::string_view shown_id(std::string_view id) noexcept {
    if (id.size() > 2 && id.substr(0, 2) == "8:") id.remove_prefix(2);
    return id;
  }

  /// Attribute `name`, an id that names a person, in its canonical form.
  std::string person_attr(std::string_view attrs, std::string_view name) {
    return canonical_person_id(attr(attrs, name));
  }

  /// Handles the '<' at p; returns where to continue.
  const char* tag(const char* p, const char* end) {
    const char* q = p + 1;
    bool closing = false;
    if (q < end && *q == '/') {
      closing = true;
      ++q;
    }
    if (q < end && !closing && *q == '!') {
      // <!-- comment --> (or <!DOCTYPE ..>): dropped when terminated.
      if (end - q >= 3 && q[1] == '-' && q[2] == '-') {
        const std::string_view rest(q + 3, static_cast<std::size_t>(end - q - 3));
        const auto close = rest.find("-->");
        if (close != std::string_view::npos) return q + 3 + close + 3;
      }
      return literal_lt(p);
    }
    if (q >= end || !is_alpha(*q)) return literal_lt(p);
    const char* name_begin = q;
    while (q < end && is_name_char(*q)) ++q;
    const std::string_view name(name_begin, static_cast<std::size_t>(q - name_begin));
    if (q < end && !(is_space(*q) || *q == '/' || *q == '>')) return literal_lt(p);
    const char* attrs_begin = q;
    // Find the closing '>' honouring quoted attribute values; a '<' outside quotes means
    // this was no tag. With an unbalanced quote, retry without quote awareness.
    char quote = 0;
    const char* r = q;
    for (; r < end; ++r) {
      const char ch = *r;
      if (quote != 0) {
        if (ch == quote) quote = 0;
      } else if (ch == '"' || ch == '\'') {
        quote = ch;
      } else if (ch == '>' || ch == '<') {
        break;
      }
    }
    if (r >= end || *r != '>') {
      r = q;
      while (r < end && *r != '>' && *r != '<') ++r;
      if (r >= end || *r != '>') return literal_lt(p);
    }
    std::string_view attrs(attrs_begin, static_cast<std::size_t>(r - attrs_begin));
    bool self_closing = false;
    const auto trimmed = trim_ascii(attrs);
    if (!trimmed.empty() && trimmed.back() == '/') {
      self_closing = true;
      attrs = trimmed.substr(0, trimmed.size() - 1);
    }
    const El el = element_of(name);
    if (closing) {
      close_tag(el, name);
    } else {
      open_tag(el, name, attrs, self_closing);
    }
    return r + 1;
  }

  const char* literal_lt(const char* p) {
    ++m_r.broken_markup;
    emit("<", 1);
    return p + 1;
  }

  bool push(El el, Kind kind, std::string_view name, std::string_view attrs) {
    if (m_depth >= kMaxDepth) return false;
    m_stack[m_depth++] = Frame{el, kind, static_cast<std::uint32_t>(m_out.size()), name, attrs};
    switch (kind) {
      case Kind::quote:
        ++m_quote_depth;
        break;
      case Kind::suppress:
        ++m_suppress;
        break;
      case Kind::call:
        ++m_call_depth;
        break;
      case Kind::call_part:
        ++m_part_depth;
        break;
      case Kind::uri:
        ++m_uri_depth;
        break;
      case Kind::poll:
        ++m_poll_depth;
        break;
      case Kind::location:
        ++m_location_depth;
        break;
      case Kind::membership:
        ++m_membership_depth;
        break;
      case Kind::sms:
        ++m_sms_depth;
        break;
      default:
        break;
    }
    return true;
  }

  void open_tag(El el, std::string_view name, std::string_view attrs, bool self_closing) {
    Kind kind = Kind::generic;
    switch (el) {
      case El::br:
        emit("\n", 1);
        return;
      case El::p:
      case El::div:
        newline_if_needed();
        return;
      case El::hr:
      case El::img:
      case El::wbr:
      case El::description:
        return;
      case El::title:
        // A poll's <Title> is its question; elsewhere the text simply goes on.
        if (m_poll_depth == 0) return;
        kind = Kind::poll_title;
        break;
      case El::question:
        if (m_poll_depth > 0 && m_r.poll.question.empty()) m_r.poll.question = attr(attrs, "value");
        return;
      case El::answer:
        if (m_poll_depth > 0) {
          std::string option = attr(attrs, "value");
          if (!option.empty()) m_r.poll.options.push_back(std::move(option));
        }
        return;
      case El::multiplechoice:
        if (m_poll_depth > 0) {
          const std::string value = attr(attrs, "value");
          if (iequals(value, "true")) m_r.poll.multiple_choice = true;
          if (iequals(value, "false")) m_r.poll.multiple_choice = false;
        }
        return;
      case El::e_m: {
        m_r.edit_marker = true;
        if (auto ms = find_attribute(attrs, "ts_ms")) {
          if (auto us = parse_epoch_text_us(*ms, false)) m_r.edit_marker_us = us;
        }
        if (!m_r.edit_marker_us) {
          if (auto s = find_attribute(attrs, "ts")) {
            if (auto us = parse_epoch_text_us(*s, true)) m_r.edit_marker_us = us;
          }
        }
        return;
      }
      case El::originalname:
        if (m_uri_depth > 0 && !m_r.attachments.empty())
          m_r.attachments.back().name = attr(attrs, "v");
        return;
      case El::filesize:
        if (m_uri_depth > 0 && !m_r.attachments.empty()) {
          if (auto v = find_attribute(attrs, "v")) m_r.attachments.back().size = parse_int(*v);
        }
        return;
      case El::meta:
        if (m_uri_depth > 0 && !m_r.attachments.empty() && m_r.attachments.back().name.empty())
          m_r.attachments.back().name = attr(attrs, "originalName");
        return;
      case El::swift:
        if (auto b64 = find_attribute(attrs, "b64")) {
          if (auto json = decode_base64(*b64)) m_r.card_json = std::move(*json);
        }
        return;
      case El::c: {
        ContactInfo contact;
        contact.id = attr(attrs, "s");
        contact.name = attr(attrs, "f");
        contact.type = attr(attrs, "t");
        // t="s" is a Skype contact; other types may hold other kinds of ids.
        if (contact.type.empty() || contact.type == "s")
          contact.id = canonical_person_id(contact.id);
        if (!contact.id.empty() || !contact.name.empty())
          m_r.contacts.push_back(std::move(contact));
        return;
      }
      case El::at:
        kind = Kind::mention;
        break;
      case El::a:
        kind = Kind::link;
        break;
      case El::quote:
        kind = Kind::quote;
        break;
      case El::legacyquote:
        kind = Kind::suppress;
        break;
      case El::partlist:
        kind = Kind::call;
        break;
      case El::part:
        kind = m_call_depth > 0 ? Kind::call_part : Kind::generic;
        break;
      case El::name:
        kind = m_part_depth > 0 ? Kind::part_name : Kind::generic;
        break;
      case El::duration:
        kind = m_part_depth > 0 ? Kind::part_duration : Kind::generic;
        break;
      case El::uriobject: {
        const auto type = find_attribute(attrs, "type");
        kind = type && contains_ci(*type, "poll") ? Kind::poll : Kind::uri;
        break;
      }
      case El::contacts:
        kind = Kind::contacts;
        break;
      case El::location:
        kind = Kind::location;
        break;
      case El::file:
        kind = Kind::file;
        break;
      case El::addmember:
      case El::deletemember:
      case El::topicupdate:
      case El::pictureupdate:
      case El::roleupdate:
      case El::historydisclosedupdate:
      case El::joiningenabledupdate:
        kind = Kind::membership;
        break;
      case El::eventtime:
        kind = m_membership_depth > 0 ? Kind::ev_time : Kind::generic;
        break;
      case El::initiator:
        kind = m_membership_depth > 0 ? Kind::ev_initiator : Kind::generic;
        break;
      case El::target:
        kind = m_membership_depth > 0 ? Kind::ev_target : Kind::generic;
        break;
      case El::value:
        kind = m_membership_depth > 0 ? Kind::ev_value : Kind::generic;
        break;
      case El::id:
        kind = m_membership_depth > 0 ? Kind::ev_id : Kind::generic;
        break;
      case El::role:
        kind = m_membership_depth > 0 ? Kind::ev_role : Kind::generic;
        break;
      case El::sms:
        kind = Kind::sms;
        break;
      case El::status:
      case El::failurereason:
      case El::targets:
      case El::encoded_body:
        kind = m_sms_depth > 0 ? Kind::suppress : Kind::generic;
        break;
      default:
        break;
    }
    if (kind == Kind::file) newline_if_needed();
    if (!push(el, kind, name, attrs)) return;
    // Work done on open, after the push so that the frame's out_start precedes it.
    switch (kind) {
      case Kind::mention:
        emit("@", 1);
        break;
      case Kind::call:
        if (!m_r.has_call) {
          m_r.has_call = true;
          m_r.call.state = attr(attrs, "type");
          m_r.call.call_id = attr(attrs, "callId");
        }
        break;
      case Kind::call_part: {
        CallParticipant part;
        part.id = person_attr(attrs, "identity");
        m_r.call.participants.push_back(std::move(part));
        break;
      }
      case Kind::uri: {
        Attachment a;
        const std::string type = attr(attrs, "type");
        a.kind = attachment_kind(type);
        a.uri = attr(attrs, "uri");
        a.thumbnail_uri = attr(attrs, "url_thumbnail");
        a.doc_id = attr(attrs, "doc_id");
        if (auto v = find_attribute(attrs, "width")) a.width = parse_int(*v);
        if (auto v = find_attribute(attrs, "height")) a.height = parse_int(*v);
        if (auto v = find_attribute(attrs, "duration")) a.duration_seconds = parse_double(*v);
        m_r.attachments.push_back(std::move(a));
        break;
      }
      case Kind::poll:
        if (!m_r.has_poll) {
          m_r.has_poll = true;
          m_r.poll.question = attr(attrs, "question");
          if (m_r.poll.question.empty()) m_r.poll.question = attr(attrs, "title");
          // optionsEncoded: the options separated by '|', each percent-encoded.
          const std::string options = attr(attrs, "optionsEncoded");
          for (std::string_view rest = options; !rest.empty();) {
            const std::size_t bar = std::min(rest.find('|'), rest.size());
            std::string option;
            append_clean(option, percent_decoded(rest.substr(0, bar)), m_r.nul_removed,
                         m_r.invalid_utf8);
            if (!option.empty()) m_r.poll.options.push_back(std::move(option));
            rest.remove_prefix(std::min(bar + 1, rest.size()));
          }
        }
        break;
      case Kind::location:
        if (!m_r.has_location) {
          m_r.has_location = true;
          // Micro-degrees in the export.
          if (auto v = find_attribute(attrs, "latitude")) {
            if (auto d = parse_double(*v)) m_r.location.latitude = *d / 1e6;
          }
          if (auto v = find_attribute(attrs, "longitude")) {
            if (auto d = parse_double(*v)) m_r.location.longitude = *d / 1e6;
          }
          m_r.location.address = attr(attrs, "address");
        }
        break;
      case Kind::membership:
        if (!m_r.has_membership) {
          m_r.has_membership = true;
          m_r.membership.kind = membership_kind(el);
        }
        break;
      default:
        break;
    }
    if (self_closing) close_top();
  }

  void close_tag(El el, std::string_view name) {
    for (std::size_t i = m_depth; i-- > 0;) {
      const Frame& f = m_stack[i];
      if (f.el == el && (el != El::other || iequals(f.name, name))) {
        while (m_depth > i + 1) close_top();  // implicitly close what was left open
        close_top();
        return;
      }
    }
    // An unmatched end tag (or the end of an element that is never pushed): dropped.
  }

  void add_target(std::string value) {
    if (value.empty()) return;
    auto& targets = m_r.membership.targets;
    if (std::find(targets.begin(), targets.end(), value) == targets.end())
      targets.push_back(std::move(value));
  }

  void close_top() {
    const Frame f = m_stack[--m_depth];
    switch (f.kind) {
      case Kind::generic:
        break;
      case Kind::mention: {
        std::string_view written = std::string_view(m_out).substr(f.out_start);
        if (!written.empty() && written.front() == '@') written.remove_prefix(1);
        std::string name(trim_ascii(written));
        std::string id = person_attr(f.attrs, "id");
        if (name.empty() && !id.empty() && m_suppress == 0) {
          // <at id="8:bob"></at>: show the id rather than a lone '@'.
          m_out.append(shown_id(id));
        }
        if (m_quote_depth == 0) m_r.mentions.push_back(Mention{std::move(id), std::move(name)});
        break;
      }
      case Kind::link: {
        std::string href = attr(f.attrs, "href");
        if (!href.empty()) {
          if (m_out.size() == f.out_start && m_suppress == 0) m_out.append(href);
          if (m_quote_depth == 0 && m_uri_depth == 0 && m_poll_depth == 0 &&
              m_location_depth == 0 &&
              std::find(m_r.links.begin(), m_r.links.end(), href) == m_r.links.end())
            m_r.links.push_back(std::move(href));
        }
        break;
      }
      case Kind::quote: {
        std::string text = take(f.out_start);
        --m_quote_depth;
        if (m_quote_depth == 0 && !m_r.has_quote) {
          m_r.has_quote = true;
          m_r.quote.author_id = person_attr(f.attrs, "author");
          m_r.quote.author_name = attr(f.attrs, "authorname");
          if (auto ts = find_attribute(f.attrs, "timestamp"))
            m_r.quote.time_us = parse_epoch_text_us(*ts, true);
          m_r.quote.text = std::move(text);
        }
        break;
      }
      case Kind::suppress:
        --m_suppress;
        break;
      case Kind::call: {
        --m_call_depth;
        m_out.resize(f.out_start);
        if (m_call_depth == 0 && m_suppress == 0) {
          auto& call = m_r.call;
          for (const auto& part : call.participants) {
            if (part.duration_seconds &&
                (!call.duration_seconds || *part.duration_seconds > *call.duration_seconds))
              call.duration_seconds = part.duration_seconds;
          }
          std::string text = "Call";
          if (!call.state.empty()) text += " " + call.state;
          if (call.duration_seconds) text += " (" + format_duration(*call.duration_seconds) + ")";
          bool first = true;
          for (const auto& part : call.participants) {
            const std::string& who = part.name.empty() ? part.id : part.name;
            if (who.empty()) continue;
            text += first ? ": " : ", ";
            text += who;
            first = false;
          }
          m_out.append(text);
        }
        break;
      }
      case Kind::call_part:
        --m_part_depth;
        m_out.resize(f.out_start);
        break;
      case Kind::part_name: {
        std::string name = take(f.out_start);
        if (!m_r.call.participants.empty()) m_r.call.participants.back().name = std::move(name);
        break;
      }
      case Kind::part_duration: {
        const std::string text = take(f.out_start);
        if (!m_r.call.participants.empty())
          m_r.call.participants.back().duration_seconds = parse_double(text);
        break;
      }
      case Kind::uri: {
        --m_uri_depth;
        if (!m_r.attachments.empty() && names_nothing(m_r.attachments.back()))
          m_r.attachments.pop_back();
        // The fallback text ("To view this shared photo, go to: <url>") says nothing a
        // reader or a search needs; the original file name does.
        if (!m_r.attachments.empty() && !m_r.attachments.back().name.empty() && m_suppress == 0) {
          m_out.resize(f.out_start);
          m_out.append(m_r.attachments.back().name);
        }
        break;
      }
      case Kind::contacts: {
        m_out.resize(f.out_start);
        if (m_suppress == 0) {
          bool first = true;
          for (const auto& c : m_r.contacts) {
            if (!first) m_out.append(", ");
            first = false;
            m_out.append(c.name.empty() ? shown_id(c.id) : std::string_view(c.name));
          }
        }
        break;
      }
      case Kind::location:
        --m_location_depth;
        if (m_out.size() == f.out_start && m_suppress == 0) m_out.append(m_r.location.address);
        break;
      case Kind::file: {
        FileInfo file;
        file.name.assign(trim_ascii(std::string_view(m_out).substr(f.out_start)));
        file.url = attr(f.attrs, "url");
        if (auto v = find_attribute(f.attrs, "size")) file.size = parse_int(*v);
        m_r.files.push_back(std::move(file));
        break;
      }
      case Kind::membership: {
        --m_membership_depth;
        m_out.resize(f.out_start);
        if (m_membership_depth == 0 && m_suppress == 0)
          m_out.append(describe_membership(m_r.membership));
        break;
      }
      case Kind::ev_time: {
        const std::string text = take(f.out_start);
        if (!m_r.membership.time_us) m_r.membership.time_us = parse_epoch_text_us(text);
        break;
      }
      case Kind::ev_initiator: {
        std::string text = take(f.out_start);
        if (m_r.membership.initiator.empty()) m_r.membership.initiator = canonical_person_id(text);
        break;
      }
      case Kind::ev_target:
      case Kind::ev_id:
        add_target(canonical_person_id(take(f.out_start)));
        break;
      case Kind::ev_value: {
        std::string text = take(f.out_start);
        if (text.size() > 4 && text.compare(0, 4, "URL@") == 0) text.erase(0, 4);
        if (m_r.membership.value.empty()) m_r.membership.value = std::move(text);
        break;
      }
      case Kind::ev_role: {
        std::string text = take(f.out_start);
        if (m_r.membership.role.empty()) m_r.membership.role = std::move(text);
        break;
      }
      case Kind::sms:
        --m_sms_depth;
        break;
      case Kind::poll:
        // The fallback text (a description and a link to vote) gives way to the poll.
        --m_poll_depth;
        m_out.resize(f.out_start);
        if (m_poll_depth == 0 && m_suppress == 0) m_out.append(poll_text(m_r.poll));
        break;
      case Kind::poll_title: {
        std::string text = take(f.out_start);
        if (m_r.poll.question.empty()) m_r.poll.question = std::move(text);
        break;
      }
    }
  }

  std::string& m_out;
  MarkupResult& m_r;
  std::array<Frame, kMaxDepth> m_stack;
  std::size_t m_depth = 0;
  int m_suppress = 0;
  int m_quote_depth = 0;
  int m_call_depth = 0;
  int m_part_depth = 0;
  int m_uri_depth = 0;
  int m_poll_depth = 0;
  int m_location_depth = 0;
  int m_membership_depth = 0;
  int m_sms_depth = 0;
};

}  // namespace

void MarkupResult::clear() noexcept {
  mentions.clear();
  links.clear();
  has_quote = false;
  quote = QuoteInfo{};
  has_call = false;
  call.state.clear();
  call.call_id.clear();
  call.duration_seconds.reset();
  call.participants.clear();
  has_membership = false;
  membership = MembershipInfo{};
  contacts.clear();
  has_location = false;
  location = LocationInfo{};
  files.clear();
  has_poll = false;
  poll.question.clear();
  poll.options.clear();
  poll.multiple_choice.reset();
  attachments.clear();
  card_json.clear();
  edit_marker = false;
  edit_marker_us.reset();
  nul_removed = 0;
  invalid_utf8 = 0;
  broken_markup = 0;
}

bool MarkupResult::has_structure() const noexcept {
  return !mentions.empty() || !links.empty() || has_quote || has_call || has_membership ||
         !contacts.empty() || has_location || !files.empty() || has_poll || !attachments.empty() ||
         !card_json.empty();
}

std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) noexcept {
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  const std::size_t avail = static_cast<std::size_t>(end - p);
  if (c >= 0xC2 && c <= 0xDF) {
    return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && p[1] >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && p[1] >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

std::size_t find_markup_special(std::string_view text) noexcept {
  const auto* begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = begin + text.size();
  const auto* p = begin;
  while (p < end) {
    // Eight bytes at a time while they are ASCII and none is '<', '&' or NUL.
    if (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
      constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
      auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
      if ((word & kHigh) == 0 && !has_zero(word) && !has_zero(word ^ (kOnes * '<')) &&
          !has_zero(word ^ (kOnes * '&'))) {
        p += 8;
        continue;
      }
    }
    const unsigned char c = *p;
    if (c < 0x80) {
      if (kStop.stop[c]) return static_cast<std::size_t>(p - begin);
      ++p;
    } else {
      const std::size_t n = utf8_sequence_length(p, end);
      if (n == 0) return static_cast<std::size_t>(p - begin);
      p += n;
    }
  }
  return std::string_view::npos;
}

std::size_t find_unclean(std::string_view text) noexcept {
  const auto* begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = begin + text.size();
  const auto* p = begin;
  while (p < end) {
    const unsigned char c = *p;
    if (c == 0) return static_cast<std::size_t>(p - begin);
    if (c < 0x80) {
      ++p;
    } else {
      const std::size_t n = utf8_sequence_length(p, end);
      if (n == 0) return static_cast<std::size_t>(p - begin);
      p += n;
    }
  }
  return std::string_view::npos;
}

void append_clean(std::string& out, std::string_view input, std::uint64_t& nul_removed,
                  std::uint64_t& invalid_utf8) {
  const auto* p = reinterpret_cast<const unsigned char*>(input.data());
  const auto* end = p + input.size();
  while (p < end) {
    const auto* run = p;
    while (p < end && *p != 0) {
      if (*p < 0x80) {
        ++p;
      } else {
        const std::size_t n = utf8_sequence_length(p, end);
        if (n == 0) break;
        p += n;
      }
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p >= end) break;
    if (*p == 0) {
      ++nul_removed;
    } else {
      ++invalid_utf8;
      out.append(kReplacement);
    }
    ++p;
  }
}

void append_decoded(std::string& out, std::string_view input, MarkupResult& r) {
  const char* p = input.data();
  const char* const end = p + input.size();
  while (p < end) {
    const char* amp =
        static_cast<const char*>(std::memchr(p, '&', static_cast<std::size_t>(end - p)));
    const char* stop = amp ? amp : end;
    append_clean(out, std::string_view(p, static_cast<std::size_t>(stop - p)), r.nul_removed,
                 r.invalid_utf8);
    if (!amp) break;
    const char* after = decode_entity(amp, end, out, r);
    if (after) {
      p = after;
    } else {
      out.push_back('&');
      p = amp + 1;
    }
  }
}

std::string_view trim_ascii(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<std::string_view> find_attribute(std::string_view attrs,
                                               std::string_view name) noexcept {
  std::size_t i = 0;
  const std::size_t n = attrs.size();
  while (i < n) {
    while (i < n && (is_space(attrs[i]) || attrs[i] == '/')) ++i;
    const std::size_t name_begin = i;
    while (i < n && !is_space(attrs[i]) && attrs[i] != '=' && attrs[i] != '/') ++i;
    const std::string_view attr_name = attrs.substr(name_begin, i - name_begin);
    while (i < n && is_space(attrs[i])) ++i;
    std::string_view value;
    if (i < n && attrs[i] == '=') {
      ++i;
      while (i < n && is_space(attrs[i])) ++i;
      if (i < n && (attrs[i] == '"' || attrs[i] == '\'')) {
        const char quote = attrs[i++];
        const std::size_t value_begin = i;
        while (i < n && attrs[i] != quote) ++i;
        value = attrs.substr(value_begin, i - value_begin);
        if (i < n) ++i;
      } else {
        const std::size_t value_begin = i;
        while (i < n && !is_space(attrs[i])) ++i;
        value = attrs.substr(value_begin, i - value_begin);
      }
    }
    if (!attr_name.empty() && iequals(attr_name, name)) return value;
    if (i == name_begin) ++i;  // no progress: skip a stray byte
  }
  return std::nullopt;
}

void render_markup(std::string_view input, std::string& out, MarkupResult& result) {
  Renderer renderer(out, result);
  renderer.run(input);
}

std::string poll_text(const PollInfo& poll) {
  std::string text = "Poll";
  if (!poll.question.empty()) text += ": " + poll.question;
  for (std::size_t i = 0; i < poll.options.size(); ++i) {
    text += i == 0 ? " (" : ", ";
    text += poll.options[i];
  }
  if (!poll.options.empty()) text += ')';
  return text;
}

std::string markup_to_text(std::string_view markup) {
  std::string out;
  if (find_markup_special(markup) == std::string_view::npos) {
    out.assign(trim_ascii(markup));
    return out;
  }
  MarkupResult result;
  render_markup(markup, out, result);
  const auto trimmed = trim_ascii(out);
  if (trimmed.size() != out.size()) out = std::string(trimmed);
  return out;
}

std::string decode_entities(std::string_view text) {
  std::string out;
  MarkupResult result;
  append_decoded(out, text, result);
  return out;
}

}  // namespace skype_etl::detail
