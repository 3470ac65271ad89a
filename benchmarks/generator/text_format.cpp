#include "text_format.hpp"

namespace skype_etl::gen::detail {
namespace {

struct CivilTime {
  std::int64_t year;
  unsigned month, day, hour, minute, second, millisecond;
};

// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, any epoch day).
CivilTime civil_from_ms(std::int64_t ms) {
  std::int64_t days = ms / 86400000;
  std::int64_t rest = ms % 86400000;
  if (rest < 0) {
    rest += 86400000;
    --days;
  }
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  CivilTime t{};
  t.day = doy - (153 * mp + 2) / 5 + 1;
  t.month = mp < 10 ? mp + 3 : mp - 9;
  t.year = static_cast<std::int64_t>(yoe) + era * 400 + (t.month <= 2 ? 1 : 0);
  const auto r = static_cast<unsigned>(rest);
  t.hour = r / 3600000;
  t.minute = r / 60000 % 60;
  t.second = r / 1000 % 60;
  t.millisecond = r % 1000;
  return t;
}

void put2(char* at, unsigned v) {
  at[0] = static_cast<char>('0' + v / 10);
  at[1] = static_cast<char>('0' + v % 10);
}

// "YYYY-MM-DDTHH:MM" into at[0..16).
void put_minutes(char* at, const CivilTime& t) {
  const auto y = static_cast<unsigned>(t.year);
  put2(at, y / 100);
  put2(at + 2, y % 100);
  at[4] = '-';
  put2(at + 5, t.month);
  at[7] = '-';
  put2(at + 8, t.day);
  at[10] = 'T';
  put2(at + 11, t.hour);
  at[13] = ':';
  put2(at + 14, t.minute);
}

}  // namespace

void append_base64(std::string& out, std::string_view bytes) {
  static constexpr char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size();
  for (; n >= 3; n -= 3, p += 3) {
    const unsigned v = (p[0] << 16) | (p[1] << 8) | p[2];
    const char quad[4] = {table[v >> 18], table[(v >> 12) & 63], table[(v >> 6) & 63],
                          table[v & 63]};
    out.append(quad, 4);
  }
  if (n > 0) {
    const unsigned v = (p[0] << 16) | (n > 1 ? p[1] << 8 : 0);
    const char quad[4] = {table[v >> 18], table[(v >> 12) & 63], n > 1 ? table[(v >> 6) & 63] : '=',
                          '='};
    out.append(quad, 4);
  }
}

void append_timestamp(std::string& out, std::int64_t ms, Fraction fraction) {
  const CivilTime t = civil_from_ms(ms);
  char text[24];
  put_minutes(text, t);
  text[16] = ':';
  put2(text + 17, t.second);
  std::size_t len = 19;
  if (fraction != Fraction::none) {
    text[len++] = '.';
    text[len++] = static_cast<char>('0' + t.millisecond / 100);
    text[len++] = static_cast<char>('0' + t.millisecond / 10 % 10);
    if (fraction == Fraction::three) text[len++] = static_cast<char>('0' + t.millisecond % 10);
  }
  text[len++] = 'Z';
  out.append(text, len);
}

void append_minute_timestamp(std::string& out, std::int64_t ms) {
  char text[16];
  put_minutes(text, civil_from_ms(ms));
  out.append(text, 16);
}

}  // namespace skype_etl::gen::detail
