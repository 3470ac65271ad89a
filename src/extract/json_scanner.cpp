#include "extract/json_scanner.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/cpu.hpp"
#include "extract/json_error_position.hpp"

#if defined(__x86_64__) && defined(__SSE2__)
#include <immintrin.h>
#define SKYPE_ETL_BLOCK_SCANNER 1
#endif

namespace skype_etl::detail {
namespace {

/// `pos` is at an opening quote: the position after the closing quote, nothing validated.
std::size_t find_string_end(std::string_view text, std::size_t pos) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  const char* p = begin + pos + 1;
  while (true) {
    const auto* quote =
        static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (!quote) throw ScanError(pos, "truncated JSON: string never closes");
    // The quote is escaped when an odd number of backslashes precede it.
    const char* q = quote;
    while (q > begin + pos + 1 && q[-1] == '\\') --q;
    if (((quote - q) & 1) == 0) return static_cast<std::size_t>(quote - begin) + 1;
    p = quote + 1;
  }
}

/// The reference scanner for objects and arrays, one byte at a time. It defines the
/// behaviour (end positions, errors and their positions): the block scanner below agrees
/// with it on every input it accepts and hands every other case back to it.
std::size_t skip_container_bytewise(std::string_view text, std::size_t pos, int depth) {
  char stack[max_nesting_depth + 1];
  std::size_t opened_at[max_nesting_depth + 1];  // where each open bracket is
  int top = 0;
  std::size_t i = pos;
  const std::size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    switch (c) {
      case '"':
        i = find_string_end(text, i);
        continue;
      case '{':
      case '[':
        if (depth + top >= max_nesting_depth)
          throw ScanError(
              i, "JSON nests deeper than " + std::to_string(max_nesting_depth) + " levels");
        opened_at[top] = i;
        stack[top++] = c;
        break;
      case '}':
      case ']':
        if (top == 0 || stack[top - 1] != (c == '}' ? '{' : '['))
          throw ScanError(i, std::string("invalid JSON: unbalanced '") + c + "'");
        if (--top == 0) return i + 1;
        break;
      default:
        break;
    }
    ++i;
  }
  // The data ends inside every container still open: name the innermost, the one the data
  // broke off in (the outer ones start far earlier, e.g. at a conversation's MessageList).
  throw ScanError(opened_at[top - 1], std::string("truncated JSON: ") +
                                          (stack[top - 1] == '{' ? "object" : "array") +
                                          " never closes");
}

#ifdef SKYPE_ETL_BLOCK_SCANNER

constexpr std::size_t no_result = static_cast<std::size_t>(-1);

/// Bit i of each mask describes byte i of a 64-byte block.
struct BlockMasks {
  std::uint64_t quote;
  std::uint64_t backslash;
  std::uint64_t open;   // '{' or '['
  std::uint64_t close;  // '}' or ']'
};

// The kernel for any x86-64, then the same for AVX2: skip_container_blocks below picks one.
namespace baseline {
#include "extract/block_scanner.inc"
}  // namespace baseline
#ifdef SKYPE_ETL_AVX2_PRAGMA
#pragma GCC push_options
#pragma GCC target("avx2,bmi,pclmul,popcnt")  // = SKYPE_ETL_AVX2_TARGET (a pragma takes no macro)
namespace avx2 {
#include "extract/block_scanner.inc"
}  // namespace avx2
#pragma GCC pop_options
#endif

template <bool Record>
std::size_t skip_container_blocks(std::string_view text, std::size_t pos, int depth,
                                  std::vector<ElementSpan>* spans = nullptr,
                                  std::size_t max_spans = 0) noexcept {
#ifdef SKYPE_ETL_AVX2_PRAGMA
  if (cpu_has_avx2())
    return avx2::skip_container_blocks<Record>(text, pos, depth, spans, max_spans);
#endif
  return baseline::skip_container_blocks<Record>(text, pos, depth, spans, max_spans);
}

#endif  // SKYPE_ETL_BLOCK_SCANNER

#ifdef SKYPE_ETL_X86_DISPATCH
/// Validator::next_special's AVX2 loop over p[i, n), 32 bytes at a time: true with `i` at
/// the first quote, backslash or byte below 0x20; false with `i` where fewer than 32 bytes
/// are left, when the whole blocks before it have none.
SKYPE_ETL_TARGET_AVX2 bool next_special_avx2(const char* p, std::size_t& i,
                                             std::size_t n) noexcept {
  const __m256i quote = _mm256_set1_epi8('"');
  const __m256i backslash = _mm256_set1_epi8('\\');
  const __m256i control = _mm256_set1_epi8(0x1F);
  for (; i + 32 <= n; i += 32) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    // max(b, 0x1F) == 0x1F exactly for the bytes below 0x20 (unsigned).
    const __m256i special = _mm256_or_si256(
        _mm256_or_si256(_mm256_cmpeq_epi8(b, quote), _mm256_cmpeq_epi8(b, backslash)),
        _mm256_cmpeq_epi8(_mm256_max_epu8(b, control), control));
    const auto mask = static_cast<std::uint32_t>(_mm256_movemask_epi8(special));
    if (mask != 0) {
      i += static_cast<std::size_t>(__builtin_ctz(mask));
      return true;
    }
  }
  return false;
}
#endif

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

