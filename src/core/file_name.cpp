#include "core/file_name.hpp"

#include <cstddef>

namespace skype_etl::detail {
namespace {

/// Length of the valid UTF-8 sequence starting at s[i], or 0 when s[i] does not start one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned c = byte(i);
  if (c >= 0x01 && c < 0x80) return 1;
  std::size_t n = 0;
  unsigned low = 0x80, high = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) low = 0xA0;   // overlong
    if (c == 0xED) high = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) low = 0x90;   // overlong
    if (c == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

}  // namespace

std::string escape_file_name(std::string_view name) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(name.size());
  for (std::size_t i = 0; i < name.size();) {
    if (name[i] == '\\') {
      out += "\\\\";
      ++i;
      continue;
    }
    const std::size_t n = utf8_sequence(name, i);
    if (n == 0) {
      const auto b = static_cast<unsigned char>(name[i]);
      out += "\\x";
      out += hex[b >> 4U];
      out += hex[b & 15U];
      ++i;
    } else {
      out.append(name, i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace skype_etl::detail
