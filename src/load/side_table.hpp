// Side-table loads: a large export's messages COPYed over several connections at once into
// a table of schema skype_load, which gets skype.messages' indexes (again on several
// connections) and then becomes, or replaces, the account's partition, or is merged into it,
// inside the export's transaction. Also: whether a load should be one, and the clean-up of
// side tables that loads which ended abnormally left behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.hpp"
#include "load/copy_writer.hpp"
#include "load/load_steps.hpp"
#include "load/parallel_copy.hpp"
#include "load/partitions.hpp"

namespace skype_etl::detail {

class PgConnection;

/// Settings of every connection of a loader (the side table's streams too). An export
/// commits in one transaction: synchronous_commit off risks the last commits before a crash
/// of the server, never half an export (README: "What is guaranteed").
constexpr const char* loader_session_sql =
    "SET client_encoding = 'UTF8'; SET application_name = 'skype-etl'; "
    "SET synchronous_commit = off";

/// Whether rows may reach skype.messages by attaching a partition: no trigger on it (a side
/// table's rows would never fire it) and no publication of it (attaching publishes nothing).
bool side_load_allowed(PgConnection& conn);
/// Whether a side-table load of a file of `file_size` bytes into the account's partition
/// `existing` may be worth it: only into its own partition (`own`), whose heap is at most
/// twice the file (a message takes about as many bytes in both), so the export may bring
/// as many new messages as half the stored ones. Then rewriting the partition with them
/// beats inserting them through its indexes one by one; the side table decides on the
/// actual new rows (SideTable::rewrite_or_merge).
bool side_load_may_pay(PgConnection& conn, const std::string& existing, const std::string& own,
                       std::uint64_t file_size);
/// Whether most of the messages of `batch` (up to 256 of them, spread over it) are new to
/// the account's `partition` ("": it has none, so all are). Most exports that bring an
/// account's messages again bring mostly the same ones, and staging them costs less than a
/// side table that then gets merged the same way (benchmarks/README.md, "partition rewrite").
bool batch_mostly_new(PgConnection& conn, const std::string& partition, const Batch& batch);

/// Whether the side table of an account's first load is split into one table per COPY
/// stream: hash partitions of message_id, each emptied (TRUNCATE) in its stream's COPY
/// transaction, so that with wal_level=minimal its rows skip WAL (the table is written and
/// fsynced once, at the COMMIT). The account's partition is then itself partitioned.
enum class SideSplit {
  when_wal_minimal,  ///< only where it saves something: the server's wal_level is minimal
  always,            ///< whatever wal_level is (tests)
  never,
};

/// What became of a side table.
enum class SideOutcome {
  none,       ///< no side table (a staged load)
  attached,   ///< it became the account's partition (the account had none)
  rewritten,  ///< with the stored rows it does not replace, it replaces the partition
  merged,     ///< its rows were merged into the account's partition
};

/// The side table of one loader's current export, and the connections that fill it
/// (ParallelCopy). Used by the loader's thread only.
class SideTable {
 public:
  /// `conn`: the loader's connection; the streams open `copy_streams` connections of their
  /// own, which build the indexes with `maintenance_work_mem` (index_build_memory).
  SideTable(PgConnection& conn, std::string conninfo, std::size_t copy_streams,
            std::size_t flush_bytes, std::string maintenance_work_mem,
            SideSplit split = SideSplit::when_wal_minimal);
  ~SideTable();
  SideTable(const SideTable&) = delete;
  SideTable& operator=(const SideTable&) = delete;

  /// Before the export's first message is staged: makes this a side-table load. Takes the
  /// lock that marks the side table as in use, creates it with skype.messages' columns
  /// (defaults, generated column, comments), no indexes, and a check that every row is the
  /// account's (so that attaching it needs no scan), and starts the streams. No lock on
  /// skype.messages meanwhile: readers and other accounts' loads go on. False (nothing
  /// done) when skype.messages has an index this cannot copy. `first_load`: the account
  /// has no partition, so the table may be split (SideSplit).
  bool start(AccountPartition& partition, const std::string& account_id, bool first_load);
  /// Whether this export is a side-table load.
  bool active() const noexcept { return m_active; }
  /// "skype_load.<name>" while the table exists (until attached or dropped).
  const std::string& table() const noexcept { return m_table; }
  /// The tables it is split into (hash partitions of message_id, one per stream); 1 when
  /// it is not split.
  std::size_t parts() const noexcept { return m_parts; }