/// The validating scanner behind skip_value and skip_string (the header says what it
/// checks). The grammar is walked byte by byte; strings, most of the bytes, are searched
/// 32 (or 16) bytes at a time for the bytes that need a look. UTF-8 is checked by simdjson
/// over the whole value once it is known to end, or up to the error found: an invalid
/// sequence before another error is the one reported, so the error is always the first bad
/// byte.
class Validator {
 public:
  Validator(std::string_view text, std::size_t begin) noexcept : m_text(text), m_begin(begin) {}

  std::size_t string(std::size_t quote) const {
    const std::size_t n = m_text.size();
    std::size_t i = quote + 1;
    while (true) {
      i = next_special(i);
      if (i >= n) truncated(quote, "string");
      const char c = m_text[i];
      if (c == '"') return i + 1;
      if (c != '\\')
        fail(i, "invalid JSON: unescaped control character (" + describe_byte(m_text, i) +
                    ") in a string");
      i = escape(quote, i);
    }
  }

  std::size_t value(std::size_t pos, int depth) const {
    const std::size_t n = m_text.size();
    char stack[max_nesting_depth + 1];
    std::size_t opened_at[max_nesting_depth + 1];
    int top = 0;
    const auto truncated_inside = [&]() {
      if (top == 0) throw ScanError(pos, "truncated JSON: expected a value");
      truncated(opened_at[top - 1], stack[top - 1] == '{' ? "object" : "array");
    };
    std::size_t i = pos;
    while (true) {
      // A value starts at i.
      if (i >= n) truncated_inside();
      const char c = m_text[i];
      if (c == '{' || c == '[') {
        if (depth + top >= max_nesting_depth)
          fail(i, "JSON nests deeper than " + std::to_string(max_nesting_depth) + " levels");
        opened_at[top] = i;
        stack[top++] = c;
        i = skip_space(m_text, i + 1);
        if (i >= n) truncated_inside();
        if (m_text[i] == (c == '{' ? '}' : ']')) {
          --top;
          ++i;
        } else {
          if (c == '{' && !key(i)) truncated_inside();
          continue;
        }
      } else if (c == '"') {
        i = string(i);
      } else if (c == 't') {
        i = literal(i, "true");
      } else if (c == 'f') {
        i = literal(i, "false");
      } else if (c == 'n') {
        i = literal(i, "null");
      } else if (c == '-' || is_digit(c)) {
        i = number(i);
      } else {
        fail(i, "invalid JSON: expected a value, found " + describe_byte(m_text, i));
      }
      // After a value: close containers until one continues with ','.
      while (true) {
        if (top == 0) return i;
        i = skip_space(m_text, i);
        if (i >= n) truncated_inside();
        const char d = m_text[i];
        const char open = stack[top - 1];
        if (d == ',') {
          i = skip_space(m_text, i + 1);
          if (open == '{' && !key(i)) truncated_inside();
          break;
        }
        if (d == '}' || d == ']') {
          if (open != (d == '}' ? '{' : '['))
            fail(i, std::string("invalid JSON: unbalanced '") + d + "'");
          --top;
          ++i;
          continue;
        }
        fail(i, std::string("invalid JSON: expected ',' or '") + (open == '{' ? '}' : ']') +
                    "' after " + (open == '{' ? "an object member" : "an array element") +
                    ", found " + describe_byte(m_text, i));
      }
    }
  }

  /// Throws for the first invalid UTF-8 in [m_begin, end).
  void check_utf8(std::size_t end) const {
    if (simdjson::validate_utf8(m_text.data() + m_begin, end - m_begin)) return;
    throw ScanError(first_invalid_utf8(m_text, m_begin, end), "invalid UTF-8");
  }

