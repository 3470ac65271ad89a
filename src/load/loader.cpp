#include "load/loader.hpp"

#include <optional>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "core/clock.hpp"
#include "core/identity.hpp"
#include "load/copy_writer.hpp"
#include "load/membership_text.hpp"
#include "load/merge.hpp"
#include "load/partitions.hpp"
#include "load/pg_connection.hpp"
#include "load/repeat_tracker.hpp"
#include "load/schema.hpp"
#include "load/server_settings.hpp"
#include "load/side_table.hpp"
#include "load/staging_writer.hpp"
#include "skype_etl/errors.hpp"
#include "transform/timestamps.hpp"

namespace skype_etl::detail {

struct Loader::Impl {
  Impl(const DbConfig& db, LoaderOptions loader_options)
      : options(std::move(loader_options)),
        conninfo(db.conninfo),
        conn(db.conninfo),
        maintenance_work_mem(index_build_memory(conn, options.maintenance_work_mem)),
        staging(conn, options.copy_flush_bytes),
        partition(conn),
        side(conn, conninfo, options.copy_streams, options.copy_flush_bytes, maintenance_work_mem,
             options.side_split) {
    steps.set_observer(options.on_step);
    conn.exec(loader_session_sql);
    // Staging lives in temporary tables: let the session cache more of them in memory
    // (must be set before the session's first use of a temporary table).
    conn.exec("SET temp_buffers = '64MB'");
  }

  /// What finish_export has done so far.
  struct Merge {
    SideOutcome outcome = SideOutcome::none;
    // The table that holds the account's messages for the merge's statements: its
    // partition, or, while a partition is rewritten, the side table that will replace it.
    std::string target;
    std::string replaced_partition;  // rewritten: the partition the side table replaces
    std::uint64_t side_rows = 0;     // rows in the side table before the merge
    std::uint64_t distinct = 0;      // the export's distinct (conversation, message) ids
    std::uint64_t inserted = 0;
    std::uint64_t updated = 0;
    std::uint64_t attachments = 0;
    std::uint64_t membership_texts = 0;
    ConversationCounts conversations;
    bool conversations_done = false;
    // What ran on the streams' connections, reported besides the steps' seconds.
    nlohmann::json stream_seconds = nlohmann::json::object();
    /// The side table became the account's partition (attached, or replacing it).
    bool partition_rebuilt() const {
      return outcome == SideOutcome::attached || outcome == SideOutcome::rewritten;
    }
  };

  LoaderOptions options;
  std::string conninfo;
  PgConnection conn;
  // Of the index builds: the server's own when larger (never lowered).
  std::string maintenance_work_mem;
  bool schema_checked = false;
  bool digest_checked = false;  // begin_export could check the digest

  // The current export (valid between begin_export and finish/abort).
  bool in_export = false;
  LoadSteps steps;                 // of the current export
  MergedExport x;                  // its account, id, date, owner
  std::int64_t export_number = 0;  // x.export_id as a number
  ExportInfo info;
  std::string export_extra;  // the top-level object's unknown keys (Batch::export_extra_json)
  std::uint64_t batches = 0;

  StagingWriter staging;
  RepeatTracker repeats;
  // skype.messages has a partition per account, named partition.name() when this loader
  // creates it.
  AccountPartition partition;
  // A side-table load (a large export of an account without a partition, or one that
  // brings its partition many new messages): see side_table.hpp.
  SideTable side;
  bool side_undecided = false;  // whether to make this a side-table load: the first batch tells

  void reset_export() {
    in_export = false;
    steps.clear();
    staging.reset();
    repeats.clear();
    side.reset();
    side_undecided = false;
    export_extra.clear();
    batches = 0;
  }

  /// `first_load`: the account has no partition yet.
  void start_side_load(bool first_load) {
    if (side.start(partition, x.account_id, first_load))
      staging.route_first_occurrences_to_side(side.parts());
  }

