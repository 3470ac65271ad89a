#include "load/side_table.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "load/merge.hpp"
#include "load/partition_hash.hpp"
#include "load/pg_connection.hpp"
#include "load/staging_writer.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail {
namespace {

// The columns of a side table's rows: a message row as staged (source_position is the
// staging table's seq), then the two the merge would add.
constexpr const char* side_columns =
    "source_position, conversation_id, message_id, version, sent_at, sender_id, sender_raw, "
    "sender_name, message_type, content_raw, content_text, is_edited, edited_at, is_deleted, "
    "deleted_at, is_server_generated, properties, details, extra, account_id, export_id";

/// The advisory lock a loader holds while its side table exists: its absence tells
/// drop_orphans that the table is an orphan.
std::string side_lock_sql(const char* function) {
  return std::string("SELECT ") + function + "(hashtextextended('skype-etl load table ' || $1, 0))";
}

/// The name of part `k` of a split table named `table` (schema-qualified or not), and the
/// prefix of the indexes built on it: the table's name, "_p", the part's remainder.
std::string part_name(const std::string& table, std::size_t k) {
  return table + "_p" + std::to_string(k);
}

}  // namespace

bool side_load_allowed(PgConnection& conn) {
  return conn.exec(
                 "SELECT NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = "
                 "'skype.messages'::regclass AND NOT tgisinternal) AND NOT EXISTS (SELECT 1 "
                 "FROM pg_publication WHERE puballtables) AND NOT EXISTS (SELECT 1 FROM "
                 "pg_publication_rel WHERE prrelid = 'skype.messages'::regclass)")
             .text(0, 0) == "t";
}

bool side_load_may_pay(PgConnection& conn, const std::string& existing, const std::string& own,
                       std::uint64_t file_size) {
  if (existing != own) return false;  // shared with other accounts
  return static_cast<std::uint64_t>(
             conn.exec_params(std::string(leaf_tables_cte) +
                                  "SELECT coalesce(sum(pg_relation_size(relid)), 0) FROM leaves",
                              std::vector<std::string>{existing})
                 .integer(0, 0)) <= 2 * file_size;
}

bool batch_mostly_new(PgConnection& conn, const std::string& partition, const Batch& batch) {
  auto array_element = [](std::string& out, std::string_view text) {
    out += out.empty() ? "{\"" : ",\"";
    for (char ch : text) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  };
  std::string conversations, messages;
  const std::size_t step = std::max<std::size_t>(1, batch.messages.size() / 256);
  for (const ConversationChunk& chunk : batch.chunks)
    for (std::size_t i = chunk.first_message; i < chunk.first_message + chunk.message_count; ++i)
      if (i % step == 0 && chunk.conversation) {
        array_element(conversations, chunk.conversation->id);
        array_element(messages, batch.messages[i].message_id);
      }
  if (messages.empty() || partition.empty()) return partition.empty();
  conversations += '}';
  messages += '}';
  PgResult r = conn.exec_params(
      "SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM " + partition +
          " o WHERE o.conversation_id = k.c AND o.message_id = k.m)), count(*) FROM "
          "unnest($1::text[], $2::text[]) AS k(c, m)",
      std::vector<std::string>{conversations, messages});
  return r.integer(0, 0) * 2 >= r.integer(0, 1);
}

SideTable::SideTable(PgConnection& conn, std::string conninfo, std::size_t copy_streams,
                     std::size_t flush_bytes, std::string maintenance_work_mem, SideSplit split)
    : m_conn(conn),
      m_conninfo(std::move(conninfo)),
      m_copy_streams(copy_streams),
      m_maintenance_work_mem(std::move(maintenance_work_mem)),
      m_flush_bytes(flush_bytes),
      m_split(split) {}

SideTable::~SideTable() = default;

bool SideTable::want_split(PgConnection& creator, bool first_load) const {
  if (!first_load || m_copy_streams < 2 || m_split == SideSplit::never) return false;
  return m_split == SideSplit::always || creator.exec("SHOW wal_level").text(0, 0) == "minimal";
}