 private:
  /// A problem at m_text[at]; the scan read up to `reached`. Invalid UTF-8 before it comes
  /// first.
  [[noreturn]] void fail(std::size_t at, const std::string& problem,
                         std::size_t reached = 0) const {
    const std::size_t upto = std::max(at, reached);
    const std::size_t bad = first_invalid_utf8(m_text, m_begin, std::min(upto, m_text.size()));
    if (bad != std::string_view::npos && bad < upto) throw ScanError(bad, "invalid UTF-8");
    throw ScanError(at, problem);
  }
  /// The text ends inside the string or container opening at `open`.
  [[noreturn]] void truncated(std::size_t open, const char* what) const {
    fail(open, std::string("truncated JSON: ") + what + " never closes", m_text.size());
  }

  /// At `i` (whitespace skipped) a key must start: moves `i` to its value (whitespace
  /// skipped). False when the text ends first.
  bool key(std::size_t& i) const {
    const std::size_t n = m_text.size();
    if (i >= n) return false;
    if (m_text[i] != '"')
      fail(i, "invalid JSON: expected a key (a string), found " + describe_byte(m_text, i));
    i = skip_space(m_text, string(i));
    if (i >= n) return false;
    if (m_text[i] != ':')
      fail(i, "invalid JSON: expected ':' after a key, found " + describe_byte(m_text, i));
    i = skip_space(m_text, i + 1);
    return true;
  }

  /// Whether `c` may follow a number or a literal.
  static bool ends_scalar(char c) noexcept {
    return c == ',' || c == '}' || c == ']' || c == ':' || is_json_space(c);
  }

  std::size_t literal(std::size_t at, std::string_view word) const {
    const std::size_t n = m_text.size();
    for (std::size_t k = 0; k < word.size(); ++k) {
      if (at + k >= n || m_text[at + k] != word[k])
        fail(at + k < n ? at + k : at,
             "invalid JSON: invalid literal (expected " + std::string(word) + ")");
    }
    const std::size_t end = at + word.size();
    if (end < n && !ends_scalar(m_text[end]))
      fail(end, "invalid JSON: invalid literal (expected " + std::string(word) + "), found " +
                    describe_byte(m_text, end) + " after it");
    return end;
  }

  std::size_t number(std::size_t at) const {
    const std::size_t n = m_text.size();
    std::size_t i = at;
    const auto expect_digit = [&](const char* after) {
      if (i >= n || !is_digit(m_text[i]))
        fail(i < n ? i : at,
             std::string("invalid JSON: invalid number (no digit after ") + after + ")");
    };
    if (m_text[i] == '-') ++i;
    expect_digit("'-'");
    const std::size_t int_begin = i;
    if (m_text[i] == '0') {
      ++i;
    } else {
      while (i < n && is_digit(m_text[i])) ++i;
    }
    std::size_t digits = i - int_begin;
    if (i < n && m_text[i] == '.') {
      ++i;
      expect_digit("'.'");
      const std::size_t frac_begin = i;
      while (i < n && is_digit(m_text[i])) ++i;
      digits += i - frac_begin;
    }
    if (i < n && (m_text[i] == 'e' || m_text[i] == 'E')) {
      ++i;
      if (i < n && (m_text[i] == '+' || m_text[i] == '-')) ++i;
      expect_digit("the exponent's 'e'");
      int exponent = 0;
      while (i < n && is_digit(m_text[i])) {
        if (exponent <= max_number_exponent) exponent = exponent * 10 + (m_text[i] - '0');
        ++i;
      }
      if (exponent > max_number_exponent)
        fail(at, "number out of range: exponent beyond " + std::to_string(max_number_exponent));
    }
    if (digits > max_number_digits)
      fail(at, "number out of range: more than " + std::to_string(max_number_digits) + " digits");
    if (i < n && !ends_scalar(m_text[i]))
      fail(i, "invalid JSON: invalid number, found " + describe_byte(m_text, i) + " in it");
    return i;
  }

  /// `at` is a backslash inside the string opening at `quote`: the position after its
  /// escape.
  std::size_t escape(std::size_t quote, std::size_t at) const {
    const std::size_t n = m_text.size();
    if (at + 1 >= n) truncated(quote, "string");
    switch (m_text[at + 1]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        return at + 2;
      case 'u':
        break;
      default:
        fail(at, "invalid JSON: invalid escape '\\" +
                     (static_cast<unsigned char>(m_text[at + 1]) >= 0x20 &&
                              static_cast<unsigned char>(m_text[at + 1]) < 0x7f
                          ? std::string(1, m_text[at + 1])
                          : describe_byte(m_text, at + 1)) +
                     "' in a string");
    }
    unsigned cp = 0;
    const int first = unicode_escape(at, cp);
    if (first < 0) truncated(quote, "string");
    if (first == 0) fail(at, "invalid JSON: \\u escape without four hex digits in a string");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
      fail(at, "invalid JSON: lone low surrogate (\\u" + std::string(m_text.substr(at + 2, 4)) +
                   ") in a string");
    if (cp < 0xD800 || cp > 0xDBFF) return at + 6;
    // A high surrogate: a low one must follow.
    unsigned low = 0;
    const int second = unicode_escape(at + 6, low);
    if (second < 0) truncated(quote, "string");
    if (second == 0 || low < 0xDC00 || low > 0xDFFF)
      fail(at, "invalid JSON: high surrogate (\\u" + std::string(m_text.substr(at + 2, 4)) +
                   ") without a low one after it in a string");
    return at + 12;
  }