  /// A large export of an account without a partition is a side-table load; of one with
  /// a partition of its own not much larger than the file, if its first batch is mostly
  /// new messages. Decided without locks: finish_export looks again under the account's
  /// lock.
  void choose_side_load(std::uint64_t file_size) {
    if (file_size < options.side_load_min_file_bytes || options.copy_streams == 0 ||
        !side_load_allowed(conn))
      return;
    const std::string existing = partition.find();
    if (existing.empty())
      start_side_load(true);
    else if (side_load_may_pay(conn, existing, partition.own(), file_size))
      side_undecided = true;  // the first batch tells
  }

  /// Takes the digest's lock for the rest of the transaction (two processes loading the
  /// same file serialise here; the second then finds the first's row) and tells whether
  /// the export is in skype.exports.
  bool digest_loaded(const std::string& digest) {
    conn.exec_params("SELECT pg_advisory_xact_lock(hashtextextended('skype-etl export ' || $1, 0))",
                     std::vector<std::string>{digest});
    return conn.exec_params("SELECT export_id FROM skype.exports WHERE file_digest = $1",
                            std::vector<std::string>{digest})
               .rows() > 0;
  }

  /// The digest, unknown at begin_export: whether another run loaded the same file meanwhile.
  bool loaded_meanwhile() {
    steps.begin("digest");  // waits for the hash of the file, then for its lock
    staging.end_copy();
    return digest_loaded(info.digest.get());
  }

  /// Merges of one account serialise (overlapping exports would otherwise deadlock on each
  /// other's rows, and two would create its partition); merges of different accounts run
  /// concurrently. Every loader takes its locks in one order: the digest's, the account's,
  /// then (attaching a partition) skype.messages' SHARE UPDATE EXCLUSIVE.
  void lock_account() {
    steps.begin("lock");  // waits for other loads of the account
    conn.exec_params(
        "SELECT pg_advisory_xact_lock(hashtextextended('skype-etl account ' || $1, 0))",
        std::vector<std::string>{x.account_id});
  }

  /// What is still buffered goes to the staging tables.
  void send_remaining_rows() {
    steps.begin("copy_rest");
    repeats.finish_conversation();
    staging.stage_rest();
  }

  /// The merge's session settings, and the membership events' text.
  void prepare_merge(Merge& m) {
    conn.exec("SET LOCAL work_mem = '128MB'");
    conn.exec("SET LOCAL maintenance_work_mem = '" + maintenance_work_mem + "'");
    // No ANALYZE of the staging tables: it samples wide rows for a long while, and every
    // plan below is a sequential scan of them anyway.

    // Membership events: their text names people as the merge will (every batch's names
    // are staged now), and they join the others: into stage_messages, but for a side load's
    // first occurrences, which go to its table (settle_side_table) before its indexes are
    // built, where writing them costs less than after.
    if (staging.membership_held() == 0) return;
    steps.begin("membership_text");
    m.membership_texts = describe_membership_rows(conn, x.account_id, x.owner_display_name);
    conn.exec(std::string("INSERT INTO stage_messages (") + staged_columns + ") " +
              held_rows_select + held_rows_from + (side.active() ? " WHERE r.is_repeat" : ""));
  }

  /// A side load: its COPYs end, then, under the account's lock, it becomes the account's
  /// partition (attached), replaces it (rewritten) or is left to be merged (merged).
  void settle_side_table(Merge& m) {
    steps.begin("copy_wait");
    for (std::size_t part = 0; part < staging.side_rows().size(); ++part)
      side.send_rows(part, staging.side_rows()[part]);
    m.side_rows = staging.side_row_count();
    if (staging.membership_held() > 0)
      m.side_rows += side.forward_membership_rows(x.account_id, x.export_id);
    side.finish_copies();
    lock_account();
    // Under the account's lock: its partition cannot change until the commit.
    const std::string existing = partition.find();
    const SideTable::Decision d =
        side.rewrite_or_merge(existing, partition.own(), m.side_rows, repeats.repeats(), steps);
    m.outcome = d.outcome;
    if (m.outcome == SideOutcome::rewritten) {
      m.replaced_partition = existing;
      m.distinct = d.distinct;
      m.inserted = d.new_rows;
      m.updated = d.won_rows;
    }
    if (m.outcome != SideOutcome::merged)
      // The account, its conversations and their participants need nothing of the
      // messages: written meanwhile.
      side.build_indexes_and_analyze(steps, m.stream_seconds, [&] { merge_conversations(m); });
    if (m.outcome == SideOutcome::attached) steps.begin("attach");
    side.close_streams();
    if (m.outcome == SideOutcome::attached && !side.attach(partition))
      m.outcome = SideOutcome::merged;
    if (m.outcome == SideOutcome::attached) m.target = partition.own();
    if (m.outcome == SideOutcome::rewritten) m.target = side.table();
  }

