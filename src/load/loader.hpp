// Load: writes transformed batches into PostgreSQL (schema `skype`) with COPY into
// per-export staging tables (or, for a large export of an account that has no partition of
// skype.messages yet, or that brings mostly new messages to it, into a side table that
// becomes or replaces that partition) and merges them into the final tables in one
// transaction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/model.hpp"
#include "load/load_steps.hpp"
#include "load/side_table.hpp"
#include "skype_etl/options.hpp"

namespace skype_etl::detail {

/// Knobs of the loader; the defaults are what `skype-etl run` uses.
struct LoaderOptions {
  /// Side-table load: when the file has at least this many bytes and the export's account
  /// has no partition of skype.messages yet (or one of its own at most twice the file's
  /// size, and the first batch is mostly new messages), the messages are COPYed over
  /// copy_streams connections at once into a new table of schema skype_load, which gets
  /// skype.messages' indexes (built on those connections at once) and then becomes the
  /// account's partition (or, with the stored messages it does not replace, replaces it)
  /// in the export's transaction. UINT64_MAX disables it.
  std::uint64_t side_load_min_file_bytes = 32ULL << 20U;  // about 100k messages
  /// Connections that COPY a side-table load's messages and build its indexes. 0 disables
  /// side-table loads.
  std::size_t copy_streams = 2;
  /// Whether an account's first side-table load is split into one table per stream, whose
  /// rows then skip WAL where wal_level is minimal (SideSplit).
  SideSplit side_split = SideSplit::when_wal_minimal;
  /// COPY data is sent to the server once this many bytes are buffered. Under 1 MiB by
  /// more than a usual row, so that a buffer's storage (which doubles as it grows) stays
  /// at 1 MiB instead of reaching 2.
  std::size_t copy_flush_bytes = (1U << 20U) - (64U << 10U);
  /// maintenance_work_mem of the index builds, in bytes, unless the server's own is larger
  /// (index_build_memory). Empty: default_maintenance_work_mem, bounded by the server's
  /// memory.
  std::optional<std::uint64_t> maintenance_work_mem;
  /// Told the name of each step of an export's load as it begins (LoadSteps): "begin",
  /// "copy" (the batches), then those of finish_export ("copy_rest", "index_build", ...,
  /// "commit"). Empty: nobody is told.
  LoadStepObserver on_step;
};

/// Outcome of Loader::begin_export.
enum class BeginResult { started, already_loaded };

/// One loader per load worker; owns its libpq connection. Not thread-safe.
/// Usage per export: begin_export, load_batch*, finish_export (or abort_export).
class Loader {
 public:
  explicit Loader(const DbConfig& db, LoaderOptions options = {});
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// Creates or migrates schema `skype` (in one transaction, under an advisory lock).
  void ensure_schema();
  /// Opens the export's transaction and staging tables. Returns already_loaded (and
  /// opens nothing) when an export with the same digest is in skype.exports.
  BeginResult begin_export(const ExportInfo& info, const std::string& owner_display_name);
  void load_batch(const Batch& batch);
  /// Merges staging into the final tables, writes the export row with `statistics`,
  /// commits. Returns {"export_id", "messages", "conversations", "superseded", ...,
  /// "merge_seconds" (seconds per step of this call's, plus "index_build_each" and
  /// "analyze" of the streams), "steps" (LoadSteps::to_json of the export: from
  /// begin_export to the commit)}, or
  /// {"already_loaded": true} (and rolls back) when the digest, unknown at begin_export,
  /// turns out to be loaded already.
  nlohmann::json finish_export(const nlohmann::json& statistics);
  /// Makes the statistics of skype.exports from what the merge did: called with what
  /// finish_export will return (all but the commit's timing), just before the commit.
  using StatisticsOf = std::function<nlohmann::json(const nlohmann::json& outcome)>;
  /// finish_export, storing statistics_of(outcome).
  nlohmann::json finish_export_with(const StatisticsOf& statistics_of);
  /// Rolls back whatever the current export wrote. Never throws.
  void abort_export() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace skype_etl::detail