  /// A \uXXXX escape at `at`: 1 with its code point in `cp`; 0 when the bytes there are not
  /// one; -1 when the text ends first (all of it there so far could be one).
  int unicode_escape(std::size_t at, unsigned& cp) const noexcept {
    const std::size_t n = m_text.size();
    for (std::size_t k = 0; k < 6; ++k) {
      if (at + k >= n) return -1;
      const char c = m_text[at + k];
      const bool ok = k == 0   ? c == '\\'
                      : k == 1 ? c == 'u'
                               : is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!ok) return 0;
    }
    hex4(m_text, at + 2, cp);
    return 1;
  }

  /// The first byte at or after `i` that is a quote, a backslash or below 0x20; the text's
  /// size when there is none.
  std::size_t next_special(std::size_t i) const noexcept {
    const char* p = m_text.data();
    const std::size_t n = m_text.size();
#ifdef SKYPE_ETL_X86_DISPATCH
    if (cpu_has_avx2() && next_special_avx2(p, i, n)) return i;
#endif
#if defined(SKYPE_ETL_BLOCK_SCANNER)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1F);
    for (; i + 16 <= n; i += 16) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      const __m128i special =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(b, quote), _mm_cmpeq_epi8(b, backslash)),
                       _mm_cmpeq_epi8(_mm_max_epu8(b, control), control));
      const auto mask = static_cast<std::uint32_t>(_mm_movemask_epi8(special));
      if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(mask));
    }
#endif
    for (; i < n; ++i) {
      const auto c = static_cast<unsigned char>(p[i]);
      if (c == '"' || c == '\\' || c < 0x20) return i;
    }
    return n;
  }

  std::string_view m_text;
  std::size_t m_begin;  // where the scan started: UTF-8 is checked from here
};

}  // namespace

std::size_t find_value_end(std::string_view text, std::size_t pos, int depth) {
  if (pos >= text.size()) throw ScanError(pos, "truncated JSON: expected a value");
  const char first = text[pos];
  if (first == '"') return find_string_end(text, pos);
  if (first != '{' && first != '[') {
    std::size_t end = pos;
    while (end < text.size()) {
      const char c = text[end];
      if (c == ',' || c == '}' || c == ']' || c == ':' || is_json_space(c)) break;
      if (c == '{' || c == '[' || c == '"')
        throw ScanError(end, "invalid JSON: unexpected " + describe_byte(text, end));
      ++end;
    }
    if (end == pos)
      throw ScanError(pos, "invalid JSON: expected a value, found " + describe_byte(text, pos));
    return end;
  }
#ifdef SKYPE_ETL_BLOCK_SCANNER
  if (const std::size_t end = skip_container_blocks<false>(text, pos, depth); end != no_result)
    return end;
#endif
  return skip_container_bytewise(text, pos, depth);
}

std::size_t skip_string(std::string_view text, std::size_t pos) {
  const Validator v(text, pos);
  const std::size_t end = v.string(pos);
  v.check_utf8(end);
  return end;
}

std::size_t skip_value(std::string_view text, std::size_t pos, int depth) {
  const Validator v(text, pos);
  const std::size_t end = v.value(pos, depth);
  v.check_utf8(end);
  return end;
}

std::size_t skip_array_recording(std::string_view text, std::size_t pos, int depth,
                                 std::vector<ElementSpan>& spans, std::size_t max_spans) {
  spans.clear();
#ifdef SKYPE_ETL_BLOCK_SCANNER
  if (pos < text.size() && text[pos] == '[') {
    const std::size_t end = skip_container_blocks<true>(text, pos, depth, &spans, max_spans);
    if (end != no_result) return end;
    spans.clear();
  }
#endif
  return find_value_end(text, pos, depth);
}

std::string describe_byte(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return "end of data";
  const auto b = static_cast<unsigned char>(text[pos]);
  if (b >= 0x20 && b < 0x7f) return std::string("'") + static_cast<char>(b) + "'";
  static const char* hex = "0123456789abcdef";
  return std::string("byte 0x") + hex[b >> 4U] + hex[b & 15U];
}

}  // namespace skype_etl::detail