  /// The repeats of a side table that became the partition.
  void merge_side_repeats(Merge& m) {
    steps.begin("repeats");
    std::uint64_t inserted = 0;
    if (repeats.repeats() > 0) {
      const auto merged = merge_repeats(conn, x, m.target, m.outcome != SideOutcome::attached);
      inserted = merged.first;
      m.updated += merged.second;
    }
    if (m.outcome == SideOutcome::attached) {
      m.distinct = m.side_rows + inserted;
      m.inserted = m.distinct;
    } else {
      m.inserted += inserted;
    }
  }

  /// The messages of a staged load, or of a side table merged into the partition.
  void merge_into_partition(Merge& m) {
    steps.begin("prepare");
    m.target = partition.ensure();
    if (m.target.empty())
      throw DatabaseError("no partition of skype.messages takes account '" + x.account_id +
                          "', and skype-etl could not create one (is a table named skype." +
                          partition.name() + " in the way?)");
    if (m.outcome == SideOutcome::merged) {
      // Another load gave the account a partition meanwhile, or its partition holds more
      // than the export adds. The side table's rows (each id's first occurrence) are
      // merged straight from it, then the repeats: what a staged load's DISTINCT ON
      // would keep, without copying the side table into stage_messages.
      m.distinct = m.side_rows + side.repeated_ids_not_in_table(repeats.repeats());
      steps.begin("messages");
      std::tie(m.inserted, m.updated) =
          merge_messages(conn, x, repeats.repeats() > 0, false, m.target, side.table());
      steps.begin("repeats");
      if (repeats.repeats() > 0) {
        const auto merged = merge_repeats(conn, x, m.target, true);
        m.inserted += merged.first;
        m.updated += merged.second;
      }
      return;
    }
    m.distinct = staging.messages();
    // Distinct (conversation, message) pairs, for the superseded count.
    if (repeats.repeats() > 0) m.distinct = count_distinct_staged_ids(conn);
    steps.begin("messages");
    std::tie(m.inserted, m.updated) =
        merge_messages(conn, x, repeats.repeats() > 0, false, m.target);
  }

  /// The statements below join the account's partition: when this export changed a good
  /// part of it, its statistics (perhaps taken while it was empty) mislead the planner
  /// into nested loops over the whole table. An attached or rewritten side table was
  /// analyzed after its builds (one whose ATTACH failed was analyzed in vain: its rows
  /// went to another partition).
  void analyze_if_stale(const Merge& m) {
    if (m.partition_rebuilt() || !partition.statistics_stale(m.target, m.inserted + m.updated))
      return;
    steps.begin("analyze");
    conn.exec("ANALYZE " + m.target);
  }

  /// The same for the tables beside skype.messages: a first load fills them from empty, and
  /// without statistics the planner reads skype.attachments whole for each conversation a
  /// query joins it with (`skype-etl export` of the 1M benchmark: 5.8 s against 3.4 s once
  /// analyzed), until autovacuum gets to it. Rows of this transaction count (ANALYZE sees them).
  void analyze_other_tables_if_stale(const Merge& m) {
    const std::pair<const char*, std::uint64_t> tables[] = {
        {"skype.attachments", m.attachments},
        {"skype.conversations", m.conversations.conversations},
        {"skype.participants", m.conversations.participants}};
    for (const auto& [table, changed] : tables) {
      if (!partition.statistics_stale(table, changed)) continue;
      steps.begin("analyze_tables");
      conn.exec(std::string("ANALYZE ") + table);
    }
  }

