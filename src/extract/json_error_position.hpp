// Where in the input a JSON error lies, for error messages. simdjson's On-Demand iterator
// knows where it stopped (current_location()), which is the bad token for a structural
// error; for the errors its first stage finds (invalid UTF-8, a control character in a
// string) and for a bad escape it says only what went wrong, so the byte is found here by
// hand, on the error path only.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace skype_etl::detail {

/// The four hex digits at text[at, at + 4) (a \u escape's, as simdjson reads them) into
/// `value`; false when they are not there or not hex.
bool hex4(std::string_view text, std::size_t at, unsigned& value) noexcept;

/// The first byte of the first invalid UTF-8 sequence in text[begin, end) (a stray
/// continuation byte, a lead byte without its continuations, an overlong form, a surrogate,
/// a code point above U+10FFFF), or npos when it is all valid.
std::size_t first_invalid_utf8(std::string_view text, std::size_t begin, std::size_t end) noexcept;

/// The backslash of the first escape simdjson refuses in the string whose opening quote is
/// at `quote` (an unknown escape, \u without four hex digits, a lone surrogate), or npos.
std::size_t first_bad_escape(std::string_view text, std::size_t quote) noexcept;

/// The position in the raw text of the string at `quote` of the byte that decodes to byte
/// `decoded` of its value (for a JSON document held inside a string: a position simdjson
/// reports in the decoded document becomes one in the file). An escape is answered with
/// its backslash.
std::size_t raw_position_in_string(std::string_view text, std::size_t quote,
                                   std::size_t decoded) noexcept;

/// Where simdjson failed with `error` on the document text[begin, end). `stop` is where its
/// iterator stood (document::current_location()), npos when unknown (the document was never
/// iterated, or the iterator ran off its end). Returns a position in [begin, end): the bad
/// byte for invalid UTF-8, a control character in a string and a bad escape; `stop` (the
/// unexpected token, or the value of the wrong type) otherwise; `begin` when nothing better
/// is known.
std::size_t json_error_position(std::string_view text, std::size_t begin, std::size_t end,
                                simdjson::error_code error, std::size_t stop) noexcept;

}  // namespace skype_etl::detail