  /// Hands `rows` (side rows, COPY binary format) to the streams, those of part `part`
  /// (StagingWriter routes them) to its stream; `rows` comes back empty.
  void send_rows(std::size_t part, CopyBuffer& rows);
  /// Before the COPYs end: sends the held membership rows that are no repeats (their text
  /// written by now) to the streams, read back from stage_membership_rows in COPY's binary
  /// format, row by row (memory stays flat). Returns the rows sent.
  std::uint64_t forward_membership_rows(const std::string& account_id,
                                        const std::string& export_id);
  /// Ends the COPYs: they commit once their backends have stored every row.
  void finish_copies();

  /// What rewrite_or_merge found.
  struct Decision {
    SideOutcome outcome = SideOutcome::attached;
    std::uint64_t new_rows = 0;  // rewritten: ids of the side table not stored yet
    std::uint64_t won_rows = 0;  // rewritten: stored rows the side table's replace
    std::uint64_t distinct = 0;  // rewritten: the export's distinct ids
  };
  /// After finish_copies, under the account's lock, `existing` being its partition ("":
  /// none): attached when there is none; rewritten when it is the account's own (`own`) and
  /// the side table brings as many new messages as half the stored ones, in which case the
  /// side table gets the stored rows it does not replace (on the streams); else merged.
  /// Never rewritten when split (a split table is a first load's: `existing` appeared
  /// meanwhile).
  /// `side_rows`: rows of the side table; `repeats`: repeated messages staged apart.
  Decision rewrite_or_merge(const std::string& existing, const std::string& own,
                            std::uint64_t side_rows, std::uint64_t repeats, LoadSteps& steps);
  /// Builds the indexes of the plan on the streams' connections at once, then analyzes the
  /// table on one of them while `meanwhile` runs on the loader's connection (it must end
  /// before the ATTACH, whose lock it conflicts with). Each index's seconds go into
  /// `stream_seconds["index_build_each"]`, the analysis' into `stream_seconds["analyze"]`.
  void build_indexes_and_analyze(LoadSteps& steps, nlohmann::json& stream_seconds,
                                 const std::function<void()>& meanwhile);
  /// Closes the streams' connections.
  void close_streams() noexcept { m_streams.reset(); }
  /// The repeated ids (in stage_messages) that have no row in the side table: a side load's
  /// distinct ids are its side rows and these (0 without `repeats`).
  std::uint64_t repeated_ids_not_in_table(std::uint64_t repeats);
  /// Inside the export's transaction, under the account's lock: makes the indexed side
  /// table the account's partition of skype.messages, its indexes named like those of a
  /// partition created by a staged load (a split table's parts: <partition>_p0, ...,
  /// their indexes named after them, and the partitioned indexes above theirs after the
  /// partition). Returns false, changing nothing, when the account
  /// has a partition already (another load created one since begin_export).
  bool attach(AccountPartition& partition);

  /// Stops the streams at once (the export is being aborted). Never throws.
  void cancel() noexcept;
  /// After the export's COMMIT or ROLLBACK: drops the side table unless it became a
  /// partition (a rollback returns it to skype_load), then releases its lock. Leaves it to
  /// drop_orphans when the connection is gone.
  void end() noexcept;
  /// Forgets the export (after end()).
  void reset();
  /// Drops the side tables of loads that ended without dropping them (killed, or their
  /// connection lost): those whose lock nobody holds.
  void drop_orphans();

  /// NUL bytes and \u0000 escapes removed from the rows sent.
  std::uint64_t nul_bytes_removed() const noexcept { return m_nul_bytes_removed; }
  std::uint64_t json_nul_escapes_replaced() const noexcept { return m_json_nul_escapes_replaced; }

 private:
  PgConnection& m_conn;
  std::string m_conninfo;
  std::size_t m_copy_streams;
  std::string m_maintenance_work_mem;
  std::size_t m_flush_bytes;
  bool m_active = false;
  std::string m_table;  // "skype_load.<m_name>" while it exists
  std::string m_name;
  bool m_locked = false;  // this session holds the side table's advisory lock
  std::unique_ptr<ParallelCopy> m_streams;
  std::uint64_t m_nul_bytes_removed = 0;
  std::uint64_t m_json_nul_escapes_replaced = 0;
  std::string m_check;  // its constraint that all rows are the account's
  SideSplit m_split;
  std::size_t m_parts = 1;              // tables it is split into (1: not split)
  IndexPlan m_plan;                     // of the table, or, when split, of the partitioned one
  std::vector<IndexPlan> m_part_plans;  // split: of each part, built on the streams; else none

  bool plan(AccountPartition& partition);
  bool want_split(PgConnection& creator, bool first_load) const;
  bool hash_routing_agrees(PgConnection& creator);
};

}  // namespace skype_etl::detail
