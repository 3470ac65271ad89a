// The wall clock of statistics and reports: one source and one format for every time
// skype-etl records (defined in progress_tracker.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace skype_etl::detail {

/// system_clock microseconds since the Unix epoch.
std::int64_t now_us() noexcept;
/// ISO-8601 UTC with microseconds: "2025-04-30T10:13:05.123456Z".
std::string format_utc_us(std::int64_t us);

}  // namespace skype_etl::detail