bool SideTable::hash_routing_agrees(PgConnection& creator) {
  // The streams' rows are routed here (text_hash_partition); the server checks each row
  // against its part's bounds. Some ids, short and long, ASCII and not, must land where
  // the server would put them (a collation of message_id that is not deterministic, or
  // another hash function, would not), or the table is not split.
  const std::vector<std::string> probes{"",
                                        "1",
                                        "1600000000000",
                                        "abcdefghijk",
                                        "0123456789abcdef0123456789",
                                        "\xc3\xa9t\xc3\xa9 \xe2\x82\xac",
                                        "Message-ID-With-Capitals"};
  for (const std::string& probe : probes)
    for (std::size_t k = 0; k < m_parts; ++k) {
      const bool server =
          creator
              .exec_params(
                  "SELECT satisfies_hash_partition($1::regclass, $2::int, $3::int, $4::text)",
                  std::vector<std::string>{m_table, std::to_string(m_parts), std::to_string(k),
                                           probe})
              .text(0, 0) == "t";
      if (server != (text_hash_partition(probe, m_parts) == k)) return false;
    }
  return true;
}

bool SideTable::start(AccountPartition& partition, const std::string& account_id, bool first_load) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  m_name = "messages_" + std::to_string(m_conn.backend_pid()) + "_" +
           std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
  m_table = "skype_load." + m_name;
  m_check = m_name + "_account";
  // Created and committed on a connection of its own (this one may be in the export's
  // transaction already), so that the streams' connections see it.
  PgConnection creator(m_conninfo);
  creator.exec(loader_session_sql);
  m_parts = want_split(creator, first_load) ? m_copy_streams : 1;
  if (!plan(partition)) {
    m_table.clear();
    return false;
  }
  m_conn.exec_params(side_lock_sql("pg_advisory_lock"), std::vector<std::string>{m_table});
  m_locked = true;
  // No autovacuum meanwhile: after the COPYs it would want to vacuum and analyze the
  // new rows, competing with the index builds for the cores or being cancelled by them.
  auto create = [&](const std::string& tail) {
    creator.exec(std::string(
        m_conn
            .exec_params("SELECT format('CREATE TABLE %s (LIKE skype.messages INCLUDING ALL "
                         "EXCLUDING INDEXES, CONSTRAINT %I CHECK (account_id = %L)) ' || $4, "
                         "$1::text, $2::text, $3::text)",
                         std::vector<std::string>{m_table, m_check, account_id, tail})
            .text(0, 0)));
  };
  if (m_parts > 1) {
    create("PARTITION BY HASH (message_id)");
    for (std::size_t k = 0; k < m_parts; ++k)
      creator.exec("CREATE TABLE " + part_name(m_table, k) + " PARTITION OF " + m_table +
                   " FOR VALUES WITH (MODULUS " + std::to_string(m_parts) + ", REMAINDER " +
                   std::to_string(k) + ") WITH (autovacuum_enabled = false)");
    if (!hash_routing_agrees(creator)) {
      spdlog::info(
          "the server puts message ids in hash partitions otherwise than skype-etl computes "
          "(a nondeterministic collation of skype.messages.message_id?): the side table is not "
          "split, and its rows are written to the WAL");
      creator.exec("DROP TABLE " + m_table);
      m_parts = 1;
      plan(partition);
    }
  }
  if (m_parts == 1) create("WITH (autovacuum_enabled = false)");
  const std::string session =
      std::string(loader_session_sql) + "; SET maintenance_work_mem = '" + m_maintenance_work_mem +
      "'; SET work_mem = '128MB'" +
      // Several connections build the indexes side by side, each keeping a core busy:
      // parallel workers only compete with the other builds for the cores
      // (benchmarks/README.md, "max_parallel_maintenance_workers = 0 on the stream
      // connections").
      (m_copy_streams > 1 ? "; SET max_parallel_maintenance_workers = 0" : "");
  const std::string columns = std::string(" (") + side_columns + ") FROM STDIN (FORMAT binary)";
  if (m_parts == 1) {
    m_streams = std::make_unique<ParallelCopy>(m_conninfo, m_copy_streams, session,
                                               "COPY " + m_table + columns);
  } else {
    // Each stream fills its part in the transaction that empties it: with wal_level=minimal
    // a table emptied (or created) in the same transaction skips WAL (benchmarks/README.md,
    // "the side table's rows without WAL"). TRUNCATE locks the part only, not the table.
    std::vector<CopyTarget> targets;
    for (std::size_t k = 0; k < m_parts; ++k)
      targets.push_back(
          {"TRUNCATE " + part_name(m_table, k), "COPY " + part_name(m_table, k) + columns});
    m_streams = std::make_unique<ParallelCopy>(m_conninfo, session, targets);
  }
  m_active = true;
  return true;
}