  void merge_attachments_of(Merge& m) {
    steps.begin("attachments");
    m.attachments = merge_attachments(conn, x, m.target, m.updated > 0, staging.attachments() > 0,
                                      m.outcome == SideOutcome::attached);
  }

  void merge_conversations(Merge& m) {
    steps.begin("conversations");
    m.conversations = detail::merge_conversations(conn, x);
    m.conversations_done = true;
  }

  void update_derived(const Merge& m) {
    steps.begin("derived");
    update_derived_columns(conn, x, m.target, m.partition_rebuilt());
  }

  /// The rewritten side table replaces the account's partition. Readers of skype.messages
  /// wait from here to the commit (DETACH locks it), a few milliseconds.
  void swap_partition(const Merge& m) {
    steps.begin("swap");
    conn.exec("ALTER TABLE skype.messages DETACH PARTITION " + m.replaced_partition);
    conn.exec("DROP TABLE " + m.replaced_partition);
    if (!side.attach(partition))
      throw DatabaseError("could not attach the rewritten messages of account '" + x.account_id +
                          "' as skype." + partition.name());
  }

  /// What finish_export returns (and, but for the commit's timing, stores).
  nlohmann::json outcome(const Merge& m, std::int64_t merge_start_us) const {
    return {
        {"status", "loaded"},
        {"export_id", std::stoll(x.export_id)},
        {"account_id", x.account_id},
        {"messages", m.distinct},
        {"messages_staged", staging.messages()},
        {"inserted", m.inserted},
        {"updated", m.updated},
        {"unchanged", m.distinct - m.inserted - m.updated},
        {"superseded", staging.messages() - m.distinct},
        {"conversations", staging.conversations()},
        {"conversations_updated", m.conversations.conversations},
        {"participants", m.conversations.participants},
        {"attachments", m.attachments},
        {"membership_texts", m.membership_texts},
        {"batches", batches},
        {"index_rebuild", m.partition_rebuilt()},
        {"side_table", side.active()
                           ? nlohmann::json{{"streams", options.copy_streams},
                                            {"parts", side.parts()},
                                            {"attached", m.partition_rebuilt()},
                                            {"rewritten", m.outcome == SideOutcome::rewritten},
                                            {"partition", partition.name()},
                                            {"repeats", repeats.repeats()}}
                           : nlohmann::json(nullptr)},
        {"merge_seconds", merge_seconds(m, merge_start_us)},
        {"steps", steps.to_json()},
        {"nul_bytes_removed", staging.nul_bytes_removed() + side.nul_bytes_removed()},
        {"json_nul_escapes_replaced",
         staging.json_nul_escapes_replaced() + side.json_nul_escapes_replaced()},
    };
  }

  /// Seconds per step of the merge (those that began at merge_start_us), and the streams'.
  nlohmann::json merge_seconds(const Merge& m, std::int64_t merge_start_us) const {
    nlohmann::json seconds = steps.seconds_since(merge_start_us);
    seconds.update(m.stream_seconds);
    return seconds;
  }

