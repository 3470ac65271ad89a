// Small formatting helpers of the generator: JSON string escaping, integers, hex, base64
// and Skype's timestamps. Appending to a caller-owned buffer keeps the hot loop free of
// allocations once the buffers have grown.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace skype_etl::gen::detail {

/// Appends `text` (valid UTF-8) as the inside of a JSON string literal, without quotes.
/// `ascii_only` writes every non-ASCII character as \uXXXX (a surrogate pair above
/// U+FFFF), as Python's json.dump does by default. `Sink` needs append(const char*, size_t).
template <class Sink>
void escape_json(Sink& out, std::string_view text, bool ascii_only) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  const auto* run = p;
  char esc[12];
  const auto put_u = [&](unsigned code, char* at) {
    at[0] = '\\';
    at[1] = 'u';
    at[2] = hex[(code >> 12) & 15];
    at[3] = hex[(code >> 8) & 15];
    at[4] = hex[(code >> 4) & 15];
    at[5] = hex[code & 15];
  };
  while (p < end) {
    const unsigned char c = *p;
    if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !ascii_only)) {
      ++p;
      continue;
    }
    if (p > run) out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    std::size_t len = 2;
    esc[0] = '\\';
    if (c == '"' || c == '\\') {
      esc[1] = static_cast<char>(c);
      ++p;
    } else if (c < 0x20) {
      switch (c) {
        case '\n':
          esc[1] = 'n';
          break;
        case '\t':
          esc[1] = 't';
          break;
        case '\r':
          esc[1] = 'r';
          break;
        case '\b':
          esc[1] = 'b';
          break;
        case '\f':
          esc[1] = 'f';
          break;
        default:
          put_u(c, esc);
          len = 6;
      }
      ++p;
    } else {
      // Decode one UTF-8 sequence (the generator only produces valid UTF-8).
      unsigned code = 0;
      int extra = 0;
      if (c >= 0xf0) {
        code = c & 0x07;
        extra = 3;
      } else if (c >= 0xe0) {
        code = c & 0x0f;
        extra = 2;
      } else {
        code = c & 0x1f;
        extra = 1;
      }
      ++p;
      for (int i = 0; i < extra && p < end; ++i, ++p) code = (code << 6) | (*p & 0x3f);
      if (code >= 0x10000) {
        code -= 0x10000;
        put_u(0xd800 + (code >> 10), esc);
        put_u(0xdc00 + (code & 0x3ff), esc + 6);
        len = 12;
      } else {
        put_u(code, esc);
        len = 6;
      }
    }
    out.append(esc, len);
    run = p;
  }
  if (p > run) out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
}

inline void append_uint(std::string& out, std::uint64_t value) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, static_cast<std::size_t>(result.ptr - digits));
}

inline void append_int(std::string& out, std::int64_t value) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, static_cast<std::size_t>(result.ptr - digits));
}

/// `digits` lowercase hex digits of `value`'s low bits.
inline void append_hex(std::string& out, std::uint64_t value, int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out += hex[(value >> (4 * (i % 16))) & 15];
}

void append_base64(std::string& out, std::string_view bytes);

/// How many fractional digits a timestamp carries. Real exports drop trailing zeros
/// partially: ".104Z", ".92Z" and whole seconds all occur.
enum class Fraction { three, two, none };

/// Appends "YYYY-MM-DDTHH:MM:SS[.fff]Z" for `ms` since the Unix epoch (UTC). With
/// Fraction::two the milliseconds must be a multiple of 10, with none a multiple of 1000.
void append_timestamp(std::string& out, std::int64_t ms, Fraction fraction);

/// Appends "YYYY-MM-DDTHH:MM" (exportDate's minute precision, no zone).
void append_minute_timestamp(std::string& out, std::int64_t ms);

}  // namespace skype_etl::gen::detail