bool SideTable::plan(AccountPartition& partition) {
  m_part_plans.clear();
  if (m_parts == 1) return partition.plan_indexes(m_table, m_name, m_plan);
  // The parts get the indexes (on the streams); the partitioned table, once renamed into
  // schema skype in attach(), gets indexes above theirs.
  m_part_plans.resize(m_parts);
  for (std::size_t k = 0; k < m_parts; ++k)
    if (!partition.plan_indexes(part_name(m_table, k), part_name(m_name, k), m_part_plans[k],
                                part_name(partition.name(), k)))
      return false;
  return partition.plan_indexes(partition.own(), "", m_plan, {}, true);
}

void SideTable::send_rows(std::size_t part, CopyBuffer& rows) {
  if (rows.empty()) return;
  // The buffer that comes back is another, with counters at zero.
  m_nul_bytes_removed += rows.nul_bytes_removed();
  m_json_nul_escapes_replaced += rows.json_nul_escapes_replaced();
  if (m_parts > 1)
    m_streams->send_to(part, rows);
  else
    m_streams->send(rows);
}

std::uint64_t SideTable::forward_membership_rows(const std::string& account_id,
                                                 const std::string& export_id) {
  // The side table's columns, in side_columns' order and types.
  const std::string sql = "COPY (" + std::string(held_rows_select) + ", " +
                          m_conn.quote_literal(account_id) + "::text, " + export_id + "::bigint" +
                          held_rows_from +
                          " WHERE NOT r.is_repeat) TO STDOUT "
                          "(FORMAT binary)";
  const std::string_view header = binary_copy_header();
  const std::string_view trailer = binary_copy_trailer();
  std::vector<CopyBuffer> rows;
  for (std::size_t part = 0; part < m_parts; ++part) rows.emplace_back(CopyFormat::binary);
  std::uint64_t sent = 0;
  bool first = true;
  m_conn.copy_out(sql, [&](std::string_view data) {
    if (first) {
      first = false;
      if (data.substr(0, header.size()) != header)
        throw DatabaseError("COPY TO STDOUT of membership rows did not begin with its header");
      data.remove_prefix(header.size());
    }
    if (data.empty() || data == trailer) return;
    // side_columns: message_id is the third.
    const std::size_t part =
        m_parts > 1 ? text_hash_partition(binary_row_field(data, 2), m_parts) : 0;
    rows[part].append_rows(data, 1);
    ++sent;
    if (rows[part].size() >= m_flush_bytes) send_rows(part, rows[part]);
  });
  for (std::size_t part = 0; part < m_parts; ++part) send_rows(part, rows[part]);
  return sent;
}

void SideTable::finish_copies() {
  m_streams->finish();
}

