// A structural scanner that finds where JSON values end without parsing them, so the
// reader can cut a huge messages.json into small documents (one conversation header, one
// message) that simdjson parses on their own: simdjson's index grows with the document,
// and simdjson 3.0.1 cannot iterate comma-separated documents. skip_value also validates
// what it passes over, for the values the reader keeps raw or skips: simdjson's On-Demand
// API checks only the values it is asked for.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace skype_etl::detail {

/// Deepest nesting accepted anywhere in an export (real exports nest about 6 levels).
inline constexpr int max_nesting_depth = 64;

/// A scan failed at `position` (relative to the scanned text).
class ScanError : public std::runtime_error {
 public:
  ScanError(std::size_t position, const std::string& problem)
      : std::runtime_error(problem), m_position(position) {}
  std::size_t position() const noexcept { return m_position; }

 private:
  std::size_t m_position;
};

inline bool is_json_space(char c) noexcept {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

inline std::size_t skip_space(std::string_view text, std::size_t pos) noexcept {
  while (pos < text.size() && is_json_space(text[pos])) ++pos;
  return pos;
}

/// Limits on numbers in values the reader keeps as raw JSON (PostgreSQL's jsonb must store
/// them: it refuses exponents beyond numeric's range, and writes 1e131071 out as 131,072
/// characters). Real exports' numbers are timestamps and counts of up to 20 digits.
inline constexpr std::size_t max_number_digits = 100;  ///< integer and fraction digits
inline constexpr int max_number_exponent = 400;        ///< |exponent|; a double's is below 330

/// `pos` is at an opening quote; returns the position after the closing quote. Validates
/// the string: no byte below 0x20 unescaped, every escape one of JSON's (`\uXXXX` with four
/// hex digits, a high surrogate followed by a low one, no lone low surrogate), valid UTF-8.
/// A ScanError's position is the bad byte (an escape's backslash), or the opening quote
/// when the text ends first.
std::size_t skip_string(std::string_view text, std::size_t pos);

/// `pos` is at the first byte of a value; returns the position after the value, having
/// validated all of it as JSON (RFC 8259): strings as skip_string does, the literals
/// true/false/null, numbers (within max_number_digits and max_number_exponent), objects'
/// keys, ':' and ',', only JSON whitespace between tokens, and nesting within
/// max_nesting_depth (counting `depth` levels already open). A scalar ends at whitespace,
/// ',', ']', '}' or the end of the text. A ScanError's position is the offending byte (the
/// first byte of invalid UTF-8, an unexpected character, a bad escape, the bracket one level
/// too deep), or, when the text ends first, the opening quote or bracket of the innermost
/// string or container left open.
std::size_t skip_value(std::string_view text, std::size_t pos, int depth = 0);

/// Where the value at `pos` ends, checking only that brackets balance, strings close and
/// nesting stays within max_nesting_depth (errors as skip_value reports those), for text
/// that is validated as it is read afterwards (a MessageList, whose messages are parsed one
/// by one). Faster than skip_value: 64 bytes at a time.
std::size_t find_value_end(std::string_view text, std::size_t pos, int depth = 0);

/// Where one element of an array lies: text[begin, end).
struct ElementSpan {
  std::size_t begin;
  std::size_t end;
};

/// find_value_end for the value at `pos` that, when it is an array, also lists where its
/// object elements lie (the first `max_spans` of them; `spans` is cleared first), so that
/// a reader need not scan them a second time. An element's span is what find_value_end at
/// its '{' would find. Like find_value_end, it does not validate what lies inside. The list may be
/// empty or shorter than the array (the scanner took its byte-wise path, or the array holds more
/// objects): callers check a span's begin before using it and scan for themselves otherwise.
std::size_t skip_array_recording(std::string_view text, std::size_t pos, int depth,
                                 std::vector<ElementSpan>& spans, std::size_t max_spans);

/// A short, printable description of the byte at `pos` for error messages ("'x'",
/// "end of data").
std::string describe_byte(std::string_view text, std::size_t pos);

}  // namespace skype_etl::detail
