#include "extract/json_error_position.hpp"

#include <cstring>

namespace skype_etl::detail {
namespace {

constexpr std::size_t npos = std::string_view::npos;

unsigned char byte_at(std::string_view text, std::size_t i) noexcept {
  return static_cast<unsigned char>(text[i]);
}

/// One unit of a string's raw text at `at` (a byte, or an escape): how many raw bytes it
/// takes and how many bytes it decodes to. False for an escape simdjson refuses.
bool string_unit(std::string_view text, std::size_t at, std::size_t& raw,
                 std::size_t& decoded) noexcept {
  if (text[at] != '\\') {
    raw = 1;
    decoded = 1;
    return true;
  }
  if (at + 1 >= text.size()) return false;
  const char e = text[at + 1];
  if (e != 'u') {
    raw = 2;
    decoded = 1;
    return e != '\0' && std::strchr("\"\\/bfnrt", e) != nullptr;
  }
  unsigned cp = 0;
  if (!hex4(text, at + 2, cp)) return false;
  if (cp >= 0xD800 && cp < 0xDC00) {  // a high surrogate needs a low one right after it
    unsigned low = 0;
    if (at + 7 >= text.size() || text[at + 6] != '\\' || text[at + 7] != 'u' ||
        !hex4(text, at + 8, low) || low < 0xDC00 || low > 0xDFFF)
      return false;
    raw = 12;
    decoded = 4;
    return true;
  }
  if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a lone low surrogate
  raw = 6;
  decoded = cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
  return true;
}

/// Calls `visit(quote, close)` for each string in text[begin, end) (close: its closing quote,
/// or `end` when it does not close) until `visit` returns true. `begin` is outside strings.
template <typename Visit>
void for_each_string(std::string_view text, std::size_t begin, std::size_t end, Visit visit) {
  std::size_t i = begin;
  while (i < end) {
    if (text[i] != '"') {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < end && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
    const std::size_t close = j < end ? j : end;
    if (visit(i, close)) return;
    i = close + 1;
  }
}

/// The first byte below 0x20 inside a string of text[begin, end) (simdjson's
/// UNESCAPED_CHARS), or npos.
std::size_t first_unescaped_control(std::string_view text, std::size_t begin,
                                    std::size_t end) noexcept {
  std::size_t found = npos;
  for_each_string(text, begin, end, [&](std::size_t quote, std::size_t close) {
    for (std::size_t j = quote + 1; j < close; ++j) {
      if (byte_at(text, j) < 0x20) {
        found = j;
        return true;
      }
    }
    return false;
  });
  return found;
}

/// For STRING_ERROR: simdjson's iterator stands on the token after the string it failed
/// to decode, so the bad escape is in the last string that starts before `stop`; when that
/// is not known, the first bad escape of the document.
std::size_t bad_escape_before(std::string_view text, std::size_t begin, std::size_t end,
                              std::size_t stop) noexcept {
  std::size_t first = npos;
  std::size_t last_before_stop = npos;
  for_each_string(text, begin, end, [&](std::size_t quote, std::size_t) {
    if (stop != npos && quote >= stop) return true;
    const std::size_t bad = first_bad_escape(text, quote);
    if (first == npos) first = bad;
    last_before_stop = bad;
    return stop == npos && first != npos;
  });
  return stop != npos && last_before_stop != npos ? last_before_stop : first;
}

}  // namespace

bool hex4(std::string_view text, std::size_t at, unsigned& value) noexcept {
  if (at + 4 > text.size()) return false;
  value = 0;
  for (std::size_t i = at; i < at + 4; ++i) {
    const char c = text[i];
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return false;
    }
    value = value * 16 + digit;
  }
  return true;
}

std::size_t first_invalid_utf8(std::string_view text, std::size_t begin, std::size_t end) noexcept {
  std::size_t i = begin;
  while (i < end) {
    const unsigned c = byte_at(text, i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The well-formed sequences of Unicode's table 3-7: the second byte's range depends on
    // the first; the others are plain continuation bytes.
    std::size_t continuations = 0;
    unsigned low = 0x80;
    unsigned high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      continuations = 1;
    } else if (c == 0xE0) {
      continuations = 2;
      low = 0xA0;
    } else if (c == 0xED) {
      continuations = 2;
      high = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
      continuations = 2;
    } else if (c == 0xF0) {
      continuations = 3;
      low = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      continuations = 3;
    } else if (c == 0xF4) {
      continuations = 3;
      high = 0x8F;
    } else {
      return i;
    }
    if (end - i <= continuations) return i;
    const unsigned second = byte_at(text, i + 1);
    if (second < low || second > high) return i;
    for (std::size_t k = 2; k <= continuations; ++k)
      if ((byte_at(text, i + k) & 0xC0U) != 0x80U) return i;
    i += continuations + 1;
  }
  return npos;
}

std::size_t first_bad_escape(std::string_view text, std::size_t quote) noexcept {
  std::size_t j = quote + 1;
  while (j < text.size() && text[j] != '"') {
    std::size_t raw = 0;
    std::size_t decoded = 0;
    if (!string_unit(text, j, raw, decoded)) return j;
    j += raw;
  }
  return npos;
}

std::size_t raw_position_in_string(std::string_view text, std::size_t quote,
                                   std::size_t decoded) noexcept {
  std::size_t j = quote + 1;
  std::size_t seen = 0;  // decoded bytes before j
  while (j < text.size() && text[j] != '"') {
    std::size_t raw = 0;
    std::size_t length = 0;
    if (!string_unit(text, j, raw, length) || decoded < seen + length) return j;
    j += raw;
    seen += length;
  }
  return j;
}

std::size_t json_error_position(std::string_view text, std::size_t begin, std::size_t end,
                                simdjson::error_code error, std::size_t stop) noexcept {
  std::size_t at = npos;
  switch (error) {
    case simdjson::UTF8_ERROR:
      at = first_invalid_utf8(text, begin, end);
      break;
    case simdjson::UNESCAPED_CHARS:
      at = first_unescaped_control(text, begin, end);
      break;
    case simdjson::STRING_ERROR:
      at = bad_escape_before(text, begin, end, stop);
      break;
    default:
      at = stop;
      break;
  }
  return at != npos && at >= begin && at < end ? at : begin;
}

}  // namespace skype_etl::detail