SideTable::Decision SideTable::rewrite_or_merge(const std::string& existing, const std::string& own,
                                                std::uint64_t side_rows, std::uint64_t repeats,
                                                LoadSteps& steps) {
  Decision d;
  d.outcome = existing.empty() ? SideOutcome::attached : SideOutcome::merged;
  // What this session reads of the side table before its indexes are built is read
  // in a savepoint that is rolled back: that releases its lock on the table, so that
  // nothing the streams' connections run on it waits for this session (an ADD
  // CONSTRAINT among the builds once did, until the commit: a deadlock).
  m_conn.exec("SAVEPOINT skype_etl_side_read");
  std::uint64_t stored = 0;
  if (existing == own && m_parts == 1) {
    steps.begin("rewrite_check");
    PgResult k = m_conn.exec(
        "SELECT count(*) FILTER (WHERE o.message_id IS NULL), count(*) FILTER (WHERE "
        "o.message_id IS NOT NULL AND " +
        replaces_sql("s", "o", false) + "), (SELECT count(*) FROM " + existing + ") FROM " +
        m_table + " s LEFT JOIN " + existing +
        " o ON o.conversation_id = s.conversation_id AND o.message_id = s.message_id");
    d.new_rows = static_cast<std::uint64_t>(k.integer(0, 0));
    d.won_rows = static_cast<std::uint64_t>(k.integer(0, 1));
    stored = static_cast<std::uint64_t>(k.integer(0, 2));
    // As many new messages as half the stored ones: rewriting all of them (on the
    // streams' connections) beats inserting the new ones through the indexes.
    if (d.new_rows * 2 >= stored) d.outcome = SideOutcome::rewritten;
  }
  if (d.outcome != SideOutcome::rewritten) {
    m_conn.exec("ROLLBACK TO SAVEPOINT skype_etl_side_read");
    return d;
  }
  steps.begin("rewrite");
  // The export's distinct ids: its rows in the side table, and the repeated ids that
  // have none there.
  d.distinct = side_rows + repeated_ids_not_in_table(repeats);
  m_conn.exec("ROLLBACK TO SAVEPOINT skype_etl_side_read");
  // The side table keeps its rows that replace their stored one, then gets the
  // stored rows it does not replace (each stream copies a share of the conversations).
  // (When no id is in both, neither needs a join.)
  const bool overlap = d.new_rows < side_rows;
  if (overlap)
    steps.add_streams("rewrite",
                      m_streams->run_statements({"DELETE FROM " + m_table + " s USING " + existing +
                                                 " o WHERE o.conversation_id = s.conversation_id "
                                                 "AND o.message_id = s.message_id AND NOT " +
                                                 replaces_sql("s", "o", false)}),
                      {"delete replaced rows"});
  std::vector<std::string> copies;
  const std::size_t shares = m_streams->streams();
  for (std::size_t k = 0; k < shares; ++k)
    copies.push_back(std::string("INSERT INTO ") + m_table + " (" + side_columns + ") SELECT " +
                     side_columns + " FROM " + existing +
                     " o WHERE (hashtext(o.conversation_id) & 2147483647) % " +
                     std::to_string(shares) + " = " + std::to_string(k) +
                     (overlap ? " AND NOT EXISTS (SELECT 1 FROM " + m_table +
                                    " s WHERE s.conversation_id = o.conversation_id AND "
                                    "s.message_id = o.message_id)"
                              : std::string()));
  steps.add_streams("rewrite", m_streams->run_statements(copies),
                    std::vector<std::string>(copies.size(), "copy stored rows"));
  return d;
}

void SideTable::build_indexes_and_analyze(LoadSteps& steps, nlohmann::json& stream_seconds,
                                          const std::function<void()>& meanwhile) {
  steps.begin("index_build");
  // Split: each index on each part in turn (the largest first, as planned).
  std::vector<std::string> statements = m_plan.build;
  std::vector<std::string> names = m_plan.parent_names;
  if (m_parts > 1) {
    statements.clear();
    names.clear();
    for (std::size_t i = 0; i < m_plan.parent_names.size(); ++i)
      for (std::size_t k = 0; k < m_parts; ++k) {
        statements.push_back(m_part_plans[k].build[i]);
        names.push_back(m_part_plans[k].parent_names[i] + "/p" + std::to_string(k));
      }
  }
  const std::vector<StatementTiming> builds = m_streams->run_statements(statements);
  steps.add_streams("index_build", builds, names);
  for (std::size_t i = 0; i < builds.size(); ++i)
    stream_seconds["index_build_each"][names[i]] = builds[i].seconds();
  // Statistics for the merge's plans, taken on a stream's connection. The repeats merged
  // later change a few rows at most. A split table's parts side by side: ANALYZE of the
  // partitioned table would sample each part twice (for it and for the part), one after the
  // other, and queries through skype.messages never use its own statistics.
  std::vector<std::string> analyses{"ANALYZE " + m_table};
  if (m_parts > 1) {
    analyses.clear();
    for (std::size_t k = 0; k < m_parts; ++k)
      analyses.push_back("ANALYZE " + part_name(m_table, k));
  }
  auto analysis =
      std::async(std::launch::async, [&] { return m_streams->run_statements(analyses); });
  meanwhile();
  steps.begin("analyze_wait");
  const std::vector<StatementTiming> analyzed = analysis.get();
  steps.add_streams("analyze", analyzed);
  double analyze_seconds = 0;
  for (const StatementTiming& t : analyzed)
    analyze_seconds = std::max(analyze_seconds, t.seconds());
  stream_seconds["analyze"] = analyze_seconds;
}

