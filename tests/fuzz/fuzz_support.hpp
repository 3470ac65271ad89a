// What the libFuzzer targets share: reporting a broken invariant as a crash, and checks
// written independently of the code under test (so that a bug there cannot hide itself).
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>

namespace skype_etl::fuzz {

/// Reports a broken invariant and aborts: libFuzzer saves the input as a crash.
[[noreturn]] inline void broken(const std::string& what) {
  std::fprintf(stderr, "\n==fuzz== invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(condition, detail)                                                    \
  do {                                                                                   \
    if (!(condition))                                                                    \
      ::skype_etl::fuzz::broken(std::string(#condition) + " (" + __FILE__ + ":" +        \
                                std::to_string(__LINE__) + "): " + std::string(detail)); \
  } while (false)

/// Valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
inline bool valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p < end) {
    const unsigned c = *p;
    std::size_t n = 0;
    unsigned cp = 0;
    if (c < 0x80) {
      ++p;
      continue;
    }
    if ((c & 0xE0U) == 0xC0U) {
      n = 2;
      cp = c & 0x1FU;
    } else if ((c & 0xF0U) == 0xE0U) {
      n = 3;
      cp = c & 0x0FU;
    } else if ((c & 0xF8U) == 0xF0U) {
      n = 4;
      cp = c & 0x07U;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < n) return false;
    for (std::size_t i = 1; i < n; ++i) {
      if ((p[i] & 0xC0U) != 0x80U) return false;
      cp = (cp << 6U) | (p[i] & 0x3FU);
    }
    const unsigned least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n;
  }
  return true;
}

/// Text a database column or a JSON string can hold: valid UTF-8 without NUL.
inline bool clean_text(std::string_view text) noexcept {
  return text.find('\0') == std::string_view::npos && valid_utf8(text);
}

/// Whether `part` lies inside `whole` (by address; std::less orders unrelated pointers).
inline bool inside(std::string_view part, std::string_view whole) noexcept {
  const std::less<const char*> before;
  return !before(part.data(), whole.data()) &&
         !before(whole.data() + whole.size(), part.data() + part.size());
}

/// A printable excerpt of `text` for a report: at most 80 bytes, escaped.
inline std::string excerpt(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out + (text.size() > 80 ? "\"..." : "\"");
}

}  // namespace skype_etl::fuzz
