#include "core/html_escape.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

#include "core/utf8.hpp"

namespace skype_etl::detail {
namespace {

constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD

bool is_control(std::uint32_t cp) noexcept {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

/// Calls `emit(piece)` for the clean pieces of `text` (see clean_for_html), in order: runs
/// of `text`, U+FFFD for what is replaced, and `entity(b)` in place of each printable ASCII
/// byte `b` for which it is not empty. One loop for clean_for_html and append_escaped.
template <class Entity, class Emit>
void for_clean(std::string_view text, Entity&& entity, Emit&& emit) {
  std::size_t run = 0;  // start of the pending run of bytes copied as they are
  std::size_t at = 0;
  while (at < text.size()) {
    const auto b = static_cast<unsigned char>(text[at]);
    // Fast path: printable ASCII is copied in runs.
    if (b >= 0x20 && b < 0x7F) {
      if (const std::string_view e = entity(b); !e.empty()) {
        emit(text.substr(run, at - run));
        emit(e);
        run = ++at;
        continue;
      }
      ++at;
      continue;
    }
    char32_t cp = 0;
    const std::size_t len = decode_utf8(text, at, cp);
    if (len != 0 && (!is_control(cp) || cp == '\n' || cp == '\t')) {
      at += len;
      continue;
    }
    emit(text.substr(run, at - run));
    if (!(len == 1 && cp == '\r')) emit(k_replacement);
    at += len == 0 ? 1 : len;
    run = at;
  }
  emit(text.substr(run));
}

/// No entities: clean_for_html. (Function objects, not functions, so that for_clean's
/// loop is compiled for each with the test inlined.)
struct NoEntity {
  std::string_view operator()(unsigned char /*b*/) const noexcept { return {}; }
};

/// The entity of a byte that HTML text and quoted attribute values need escaped.
struct HtmlEntity {
  std::string_view operator()(unsigned char b) const noexcept {
    switch (b) {
      case '&':
        return "&amp;";
      case '<':
        return "&lt;";
      case '>':
        return "&gt;";
      case '"':
        return "&quot;";
      case '\'':
        return "&#39;";
      default:
        return {};
    }
  }
};

/// A tag name of ours: lower-case letters, digits and '-'; an attribute name may also
/// have upper-case letters (SVG's viewBox).
bool is_name(std::string_view name, bool upper = false) noexcept {
  if (name.empty()) return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          (upper && c >= 'A' && c <= 'Z')))
      return false;
  return true;
}

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

/// What a URL-valued attribute may hold: an accepted absolute URL, or a relative
/// reference of our own (relative_url's, a page name, a fragment) that cannot read as a
/// scheme, an absolute path or a network path.
bool is_safe_url_value(std::string_view v) {
  if (const auto url = safe_url(v); url && *url == v) return true;
  if (v.empty() || v[0] == '/' || v.find('\\') != std::string_view::npos) return false;
  for (const char c : v)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) return false;
  const auto colon = v.find(':');
  return colon == std::string_view::npos || colon > v.find_first_of("/?#");
}

}  // namespace

std::string clean_for_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for_clean(text, NoEntity{}, [&](std::string_view piece) { out.append(piece); });
  return out;
}

void append_escaped(std::string& out, std::string_view text) {
  // One pass: runs of bytes that need nothing are appended whole (the common case).
  for_clean(text, HtmlEntity{}, [&](std::string_view piece) { out.append(piece); });
}

std::string escaped(std::string_view text) {
  std::string out;
  append_escaped(out, text);
  return out;
}

