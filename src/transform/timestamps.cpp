#include "transform/timestamps.hpp"

#include "core/civil_time.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace skype_etl::detail {
namespace {

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

/// Reads exactly `n` digits at text[pos].
bool read_digits(std::string_view text, std::size_t pos, std::size_t n, unsigned& out) noexcept {
  if (pos + n > text.size()) return false;
  unsigned v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  out = v;
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

constexpr unsigned days_in_month(unsigned y, unsigned m) noexcept {
  constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return days[m - 1];
}

}  // namespace

std::optional<std::int64_t> parse_iso8601_us(std::string_view text) noexcept {
  text = trim(text);
  unsigned year, month, day, hour, minute, second = 0;
  if (!read_digits(text, 0, 4, year) || text.size() < 16 || text[4] != '-' ||
      !read_digits(text, 5, 2, month) || text[7] != '-' || !read_digits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != ' ' && text[10] != 't') || !read_digits(text, 11, 2, hour) ||
      text[13] != ':' || !read_digits(text, 14, 2, minute))
    return std::nullopt;
  std::size_t pos = 16;
  std::int64_t micros = 0;
  if (pos < text.size() && text[pos] == ':') {
    if (!read_digits(text, pos + 1, 2, second)) return std::nullopt;
    pos += 3;
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
      ++pos;
      std::size_t digits = 0;
      while (pos < text.size() && is_digit(text[pos])) {
        if (digits < 6) micros = micros * 10 + (text[pos] - '0');
        ++digits;
        ++pos;
      }
      if (digits == 0) return std::nullopt;
      for (std::size_t i = digits; i < 6; ++i) micros *= 10;
    }
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > 60)
    return std::nullopt;
  std::int64_t offset_seconds = 0;
  if (pos < text.size()) {
    const char z = text[pos];
    if ((z == 'Z' || z == 'z') && pos + 1 == text.size()) {
      // UTC
    } else if (z == '+' || z == '-') {
      unsigned oh, om = 0;
      if (!read_digits(text, pos + 1, 2, oh)) return std::nullopt;
      std::size_t p = pos + 3;
      if (p < text.size() && text[p] == ':') ++p;
      if (p < text.size()) {
        if (!read_digits(text, p, 2, om)) return std::nullopt;
        p += 2;
      }
      if (p != text.size() || oh > 23 || om > 59) return std::nullopt;
      offset_seconds = static_cast<std::int64_t>(oh * 3600 + om * 60) * (z == '-' ? -1 : 1);
    } else {
      return std::nullopt;
    }
  }
  const std::int64_t days = days_from_civil(year, month, day);
  const std::int64_t secs =
      days * 86400 + hour * 3600 + minute * 60 + static_cast<std::int64_t>(second) - offset_seconds;
  return secs * 1000000 + micros;
}

std::optional<std::int64_t> parse_epoch_text_us(std::string_view text, bool unit_seconds) noexcept {
  text = trim(text);
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"')
    text = trim(text.substr(1, text.size() - 2));
  if (text.empty()) return std::nullopt;
  // Fast path: integer digits with an optional ".0..." fraction.
  std::size_t pos = 0;
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    pos = 1;
  }
  std::int64_t whole = 0;
  std::size_t int_digits = 0;
  while (pos < text.size() && is_digit(text[pos]) && int_digits < 18) {
    whole = whole * 10 + (text[pos] - '0');
    ++pos;
    ++int_digits;
  }
  double value;
  if (int_digits > 0 && pos == text.size()) {
    value = static_cast<double>(whole);
  } else if (int_digits > 0 && text[pos] == '.' &&
             text.find_first_not_of("0123456789", pos + 1) == std::string_view::npos) {
    // "1630565399000.0" or "1526383416.25": keep the fraction exactly enough for micros.
    double frac = 0, scale = 0.1;
    for (std::size_t i = pos + 1; i < text.size() && scale > 1e-9; ++i, scale /= 10)
      frac += (text[i] - '0') * scale;
    value = static_cast<double>(whole) + frac;
  } else if (text.find('-', 1) != std::string_view::npos && text.size() >= 16) {
    return parse_iso8601_us(text);
  } else {
    // Exponent forms ("1.630565399E12"); strtod needs a NUL-terminated copy.
    char buffer[64];
    if (text.size() >= sizeof buffer) return std::nullopt;
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    char* end = nullptr;
    value = std::strtod(buffer, &end);
    if (end != buffer + text.size() || !std::isfinite(value)) return std::nullopt;
    negative = false;
  }
  if (negative) value = -value;
  // Values below 1e11 cannot be milliseconds of a Skype-era date (1e11 ms is 1973).
  const bool seconds = unit_seconds || std::fabs(value) < 1e11;
  const double us = seconds ? value * 1e6 : value * 1e3;
  if (!(std::fabs(us) < 9.0e18)) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(us));
}

std::string format_iso8601_utc(std::int64_t us) {
  std::int64_t secs = us / 1000000;
  std::int64_t frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  std::int64_t days = secs / 86400;
  std::int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  const auto [y, m, d] = civil_from_days(days);

  char buffer[48];
  char* p = buffer;
  auto put = [&p](std::int64_t v, int width) {
    char digits[24];
    int n = 0;
    std::uint64_t u = static_cast<std::uint64_t>(v < 0 ? -v : v);
    do {
      digits[n++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (v < 0) *p++ = '-';
    for (int i = n; i < width; ++i) *p++ = '0';
    while (n > 0) *p++ = digits[--n];
  };
  put(y, 4);
  *p++ = '-';
  put(m, 2);
  *p++ = '-';
  put(d, 2);
  *p++ = 'T';
  put(sod / 3600, 2);
  *p++ = ':';
  put(sod / 60 % 60, 2);
  *p++ = ':';
  put(sod % 60, 2);
  if (frac != 0) {
    *p++ = '.';
    if (frac % 1000 == 0) {
      put(frac / 1000, 3);
    } else {
      put(frac, 6);
    }
  }
  *p++ = 'Z';
  return std::string(buffer, p);
}

std::optional<std::int64_t> parse_export_date_us(std::string_view text) noexcept {
  unsigned year, month, day, hour = 0, minute = 0, second = 0;
  if (!read_digits(text, 0, 4, year) || text.size() < 10 || text[4] != '-' ||
      !read_digits(text, 5, 2, month) || text[7] != '-' || !read_digits(text, 8, 2, day))
    return std::nullopt;
  if (text.size() >= 16) {
    if ((text[10] != 'T' && text[10] != ' ') || !read_digits(text, 11, 2, hour) ||
        text[13] != ':' || !read_digits(text, 14, 2, minute))
      return std::nullopt;
    if (text.size() >= 19 && text[16] == ':' && !read_digits(text, 17, 2, second))
      return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  const std::int64_t seconds =
      ((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second;
  return seconds * 1'000'000;
}

}  // namespace skype_etl::detail
