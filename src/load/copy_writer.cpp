#include "load/copy_writer.hpp"
#include "core/civil_time.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

#include "core/cpu.hpp"
#include "skype_etl/errors.hpp"
#ifdef SKYPE_ETL_X86_DISPATCH
#include <immintrin.h>
#endif

namespace skype_etl::detail {
namespace {

// Bytes COPY text format cannot carry literally: 0 (dropped), \t, \n, \r, backslash.
struct EscapeTable {
  unsigned char special[256] = {};
  constexpr EscapeTable() {
    special[0] = 1;
    special[static_cast<unsigned char>('\t')] = 1;
    special[static_cast<unsigned char>('\n')] = 1;
    special[static_cast<unsigned char>('\r')] = 1;
    special[static_cast<unsigned char>('\\')] = 1;
  }
};
constexpr EscapeTable escape_table;

constexpr char two_digits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

inline void put2(char* out, unsigned value) noexcept {
  std::memcpy(out, two_digits + 2 * value, 2);
}

constexpr std::int64_t us_per_day = 86'400'000'000LL;
// The years 1..9999 that the text format writes, as microseconds since the Unix epoch.
constexpr std::int64_t first_timestamp_us = days_from_civil(1, 1, 1) * us_per_day;
constexpr std::int64_t end_timestamp_us = days_from_civil(10000, 1, 1) * us_per_day;
// PostgreSQL's binary timestamps count microseconds from 2000-01-01 00:00 UTC.
constexpr std::int64_t postgres_epoch_us = days_from_civil(2000, 1, 1) * us_per_day;

constexpr char binary_header[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
constexpr char binary_trailer[] = "\377\377";

inline std::uint16_t big_endian16(std::uint16_t v) noexcept {
  return __builtin_bswap16(v);
}
inline std::uint32_t big_endian32(std::uint32_t v) noexcept {
  return __builtin_bswap32(v);
}
inline std::uint64_t big_endian64(std::uint64_t v) noexcept {
  return __builtin_bswap64(v);
}

}  // namespace

std::string_view binary_copy_header() noexcept {
  return {binary_header, sizeof binary_header - 1};  // 11 signature + 4 flags + 4 extension
}

std::string_view binary_copy_trailer() noexcept {
  return {binary_trailer, sizeof binary_trailer - 1};
}

std::string_view binary_row_field(std::string_view row, std::size_t index) {
  // A row: the field count (int16), then each field's length (int32, -1 for NULL) and
  // bytes, all big-endian.
  auto read_be = [&](std::size_t at, std::size_t bytes) {
    if (at + bytes > row.size())
      throw DatabaseError("a row of a binary COPY stream ends before its field " +
                          std::to_string(index + 1));
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i)
      value = (value << 8U) | static_cast<unsigned char>(row[at + i]);
    return value;
  };
  if (read_be(0, 2) <= index)
    throw DatabaseError("a row of a binary COPY stream has no field " + std::to_string(index + 1));
  std::size_t at = 2;
  for (std::size_t field = 0;; ++field) {
    const std::uint32_t length = read_be(at, 4);
    at += 4;
    const std::size_t size = length == 0xFFFFFFFFU ? 0 : length;
    if (at + size > row.size())
      throw DatabaseError("a row of a binary COPY stream ends inside its field " +
                          std::to_string(field + 1));
    if (field == index) return row.substr(at, size);
    at += size;
  }
}

bool format_timestamp_us(std::int64_t us, char* out) noexcept {
  std::int64_t days = us / us_per_day;
  std::int64_t rest = us % us_per_day;
  if (rest < 0) {
    rest += us_per_day;
    --days;
  }
  const auto [year, month, day] = civil_from_days(days);
  if (year < 1 || year > 9999) return false;
  const unsigned micro = static_cast<unsigned>(rest % 1'000'000);
  const unsigned secs = static_cast<unsigned>(rest / 1'000'000);
  const unsigned y = static_cast<unsigned>(year);
  put2(out, y / 100);
  put2(out + 2, y % 100);
  out[4] = '-';
  put2(out + 5, month);
  out[7] = '-';
  put2(out + 8, day);
  out[10] = ' ';
  put2(out + 11, secs / 3600);
  out[13] = ':';
  put2(out + 14, (secs / 60) % 60);
  out[16] = ':';
  put2(out + 17, secs % 60);
  out[19] = '.';
  put2(out + 20, micro / 10000);
  put2(out + 22, (micro / 100) % 100);
  put2(out + 24, micro % 100);
  std::memcpy(out + 26, "+00", 3);
  return true;
}

std::string format_timestamp_us(std::int64_t us) {
  char buffer[timestamp_text_size];
  if (!format_timestamp_us(us, buffer)) return {};
  return std::string(buffer, timestamp_text_size);
}

std::size_t replace_json_nul_escapes(std::string_view json, std::string& out) {
  static constexpr char needle[] = "\\u0000";
  const char* begin = json.data();
  const char* end = begin + json.size();
  std::size_t replaced = 0;
  const char* copied = begin;  // json[begin, copied) is already in `out`
  const char* at = begin;
  while (at < end) {
    const void* found = memmem(at, static_cast<std::size_t>(end - at), needle, 6);
    if (!found) break;
    const char* hit = static_cast<const char*>(found);
    // The backslash starts an escape only when preceded by an even number of backslashes.
    std::size_t backslashes = 0;
    for (const char* p = hit; p > begin && p[-1] == '\\'; --p) ++backslashes;
    if (backslashes % 2 == 0) {
      if (replaced == 0) {
        out.clear();
        out.reserve(json.size());
      }
      out.append(copied, hit);
      out.append("\\ufffd");
      copied = hit + 6;
      ++replaced;
      at = hit + 6;
    } else {
      at = hit + 1;
    }
  }
  if (replaced) out.append(copied, end);
  return replaced;
}

CopyBuffer::~CopyBuffer() {
  std::free(m_data);
}

CopyBuffer::CopyBuffer(CopyBuffer&& other) noexcept
    : m_data(std::exchange(other.m_data, nullptr)),
      m_size(std::exchange(other.m_size, 0)),
      m_capacity(std::exchange(other.m_capacity, 0)),
      m_binary(other.m_binary),
      m_field_open(std::exchange(other.m_field_open, false)),
      m_row_start(other.m_row_start),
      m_fields(other.m_fields),
      m_rows(other.m_rows),
      m_nul_removed(other.m_nul_removed),
      m_json_nul_replaced(other.m_json_nul_replaced) {}

CopyBuffer& CopyBuffer::operator=(CopyBuffer&& other) noexcept {
  if (this != &other) {
    std::free(m_data);
    m_data = std::exchange(other.m_data, nullptr);
    m_size = std::exchange(other.m_size, 0);
    m_capacity = std::exchange(other.m_capacity, 0);
    m_binary = other.m_binary;
    m_field_open = std::exchange(other.m_field_open, false);
    m_row_start = other.m_row_start;
    m_fields = other.m_fields;
    m_rows = other.m_rows;
    m_nul_removed = other.m_nul_removed;
    m_json_nul_replaced = other.m_json_nul_replaced;
  }
  return *this;
}

void CopyBuffer::reserve_more(std::size_t extra) {
  std::size_t capacity = m_capacity ? m_capacity : 64 * 1024;
  while (capacity - m_size < extra) capacity *= 2;
  // realloc, not std::string: growing never zero-fills.
  void* data = std::realloc(m_data, capacity);
  if (!data) throw std::bad_alloc();
  m_data = static_cast<char*>(data);
  m_capacity = capacity;
}

namespace {

/// Writes the COPY text escape of one special byte (tab, newline, CR, backslash); a NUL,
/// which PostgreSQL text cannot hold, is dropped and counted.
inline char* escape_special(unsigned char c, char* out, std::uint64_t& nul_removed) noexcept {
  switch (c) {
    case 0:
      ++nul_removed;
      return out;
    case '\t':
      c = 't';
      break;
    case '\n':
      c = 'n';
      break;
    case '\r':
      c = 'r';
      break;
    default:
      break;
  }
  *out++ = '\\';
  *out++ = static_cast<char>(c);
  return out;
}

#ifdef SKYPE_ETL_X86_DISPATCH
/// CopyBuffer::append_escaped's AVX2 loop: copies [in, end) to out 32 bytes at a time,
/// escaping as it goes, until fewer than 32 bytes are left (`in` and `out` then say where).
/// Writes whole 32-byte chunks: `out` has room for 2 * size + 32.
SKYPE_ETL_TARGET_AVX2 void escape_avx2(const unsigned char*& in, const unsigned char* end,
                                       char*& out, std::uint64_t& nul_removed) noexcept {
  const __m256i backslash = _mm256_set1_epi8('\\');
  const __m256i tab = _mm256_set1_epi8('\t');
  const __m256i newline = _mm256_set1_epi8('\n');
  const __m256i cr = _mm256_set1_epi8('\r');
  const __m256i zero = _mm256_setzero_si256();
  while (end - in >= 32) {
    __m256i chunk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in));
    __m256i special = _mm256_or_si256(
        _mm256_or_si256(_mm256_cmpeq_epi8(chunk, backslash), _mm256_cmpeq_epi8(chunk, tab)),
        _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(chunk, newline), _mm256_cmpeq_epi8(chunk, cr)),
            _mm256_cmpeq_epi8(chunk, zero)));
    unsigned mask = static_cast<unsigned>(_mm256_movemask_epi8(special));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), chunk);
    if (mask == 0) {
      in += 32;
      out += 32;
      continue;
    }
    unsigned plain = static_cast<unsigned>(__builtin_ctz(mask));
    in += plain;
    out += plain;
    const unsigned char c = *in++;
    out = escape_special(c, out, nul_removed);
  }
}
#endif

}  // namespace

