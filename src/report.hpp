// Run reports: the JSON the CLI writes with --report FILE.json, and a self-contained HTML
// page (--report FILE.html) with a timeline of the three phases, so their overlap is seen.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace skype_etl::detail {

/// `run` is the CLI's result object: {"success", "exports", "statistics", "seconds", ...}
/// with statistics()["phases"][phase]["start_time"/"end_time"] as ISO-8601 UTC strings.
/// The page has no external resources (inline SVG and CSS).
std::string render_html_report(const nlohmann::json& run);

/// Seconds since the Unix epoch of "YYYY-MM-DDTHH:MM:SS[.ffffff]Z"; nullopt-like -1 when
/// the text is not such a time.
double iso_to_epoch_seconds(const std::string& text) noexcept;

}  // namespace skype_etl::detail
