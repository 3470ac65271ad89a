// Timestamp parsing for the transform: the export's ISO-8601 strings and epoch-millisecond
// texts, and the ISO form written into details_json. Pure functions, no allocation except
// format_iso8601_utc's result; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace skype_etl::detail {

/// "2021-09-02T06:49:55.104Z" (0..9 fractional digits, beyond 6 truncated; 'T' or ' ';
/// zone 'Z', none (UTC) or +hh:mm / -hh:mm / +hhmm) -> microseconds since the Unix epoch.
/// nullopt when the text is not such a timestamp or a field is out of range.
std::optional<std::int64_t> parse_iso8601_us(std::string_view text) noexcept;

/// An epoch time as text: "1630565399000", "1630565399000.0", "\"1630565399000\"",
/// "1.630565399E12", or an ISO-8601 string. Numbers are milliseconds unless `unit_seconds`
/// (or the value is too small to be milliseconds after 1973: then seconds).
std::optional<std::int64_t> parse_epoch_text_us(std::string_view text,
                                                bool unit_seconds = false) noexcept;

/// The export's exportDate ("2025-04-30T10:13": minute precision, no zone = UTC; 'T' or ' ',
/// seconds, fractions and a trailing Z tolerated, a date alone is midnight) -> microseconds
/// since the Unix epoch, whole seconds. nullopt when unrecognisable.
std::optional<std::int64_t> parse_export_date_us(std::string_view text) noexcept;

/// Microseconds since the epoch -> "2021-09-02T06:49:55Z", or "...55.104Z" /
/// "...55.104123Z" when there is a fraction.
std::string format_iso8601_utc(std::int64_t us);

}  // namespace skype_etl::detail
