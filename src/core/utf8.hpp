// Decoding UTF-8 as RFC 3629 defines it: the one definition of a valid sequence that every
// writer (error messages, file names, the export's formats) checks text against.
#pragma once

#include <cstddef>
#include <string_view>

namespace skype_etl::detail {

/// The length (1 to 4) of the valid UTF-8 sequence at `text[i]`, its code point in `cp`;
/// 0 (and `cp` unchanged) when the bytes there are none: a stray continuation byte, a lead
/// byte C0, C1 or F5-FF, an overlong form, a surrogate, a code point past U+10FFFF, or a
/// sequence cut short by the end of `text`. Every ASCII byte, NUL included, is length 1.
/// `i` < text.size().
inline std::size_t decode_utf8(std::string_view text, std::size_t i, char32_t& cp) noexcept {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned lead = byte(0);
  if (lead < 0x80) {
    cp = lead;
    return 1;
  }
  std::size_t length = 0;
  char32_t value = 0;
  unsigned low = 0x80, high = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, value = lead & 0x1FU;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, value = lead & 0x0FU;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, value = lead & 0x07U;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (text.size() - i < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(k) & 0xC0U) != 0x80U) return 0;
    value = (value << 6U) | (byte(k) & 0x3FU);
  }
  cp = value;
  return length;
}

/// decode_utf8 without the code point.
inline std::size_t utf8_length(std::string_view text, std::size_t i) noexcept {
  char32_t cp = 0;
  return decode_utf8(text, i, cp);
}

}  // namespace skype_etl::detail