std::optional<std::string> safe_url(std::string_view url) {
  // As the URL parser: trim C0 controls and spaces at both ends, drop tabs and newlines.
  while (!url.empty() && static_cast<unsigned char>(url.front()) <= 0x20) url.remove_prefix(1);
  while (!url.empty() && static_cast<unsigned char>(url.back()) <= 0x20) url.remove_suffix(1);
  std::string cleaned;
  cleaned.reserve(url.size());
  for (const char c : url) {
    if (c == '\t' || c == '\n' || c == '\r') continue;
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F) return std::nullopt;
    cleaned.push_back(c);
  }
  const auto colon = cleaned.find(':');
  if (colon == std::string::npos) return std::nullopt;  // relative: not ours to resolve
  const std::string_view scheme(cleaned.data(), colon);
  if (!(iequals(scheme, "http") || iequals(scheme, "https") || iequals(scheme, "mailto")))
    return std::nullopt;
  const std::string_view rest = std::string_view(cleaned).substr(colon + 1);
  if (rest.empty()) return std::nullopt;
  if (!iequals(scheme, "mailto") && rest.substr(0, 2) != "//") return std::nullopt;
  std::string out = clean_for_html(cleaned);
  for (std::size_t i = 0; i < scheme.size(); ++i) out[i] = lower(out[i]);
  return out;
}

std::optional<std::string> relative_url(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\\') != std::string_view::npos)
    return std::nullopt;
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return std::nullopt;
    if (!out.empty()) out.push_back('/');
    for (const char c : segment) {
      const auto b = static_cast<unsigned char>(c);
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.' || c == '~') {
        out.push_back(c);
      } else {
        out.push_back('%');
        out.push_back(hex[b >> 4U]);
        out.push_back(hex[b & 15U]);
      }
    }
    start = end + 1;
  }
  return out;
}

Html& Html::text(std::string_view text) {
  append_escaped(m_out, text);
  return *this;
}

void Html::attributes(std::initializer_list<Attr> attrs) {
  for (const Attr& a : attrs) {
    // Event handlers and inline style are never ours (the CSP forbids them anyway).
    if (!is_name(a.name, true) || iequals(a.name.substr(0, 2), "on") || iequals(a.name, "style"))
      throw std::logic_error("Html: not an attribute name of ours: " + escaped(a.name));
    if ((iequals(a.name, "href") || iequals(a.name, "src") || iequals(a.name, "poster") ||
         iequals(a.name, "xmlns")) &&
        !is_safe_url_value(a.value))
      throw std::logic_error("Html: an unchecked URL in " + std::string(a.name) + ": " +
                             escaped(a.value));
    m_out.push_back(' ');
    m_out.append(a.name);
    m_out.append("=\"");
    append_escaped(m_out, a.value);
    m_out.push_back('"');
  }
}

Html& Html::open(std::string_view tag, std::initializer_list<Attr> attrs) {
  if (!is_name(tag) || tag == "script" || tag == "style")
    throw std::logic_error("Html: not a tag of ours: " + escaped(tag));
  m_out.push_back('<');
  m_out.append(tag);
  attributes(attrs);
  m_out.push_back('>');
  return *this;
}

Html& Html::empty(std::string_view tag, std::initializer_list<Attr> attrs) {
  if (!is_name(tag) || tag == "script" || tag == "style")
    throw std::logic_error("Html: not a tag of ours: " + escaped(tag));
  m_out.push_back('<');
  m_out.append(tag);
  attributes(attrs);
  m_out.append("/>");
  return *this;
}

Html& Html::close(std::string_view tag) {
  if (!is_name(tag)) throw std::logic_error("Html: not a tag of ours: " + escaped(tag));
  m_out.append("</");
  m_out.append(tag);
  m_out.push_back('>');
  return *this;
}

Html& Html::element(std::string_view tag, std::initializer_list<Attr> attrs,
                    std::string_view content) {
  return open(tag, attrs).text(content).close(tag);
}

Html& Html::link(std::string_view url, std::string_view content) {
  if (content.empty()) content = url;
  const auto safe = safe_url(url);
  if (!safe) return text(content);
  return element("a", {{"href", *safe}, {"rel", "noopener noreferrer"}}, content);
}

std::string svg_number(double value) {
  if (!std::isfinite(value)) return "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", value);
  std::string s(buf);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

}  // namespace skype_etl::detail
