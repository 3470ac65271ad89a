// Run reports: the JSON the CLI writes with --report FILE.json, and a self-contained HTML
// page (--report FILE.html) with a timeline of the three phases, so their overlap is seen.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace skype_etl::detail {

/// The names of an export entry's message counts (EtlGraph::run), in the order reports
/// show them: every message read is in one of new, updated, unchanged, superseded,
/// skipped and failed.
inline constexpr const char* k_message_counts[] = {
    "read", "new", "updated", "unchanged", "superseded", "skipped", "failed", "invalid_timestamps"};

/// {"exports", "loaded", "already_loaded", "failed", "conversations", "messages": {read,
/// new, ...}}:
/// the sums over `exports` (entries as EtlGraph::run returns them).
nlohmann::json summarize_exports(const nlohmann::json& exports);

/// `run` is the CLI's result object: {"success", "exports", "totals", "statistics",
/// "seconds", ...} with statistics()["phases"][phase]["start_time"/"end_time"] as ISO-8601
/// UTC strings; any of it may be missing or null (a run that failed early). The page has no
/// external resources (inline SVG and CSS); each count is in an element with
/// data-count="<name>" inside a row with data-export="<file>" (or data-export="" for the
/// totals), so tests and scripts can read them.
std::string render_html_report(const nlohmann::json& run);

/// Seconds since the Unix epoch of "YYYY-MM-DDTHH:MM:SS[.ffffff]Z"; nullopt-like -1 when
/// the text is not such a time.
double iso_to_epoch_seconds(const std::string& text) noexcept;

}  // namespace skype_etl::detail