std::uint64_t SideTable::repeated_ids_not_in_table(std::uint64_t repeats) {
  if (repeats == 0) return 0;
  return static_cast<std::uint64_t>(
      m_conn
          .exec("SELECT count(*) FROM (SELECT DISTINCT conversation_id, message_id FROM "
                "stage_messages) r WHERE NOT EXISTS (SELECT 1 FROM " +
                m_table +
                " s WHERE s.conversation_id = r.conversation_id AND s.message_id = "
                "r.message_id)")
          .integer(0, 0));
}

bool SideTable::attach(AccountPartition& partition) {
  if (!partition.find().empty()) return false;
  auto move_into_skype = [&](const std::string& table, const std::string& name) {
    m_conn.exec("ALTER TABLE " + table + " RENAME TO " + name);
    m_conn.exec("ALTER TABLE skype_load." + name + " SET SCHEMA skype");
  };
  if (!unless_taken(m_conn, "skype_etl_attach", [&] {
        // A split table's parts first (they stay in skype_load when it moves), with their
        // key constraints, which the partitioned table's own take over.
        for (std::size_t k = 0; k < m_part_plans.size(); ++k) {
          move_into_skype(part_name(m_table, k), part_name(partition.name(), k));
          for (const std::string& sql : m_part_plans[k].constraints) m_conn.exec(sql);
        }
        move_into_skype(m_table, partition.name());
        // Split: the partitioned indexes, each taking its parts' index without a build.
        for (const std::string& sql : m_parts > 1 ? m_plan.build : m_plan.constraints)
          m_conn.exec(sql);
        m_conn.exec(partition.attach_sql());
      }))
    return false;
  m_conn.exec("ALTER TABLE " + partition.own() + " DROP CONSTRAINT " + m_check +
              (m_parts > 1 ? "" : ", RESET (autovacuum_enabled)"));
  for (std::size_t k = 0; k < m_part_plans.size(); ++k) {
    m_conn.exec("ALTER TABLE " + part_name(partition.own(), k) + " RESET (autovacuum_enabled)");
    for (const std::string& sql : m_part_plans[k].renames) m_conn.exec(sql);
  }
  for (const std::string& sql : m_plan.renames) m_conn.exec(sql);
  return true;
}

void SideTable::cancel() noexcept {
  if (m_streams) m_streams->cancel();
}

void SideTable::end() noexcept {
  if (m_table.empty()) return;
  try {
    if (m_conn.is_ok()) {
      m_conn.exec("DROP TABLE IF EXISTS " + m_table);
      if (m_locked)
        m_conn.exec_params(side_lock_sql("pg_advisory_unlock"), std::vector<std::string>{m_table});
    }
  } catch (...) {
    // Best effort: the next drop_orphans drops what is left once the lock is gone.
  }
  m_locked = false;
  m_table.clear();
}

void SideTable::reset() {
  m_active = false;
  m_streams.reset();
  m_nul_bytes_removed = m_json_nul_escapes_replaced = 0;
  m_check.clear();
  m_plan = IndexPlan();
  m_part_plans.clear();
  m_parts = 1;
}

void SideTable::drop_orphans() {
  PgResult r = m_conn.exec(
      "SELECT 'skype_load.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n "
      "ON n.oid = c.relnamespace WHERE n.nspname = 'skype_load' AND c.relkind IN ('r', 'p') "
      "AND NOT c.relispartition");  // a split table's parts go with it
  for (int k = 0; k < r.rows(); ++k) {
    const std::vector<std::string> table{std::string(r.text(k, 0))};
    if (table[0] == m_table) continue;  // ours (advisory locks are re-entrant)
    if (m_conn.exec_params(side_lock_sql("pg_try_advisory_lock"), table).text(0, 0) != "t")
      continue;
    try {
      m_conn.exec("DROP TABLE IF EXISTS " + table[0]);
    } catch (const DatabaseError&) {
      // Not ours to drop (another role's, say): it costs disk, not correctness.
    }
    m_conn.exec_params(side_lock_sql("pg_advisory_unlock"), table);
  }
}

}  // namespace skype_etl::detail