void CopyBuffer::append_escaped(std::string_view value) {
  ensure(2 * value.size() + 1);
  const unsigned char* in = reinterpret_cast<const unsigned char*>(value.data());
  const unsigned char* end = in + value.size();
  char* out = m_data + m_size;
#ifdef SKYPE_ETL_X86_DISPATCH
  if (cpu_has_avx2()) escape_avx2(in, end, out, m_nul_removed);
#endif
  for (; in < end; ++in) {
    const unsigned char c = *in;
    if (!escape_table.special[c]) {
      *out++ = static_cast<char>(c);
      continue;
    }
    out = escape_special(c, out, m_nul_removed);
  }
  m_size = static_cast<std::size_t>(out - m_data);
}

void CopyBuffer::binary_field(const void* bytes, std::uint32_t size) {
  ensure(6 + size);
  separator();
  const std::uint32_t length = big_endian32(size);
  std::memcpy(m_data + m_size, &length, 4);
  std::memcpy(m_data + m_size + 4, bytes, size);
  m_size += 4 + size;
}

void CopyBuffer::append_binary_text(std::string_view value, std::string_view prefix) {
  ensure(6 + prefix.size() + value.size());
  separator();
  const std::size_t length_at = m_size;
  char* out = m_data + m_size + 4;
  // Most calls pass no prefix, whose data() is null: memcpy from null is undefined even
  // for zero bytes (UBSan reports it).
  if (!prefix.empty()) {
    std::memcpy(out, prefix.data(), prefix.size());
    out += prefix.size();
  }
  const char* in = value.data();
  const char* end = in + value.size();
  while (in < end) {
    const void* nul = std::memchr(in, 0, static_cast<std::size_t>(end - in));
    const char* stop = nul ? static_cast<const char*>(nul) : end;
    std::memcpy(out, in, static_cast<std::size_t>(stop - in));
    out += stop - in;
    if (!nul) break;
    ++m_nul_removed;
    in = stop + 1;
  }
  const std::uint32_t length =
      big_endian32(static_cast<std::uint32_t>(out - (m_data + length_at + 4)));
  std::memcpy(m_data + length_at, &length, 4);
  m_size = static_cast<std::size_t>(out - m_data);
}

