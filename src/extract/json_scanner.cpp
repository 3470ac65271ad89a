#include "extract/json_scanner.hpp"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__SSE2__)
#include <immintrin.h>
#define SKYPE_ETL_BLOCK_SCANNER 1
#endif

namespace skype_etl::detail {
namespace {

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
        i = skip_string(text, i);
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

#ifdef __AVX2__
inline BlockMasks classify(const char* p) noexcept {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  // '[' | 0x20 == '{' and ']' | 0x20 == '}': one compare finds both kinds of bracket.
  const __m256i case_bit = _mm256_set1_epi8(0x20);
  const __m256i lo_folded = _mm256_or_si256(lo, case_bit);
  const __m256i hi_folded = _mm256_or_si256(hi, case_bit);
  const auto bits = [](__m256i a, __m256i b, char c) {
    const __m256i wanted = _mm256_set1_epi8(c);
    const auto low = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, wanted)));
    const auto high =
        static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, wanted)));
    return static_cast<std::uint64_t>(low) | (static_cast<std::uint64_t>(high) << 32U);
  };
  return {bits(lo, hi, '"'), bits(lo, hi, '\\'), bits(lo_folded, hi_folded, '{'),
          bits(lo_folded, hi_folded, '}')};
}
#else
inline BlockMasks classify(const char* p) noexcept {
  BlockMasks m{0, 0, 0, 0};
  const __m128i case_bit = _mm_set1_epi8(0x20);
  for (unsigned k = 0; k < 4; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const __m128i folded = _mm_or_si128(v, case_bit);
    const auto bits = [&](__m128i a, char c) {
      return static_cast<std::uint64_t>(
                 static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(a, _mm_set1_epi8(c)))))
             << (16U * k);
    };
    m.quote |= bits(v, '"');
    m.backslash |= bits(v, '\\');
    m.open |= bits(folded, '{');
    m.close |= bits(folded, '}');
  }
  return m;
}
#endif

/// Bit i set when an odd number of quote bits lie at or before i: the inside of strings
/// (opening quote included, closing quote excluded).
inline std::uint64_t prefix_xor(std::uint64_t x) noexcept {
#ifdef __PCLMUL__
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(
      _mm_clmulepi64_si128(_mm_set_epi64x(0, static_cast<long long>(x)), _mm_set1_epi8(-1), 0)));
#else
  x ^= x << 1U;
  x ^= x << 2U;
  x ^= x << 4U;
  x ^= x << 8U;
  x ^= x << 16U;
  x ^= x << 32U;
  return x;
#endif
}

/// Bits of the characters escaped by a backslash: those preceded by an odd-length run of
/// backslashes (simdjson's branchless method). `carry` is 1 when the first byte of the
/// next block is escaped.
inline std::uint64_t escaped_bits(std::uint64_t backslash, std::uint64_t& carry) noexcept {
  backslash &= ~carry;
  const std::uint64_t follows_escape = backslash << 1U | carry;
  constexpr std::uint64_t even_bits = 0x5555555555555555ULL;
  const std::uint64_t odd_starts = backslash & ~even_bits & ~follows_escape;
  unsigned long long starts_on_even = 0;
  carry = __builtin_uaddll_overflow(odd_starts, backslash, &starts_on_even) ? 1U : 0U;
  const std::uint64_t invert = static_cast<std::uint64_t>(starts_on_even) << 1U;
  return (even_bits ^ invert) & follows_escape;
}

/// Finds the end of the object or array at `pos` 64 bytes at a time (strings are found
/// with bit masks, so only brackets outside strings are visited one by one). Returns
/// no_result to let the byte-wise scanner decide: on any error (unbalanced, too deep,
/// truncated, a string that never closes), and on a backslash outside a string, which
/// the byte-wise scanner ignores but the escape masks would apply to the next byte.
/// With `Record`, also appends to `spans` the object elements of the container at `pos`
/// (up to `max_spans` of them).
template <bool Record>
std::size_t skip_container_blocks(std::string_view text, std::size_t pos, int depth,
                                  std::vector<ElementSpan>* spans = nullptr,
                                  std::size_t max_spans = 0) noexcept {
  const char* const base = text.data();
  const std::size_t n = text.size();
  char stack[max_nesting_depth + 1];
  int top = 0;
  std::uint64_t escape_carry = 0;
  std::uint64_t in_string_carry = 0;  // all ones while a string continues into the block
  std::size_t element_begin = 0;
  alignas(64) char tail[64];
  for (std::size_t block = pos; block < n; block += 64) {
    const char* p = base + block;
    // The hardware prefetcher of the machines measured (see benchmarks/README.md) does not
    // keep up with this loop on a memory-mapped file: fetching 4 KB ahead halved its time.
    // Prefetches never fault, so reading ahead of the text's end is harmless.
    __builtin_prefetch(p + 4096);
    const std::size_t left = n - block;
    if (left < 64) {  // the text's last bytes: never read past its end
      std::memset(tail, ' ', sizeof tail);
      std::memcpy(tail, p, left);
      p = tail;
    }
    const BlockMasks m = classify(p);
    const std::uint64_t quotes = m.quote & ~escaped_bits(m.backslash, escape_carry);
    const std::uint64_t in_string = prefix_xor(quotes) ^ in_string_carry;
    in_string_carry = static_cast<std::uint64_t>(static_cast<std::int64_t>(in_string) >> 63);
    if ((m.backslash & ~in_string) != 0) return no_result;
    std::uint64_t brackets = (m.open | m.close) & ~in_string;
    while (brackets != 0) {
      const std::size_t i = block + static_cast<std::size_t>(__builtin_ctzll(brackets));
      brackets &= brackets - 1;
      const char c = base[i];
      if (c == '{' || c == '[') {
        if (depth + top >= max_nesting_depth) return no_result;
        if constexpr (Record) {
          if (top == 1 && c == '{') element_begin = i;
        }
        stack[top++] = c;
      } else {
        if (top == 0 || stack[top - 1] != (c == '}' ? '{' : '[')) return no_result;
        if (--top == 0) return i + 1;
        if constexpr (Record) {
          if (top == 1 && c == '}' && spans->size() < max_spans)
            spans->push_back({element_begin, i + 1});
        }
      }
    }
  }
  return no_result;
}

#endif  // SKYPE_ETL_BLOCK_SCANNER

}  // namespace

std::size_t skip_string(std::string_view text, std::size_t pos) {
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

std::size_t skip_value(std::string_view text, std::size_t pos, int depth) {
  if (pos >= text.size()) throw ScanError(pos, "truncated JSON: expected a value");
  const char first = text[pos];
  if (first == '"') return skip_string(text, pos);
  if (first != '{' && first != '[') {
    // A scalar: runs up to the next delimiter; simdjson checks its spelling later.
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
  return skip_value(text, pos, depth);
}

std::string describe_byte(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return "end of data";
  const auto b = static_cast<unsigned char>(text[pos]);
  if (b >= 0x20 && b < 0x7f) return std::string("'") + static_cast<char>(b) + "'";
  static const char* hex = "0123456789abcdef";
  return std::string("byte 0x") + hex[b >> 4U] + hex[b & 15U];
}

}  // namespace skype_etl::detail
