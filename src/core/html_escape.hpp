// The one place where the HTML archive escapes what it writes. Message text, names, file
// names and URLs come from other people: every byte is hostile. Pages are built with an
// Html builder whose only way to add foreign text is escaped (text(), attribute values,
// link()); markup of our own goes through raw_trusted(), which takes string literals only.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace skype_etl::detail {

/// `text` as valid UTF-8 fit for a page: invalid bytes (and overlong forms, surrogates,
/// code points past U+10FFFF) become U+FFFD, and so do control characters other than
/// '\n' and '\t' (C0, DEL, C1); '\r' is dropped.
std::string clean_for_html(std::string_view text);

/// Appends clean_for_html(text) with & < > " ' escaped: fit for HTML text and for a quoted
/// attribute value alike (also inside SVG).
void append_escaped(std::string& out, std::string_view text);
std::string escaped(std::string_view text);

/// `url` if a browser would read it as an http, https or mailto URL, cleaned as a browser
/// cleans it (leading and trailing C0 controls and spaces trimmed, tabs and newlines
/// inside removed); nullopt for anything else: javascript:, data:, vbscript:, other
/// schemes, relative URLs, control characters inside. The result still needs attribute
/// escaping (Html::link does it).
std::optional<std::string> safe_url(std::string_view url);

/// A relative URL for a file below the archive's directory (`path` relative to it, '/'
/// separated): each segment percent-encoded (so that no segment reads as a scheme or a
/// query); nullopt when `path` is empty, absolute, has a backslash or a "." or ".."
/// segment.
std::optional<std::string> relative_url(std::string_view path);

/// Builds a page. Names of tags and attributes are ours (lower-case letters, digits, '-'
/// and ':'; anything else is a bug and throws std::logic_error); every value is escaped.
class Html {
 public:
  struct Attr {
    std::string_view name;
    std::string_view value;
  };

  /// Escaped text.
  Html& text(std::string_view text);
  /// `<tag a="v" ...>`.
  Html& open(std::string_view tag, std::initializer_list<Attr> attrs = {});
  /// `<tag a="v" ... />` (SVG shapes) or a void element such as <meta>, <img>.
  Html& empty(std::string_view tag, std::initializer_list<Attr> attrs = {});
  Html& close(std::string_view tag);
  /// open(tag, attrs), text(text), close(tag).
  Html& element(std::string_view tag, std::initializer_list<Attr> attrs, std::string_view text);
  /// <a href="url" rel="noopener noreferrer">text</a> when safe_url(url) accepts it, else
  /// `text` as plain text (the link's text is `url` when `text` is empty).
  Html& link(std::string_view url, std::string_view text = {});
  /// Our own static markup only: a string literal, never data.
  template <std::size_t N>
  Html& raw_trusted(const char (&literal)[N]) {
    m_out.append(literal, N - 1);
    return *this;
  }

  const std::string& str() const noexcept { return m_out; }
  std::size_t size() const noexcept { return m_out.size(); }
  void clear() noexcept { m_out.clear(); }

 private:
  void attributes(std::initializer_list<Attr> attrs);
  std::string m_out;
};

/// A number as an attribute value (SVG coordinates): at most two decimals, no exponent.
std::string svg_number(double value);

}  // namespace skype_etl::detail
