// What a run returns (EtlGraph::run): typed, with to_json() for those who want the JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skype_etl/export.hpp"

namespace skype_etl {

/// Where the messages of an export went: every message read is in exactly one of
/// inserted, updated, unchanged, superseded, skipped and failed.
struct MessageCounts {
  std::uint64_t read = 0;                ///< message objects in the file (read before a failure)
  std::uint64_t inserted = 0;            ///< stored for the first time ("new" in the JSON)
  std::uint64_t updated = 0;             ///< replaced a stored version with a higher one
  std::uint64_t unchanged = 0;           ///< stored already, same or higher version
  std::uint64_t superseded = 0;          ///< the same id later in the file with a higher version
  std::uint64_t skipped = 0;             ///< the file was loaded already (by another run)
  std::uint64_t failed = 0;              ///< its export failed: nothing of it stored
  std::uint64_t invalid_timestamps = 0;  ///< stored with sent_at NULL (also counted above)
};

/// One input of the run.
struct ExportOutcome {
  std::string file;                       ///< the path as given (valid UTF-8, other bytes as \xHH)
  std::string status;                     ///< "loaded", "already loaded" or "failed"
  std::optional<std::int64_t> export_id;  ///< skype.exports.export_id, when loaded
  std::string account_id;                 ///< its account, when loaded
  std::string user_id;                    ///< the export's userId
  std::uint64_t conversations = 0;
  MessageCounts messages;
  std::string error;  ///< why it failed ("failed" only)
  int exit_code = 0;  ///< the exit code of its failure (README: "Exit codes"); 0 otherwise
  /// The whole entry: the object skype.exports.statistics stores for a loaded export
  /// (phases' shares, transform and load figures, memory, ...), documented in the README.
  nlohmann::json statistics;
};

/// One phase of the run, as the context ended it.
struct PhaseResult {
  std::string status;                ///< "completed" or "failed"
  std::string start_time, end_time;  ///< ISO 8601 UTC
  double duration_seconds = 0;
  std::uint64_t conversations = 0;
  std::uint64_t messages = 0;
};

struct SKYPE_ETL_API RunResult {
  /// Every export loaded (or was loaded already).
  bool success = false;
  /// 0, or the first failure's code (README: "Exit codes").
  int exit_code = 0;
  /// The first failure: its message and exception type.
  std::string error, error_type;
  /// True when the run stopped (memory limit, lost connection, bug, --fail-fast): exports
  /// lists only the inputs it got to.
  bool stopped = false;
  std::vector<ExportOutcome> exports;  ///< in input order
  std::map<std::string, PhaseResult> phases;

  /// {"success", "exit_code", "error", "error_type", "stopped", "exports": [statistics of
  /// each], "phases": {name: {status, start_time, end_time, duration_seconds,
  /// conversations_processed, messages_processed}}} ("error..." only on failure).
  nlohmann::json to_json() const;
  /// The result whose to_json() gave `json` (an export's fields from its statistics).
  static RunResult from_json(const nlohmann::json& json);
};

}  // namespace skype_etl