void CopyBuffer::text(std::string_view value) {
  if (m_binary) {
    append_binary_text(value);
    return;
  }
  // +32: the AVX2 loop stores whole 32-byte chunks; +1: the separator.
  ensure(2 * value.size() + 34);
  separator();
  append_escaped(value);
}

void CopyBuffer::null() {
  ensure(6);
  separator();
  if (m_binary) {
    std::memcpy(m_data + m_size, "\377\377\377\377", 4);  // length -1
    m_size += 4;
    return;
  }
  m_data[m_size++] = '\\';
  m_data[m_size++] = 'N';
}

void CopyBuffer::integer(std::int64_t value) {
  if (m_binary) {
    const std::uint64_t bytes = big_endian64(static_cast<std::uint64_t>(value));
    binary_field(&bytes, 8);
    return;
  }
  ensure(22);
  separator();
  auto result = std::to_chars(m_data + m_size, m_data + m_size + 21, value);
  m_size = static_cast<std::size_t>(result.ptr - m_data);
}

void CopyBuffer::boolean(bool value) {
  if (m_binary) {
    const char byte = value ? 1 : 0;
    binary_field(&byte, 1);
    return;
  }
  ensure(2);
  separator();
  m_data[m_size++] = value ? 't' : 'f';
}

void CopyBuffer::timestamp_us(std::int64_t us) {
  if (m_binary) {
    // The same range as the text format, so both formats store the same rows.
    if (us < first_timestamp_us || us >= end_timestamp_us) {
      null();
      return;
    }
    const std::uint64_t bytes = big_endian64(static_cast<std::uint64_t>(us - postgres_epoch_us));
    binary_field(&bytes, 8);
    return;
  }
  ensure(timestamp_text_size + 1);
  separator();
  if (format_timestamp_us(us, m_data + m_size)) {
    m_size += timestamp_text_size;
  } else {
    m_data[m_size++] = '\\';
    m_data[m_size++] = 'N';
  }
}