  /// Writes the export's row with its statistics and commits.
  nlohmann::json commit(const Merge& m, std::int64_t merge_start_us,
                        const StatisticsOf& statistics_of) {
    // The statistics stored are taken before the commit: its step is still running there.
    steps.begin("commit");
    nlohmann::json result = outcome(m, merge_start_us);
    insert_export_row(conn, x, info, statistics_of(result), export_extra);
    conn.exec("COMMIT");
    side.end();
    steps.end();
    result["merge_seconds"] = merge_seconds(m, merge_start_us);
    result["steps"] = steps.to_json();
    return result;
  }
};

Loader::Loader(const DbConfig& db, LoaderOptions options)
    : m_impl(std::make_unique<Impl>(db, std::move(options))) {}

Loader::~Loader() {
  if (m_impl && m_impl->in_export) abort_export();
}

void Loader::ensure_schema() {
  detail::ensure_schema(m_impl->conn);
  m_impl->side.drop_orphans();
  m_impl->schema_checked = true;
}

BeginResult Loader::begin_export(const ExportInfo& info, const std::string& owner_display_name) {
  Impl& s = *m_impl;
  if (s.in_export) throw std::logic_error("Loader::begin_export: an export is already open");
  if (!s.schema_checked) ensure_schema();
  s.reset_export();
  s.in_export = true;
  s.steps.begin("begin");
  try {
    s.x.account_id = canonical_person_id(info.user_id);
    s.partition.set_account(s.x.account_id);
    s.choose_side_load(info.file_size);
    s.conn.exec("BEGIN");
    // The digest is usually still being computed beside the reading: then the check
    // happens in finish_export, before anything is merged.
    s.digest_checked = info.digest.ready();
    if (s.digest_checked && s.digest_loaded(info.digest.get())) {
      abort_export();
      return BeginResult::already_loaded;
    }
    PgResult next_id =
        s.conn.exec("SELECT nextval(pg_get_serial_sequence('skype.exports', 'export_id'))");
    s.x.export_id = std::string(next_id.text(0, 0));
    s.export_number = next_id.integer(0, 0);
    s.staging.set_export(s.x.account_id, s.export_number);
    s.staging.create_tables();
  } catch (...) {
    abort_export();
    throw;
  }
  s.info = info;
  s.x.owner_display_name = owner_display_name;
  s.x.user_id = info.user_id;
  const std::optional<std::int64_t> date_us = parse_export_date_us(info.export_date);
  s.x.export_date = date_us ? format_timestamp_us(*date_us) : std::string();
  s.steps.begin("copy");  // the export's batches, as they come
  return BeginResult::started;
}

void Loader::load_batch(const Batch& batch) {
  Impl& s = *m_impl;
  if (!s.in_export) throw std::logic_error("Loader::load_batch: no export is open");
  try {
    if (s.side_undecided) {
      s.side_undecided = false;
      if (batch_mostly_new(s.conn, s.partition.find(), batch)) s.start_side_load(false);
    }
    s.staging.stage_batch(batch, s.repeats, [&s](std::size_t part, CopyBuffer& rows) {
      s.side.send_rows(part, rows);
    });
    if (!batch.export_extra_json.empty()) s.export_extra = batch.export_extra_json;
    ++s.batches;
  } catch (...) {
    abort_export();
    throw;
  }
}

nlohmann::json Loader::finish_export(const nlohmann::json& statistics) {
  return finish_export_with([&statistics](const nlohmann::json&) { return statistics; });
}

nlohmann::json Loader::finish_export_with(const StatisticsOf& statistics_of) {
  Impl& s = *m_impl;
  if (!s.in_export) throw std::logic_error("Loader::finish_export: no export is open");
  nlohmann::json result;
  try {
    // The steps of the merge are those that begin from here (merge_seconds).
    const std::int64_t merge_start_us = now_us();
    if (!s.digest_checked && s.loaded_meanwhile()) {
      // Another run loaded the same file meanwhile: keep the database as it is.
      abort_export();
      return nlohmann::json{{"already_loaded", true}};
    }
    s.send_remaining_rows();
    Impl::Merge m;
    s.prepare_merge(m);
    if (s.side.active())
      s.settle_side_table(m);
    else
      s.lock_account();
    if (m.partition_rebuilt())
      s.merge_side_repeats(m);
    else
      s.merge_into_partition(m);
    s.analyze_if_stale(m);
    s.merge_attachments_of(m);
    if (!m.conversations_done) s.merge_conversations(m);
    s.update_derived(m);
    s.analyze_other_tables_if_stale(m);
    if (m.outcome == SideOutcome::rewritten) s.swap_partition(m);
    result = s.commit(m, merge_start_us, statistics_of);
  } catch (...) {
    abort_export();
    throw;
  }
  s.reset_export();
  return result;
}

void Loader::abort_export() noexcept {
  Impl& s = *m_impl;
  if (!s.in_export) return;
  s.side.cancel();
  try {
    if (s.conn.in_copy()) s.conn.cancel_copy();
    s.staging.forget_copy();
    s.conn.rollback();
  } catch (...) {
  }
  s.side.end();
  try {
    s.reset_export();
  } catch (...) {
  }
  s.in_export = false;
}

}  // namespace skype_etl::detail