void CopyBuffer::floating(double value) {
  if (m_binary) throw std::logic_error("CopyBuffer::floating: not available in binary format");
  if (!std::isfinite(value)) {
    null();
    return;
  }
  ensure(34);
  separator();
  auto result = std::to_chars(m_data + m_size, m_data + m_size + 32, value);
  m_size = static_cast<std::size_t>(result.ptr - m_data);
}

void CopyBuffer::json(std::string_view value) {
  if (value.empty() || value == "null") {
    null();
    return;
  }
  std::string fixed;
  if (memmem(value.data(), value.size(), "\\u0000", 6) != nullptr) {
    std::size_t replaced = replace_json_nul_escapes(value, fixed);
    if (replaced) {
      m_json_nul_replaced += replaced;
      value = fixed;
    }
  }
  if (m_binary) {
    append_binary_text(value, std::string_view("\1", 1));  // jsonb's format version 1
    return;
  }
  text(value);
}

void CopyBuffer::end_row() {
  if (m_binary) {
    if (!m_field_open) throw std::logic_error("CopyBuffer::end_row: a binary row needs a field");
    const std::uint16_t count = big_endian16(m_fields);
    std::memcpy(m_data + m_row_start, &count, 2);
  } else {
    ensure(1);
    m_data[m_size++] = '\n';
  }
  m_field_open = false;
  ++m_rows;
}

void CopyBuffer::append_rows(std::string_view encoded, std::uint64_t count) {
  if (m_field_open) throw std::logic_error("CopyBuffer::append_rows: a row is open");
  ensure(encoded.size());
  std::memcpy(m_data + m_size, encoded.data(), encoded.size());
  m_size += encoded.size();
  m_rows += count;
}

void append_message_columns(CopyBuffer& row, const Message& m) {
  CopyBuffer& b = row;
  b.text(m.message_id);
  b.integer(m.version);
  b.timestamp_us(m.sent_at_us);
  b.text_or_null(m.sender_id);
  b.text_or_null(m.sender_raw);
  b.nullable_text(m.sender_name);
  b.text_or_null(m.message_type);
  b.text(m.content_raw);
  b.text(m.content_text);
  b.boolean(m.is_edited);
  b.timestamp_us(m.edited_at_us);
  b.boolean(m.is_deleted);
  b.timestamp_us(m.deleted_at_us);
  b.boolean(m.is_server_generated);
  b.json(m.properties_json);
  b.json(m.details_json);
  b.json(m.extra_json);
}

}  // namespace skype_etl::detail
