#include "load/loader.hpp"
#include "core/civil_time.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <set>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "core/clock.hpp"
#include "core/file_name.hpp"
#include "core/identity.hpp"
#include "load/copy_writer.hpp"
#include "load/id_seen_filter.hpp"
#include "load/membership_text.hpp"
#include "load/parallel_copy.hpp"
#include "load/pg_connection.hpp"
#include "load/schema.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail {
namespace {

// The staging tables: temporary (never WAL-logged, dropped at COMMIT or ROLLBACK, invisible
// to other sessions), without indexes or constraints so COPY into them runs at full speed.
// Identifiers are in collation "C", as in skype.messages: the merge sorts and joins on them.
constexpr const char* create_staging_sql = R"sql(
CREATE TEMP TABLE stage_messages (
  seq bigint, conversation_id text COLLATE "C", message_id text COLLATE "C", version bigint,
  sent_at timestamptz, sender_id text, sender_raw text, sender_name text, message_type text,
  content_raw text, content_text text,
  is_edited boolean, edited_at timestamptz, is_deleted boolean, deleted_at timestamptz,
  is_server_generated boolean, properties jsonb, details jsonb, extra jsonb) ON COMMIT DROP;
CREATE TEMP TABLE stage_attachments (
  msg_seq bigint, conversation_id text COLLATE "C", message_id text COLLATE "C",
  ordinal integer, kind text, name text, content_type text, uri text, thumbnail_uri text,
  doc_id text, size bigint, width bigint, height bigint, duration_seconds double precision)
  ON COMMIT DROP;
CREATE TEMP TABLE stage_conversations (
  conversation_id text, described boolean, conversation_type text, display_name text,
  topic text, properties jsonb, thread_properties jsonb, extra jsonb) ON COMMIT DROP;
CREATE TEMP TABLE stage_participants (
  conversation_id text, participant_id text, display_name text,
  last_seen_at timestamptz) ON COMMIT DROP;
CREATE TEMP TABLE stage_membership_rows (LIKE stage_messages, is_repeat boolean)
  ON COMMIT DROP;
CREATE TEMP TABLE stage_membership_text (seq bigint, content_text text, names jsonb)
  ON COMMIT DROP;
CREATE TEMP TABLE stage_derived (
  conversation_id text COLLATE "C", inserted bigint, updated bigint, first_at timestamptz,
  last_at timestamptz) ON COMMIT DROP;
)sql";

// The columns of a side table's rows: a message row as staged (source_position is the
// staging table's seq), then the two the merge would add.
constexpr const char* side_columns =
    "source_position, conversation_id, message_id, version, sent_at, sender_id, sender_raw, "
    "sender_name, message_type, content_raw, content_text, is_edited, edited_at, is_deleted, "
    "deleted_at, is_server_generated, properties, details, extra, account_id, export_id";

// The columns of stage_messages (stage_membership_rows has them too).
constexpr const char* staged_columns =
    "seq, conversation_id, message_id, version, sent_at, sender_id, sender_raw, sender_name, "
    "message_type, content_raw, content_text, is_edited, edited_at, is_deleted, deleted_at, "
    "is_server_generated, properties, details, extra";

// The held membership rows as stage_messages' columns, with the text and names that
// describe_membership_rows wrote for them (in stage_membership_text).
constexpr const char* held_rows_select =
    "SELECT r.seq, r.conversation_id, r.message_id, r.version, r.sent_at, r.sender_id, "
    "r.sender_raw, r.sender_name, r.message_type, r.content_raw, coalesce(t.content_text, "
    "r.content_text), r.is_edited, r.edited_at, r.is_deleted, r.deleted_at, "
    "r.is_server_generated, r.properties, CASE WHEN t.names IS NULL THEN r.details ELSE "
    "jsonb_set(r.details, '{membership,names}', t.names) END, r.extra";
constexpr const char* held_rows_from =
    " FROM stage_membership_rows r LEFT JOIN stage_membership_text t ON t.seq = r.seq";

// Settings of every connection of a loader (the side table's streams too).
constexpr const char* session_sql =
    "SET client_encoding = 'UTF8'; SET application_name = 'skype-etl'";

// Whether rows may reach skype.messages by attaching a partition: no trigger on it (a side
// table's rows would never fire it) and no publication of it (attaching publishes nothing).
constexpr const char* side_load_allowed_sql =
    "SELECT NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'skype.messages'::regclass "
    "AND NOT tgisinternal) AND NOT EXISTS (SELECT 1 FROM pg_publication WHERE puballtables) "
    "AND NOT EXISTS (SELECT 1 FROM pg_publication_rel WHERE prrelid = "
    "'skype.messages'::regclass)";

enum class Stage { none, messages, attachments, conversations, participants, membership };

// Of several rows of one id in stage_messages, the export's own winner comes first: the
// highest version, then the latest edit, then the last in the file.
constexpr const char* staged_winner_order =
    "ORDER BY conversation_id, message_id, version DESC NULLS LAST, edited_at DESC NULLS LAST, "
    "seq DESC";

/// SQL: whether message row `a` replaces stored row `b` of its id: a higher version, or the
/// same and a later edit (a missing version or edit loses to any). On a tie `b` stays,
/// unless `ties_to_export` and `b` is a row of this export ($2): then `a`, a later row of
/// the same export, replaces it.
std::string replaces_sql(const std::string& a, const std::string& b, bool ties_to_export) {
  const std::string left = "ROW(" + a + ".version IS NOT NULL, coalesce(" + a + ".version, 0), " +
                           a + ".edited_at IS NOT NULL, coalesce(" + a + ".edited_at, 'epoch'))";
  const std::string right = "ROW(" + b + ".version IS NOT NULL, coalesce(" + b + ".version, 0), " +
                            b + ".edited_at IS NOT NULL, coalesce(" + b + ".edited_at, 'epoch'))";
  if (!ties_to_export) return left + " > " + right;
  return "(" + left + " > " + right + " OR (" + left + " = " + right + " AND " + b +
         ".export_id = $2::bigint))";
}

const char* copy_sql(Stage stage) {
  switch (stage) {
    case Stage::messages:
      return "COPY stage_messages FROM STDIN (FORMAT binary)";
    case Stage::attachments:
      return "COPY stage_attachments FROM STDIN";
    case Stage::conversations:
      return "COPY stage_conversations FROM STDIN";
    case Stage::participants:
      return "COPY stage_participants FROM STDIN";
    case Stage::membership:
      return "COPY stage_membership_rows FROM STDIN (FORMAT binary)";
    case Stage::none:
      break;
  }
  return "";
}

/// The advisory lock a loader holds while its side table exists: its absence tells
/// ensure_schema that the table is an orphan.
std::string side_lock_sql(const char* function) {
  return std::string("SELECT ") + function + "(hashtextextended('skype-etl load table ' || $1, 0))";
}

bool parse_digits(std::string_view text, std::size_t at, std::size_t count, int& out) {
  if (at + count > text.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    out = out * 10 + (text[i] - '0');
  }
  return true;
}

}  // namespace

/// exportDate ("2025-04-30T10:13", minute precision, no zone = UTC; seconds, fractions and
/// a trailing Z tolerated) → "YYYY-MM-DD HH:MM:SS.ffffff+00", or "" when unrecognisable.
std::string export_date_to_timestamp(std::string_view text) {
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!parse_digits(text, 0, 4, year) || text.size() < 10 || text[4] != '-' ||
      !parse_digits(text, 5, 2, month) || text[7] != '-' || !parse_digits(text, 8, 2, day))
    return {};
  if (text.size() >= 16) {
    if ((text[10] != 'T' && text[10] != ' ') || !parse_digits(text, 11, 2, hour) ||
        text[13] != ':' || !parse_digits(text, 14, 2, minute))
      return {};
    if (text.size() >= 19 && text[16] == ':' && !parse_digits(text, 17, 2, second)) return {};
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return {};
  std::int64_t us = ((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second;
  return format_timestamp_us(us * 1'000'000);
}

struct Loader::Impl {
  Impl(const DbConfig& db, LoaderOptions loader_options)
      : options(std::move(loader_options)), conninfo(db.conninfo), conn(db.conninfo) {
    steps.set_observer(options.on_step);
    conn.exec(session_sql);
    // Staging lives in temporary tables: let the session cache more of them in memory
    // (must be set before the session's first use of a temporary table).
    conn.exec("SET temp_buffers = '64MB'");
  }

  // A sender's name is the latest non-null one; "" is a name (the file said so).
  struct SenderInfo {
    std::optional<std::string> name;
    std::int64_t name_at = INT64_MIN;
    std::int64_t last_seen = INT64_MIN;
  };
  struct ChunkSender {
    std::string_view id;
    std::optional<std::string_view> name;
    std::int64_t name_at = INT64_MIN;
    std::int64_t last_seen = INT64_MIN;
  };

  LoaderOptions options;
  std::string conninfo;
  PgConnection conn;
  bool schema_checked = false;
  bool digest_checked = false;  // begin_export could check the digest

  // The current export (valid between begin_export and finish/abort).
  bool in_export = false;
  LoadSteps steps;  // of the current export
  std::string account_id;
  std::string export_id;
  std::int64_t export_number = 0;  // export_id as a number
  std::string export_date;         // timestamptz text or ""
  ExportInfo info;
  std::string owner_display_name;
  std::string export_extra;  // the top-level object's unknown keys (Batch::export_extra_json)

  // Message rows go in COPY's binary format (the server's share of their COPY is the
  // bottleneck of reading an export); the other tables in text. `messages` feeds
  // stage_messages (in a side-table load only the repeats: see below), `side_rows` the
  // side table's streams.
  CopyBuffer messages{CopyFormat::binary};
  CopyBuffer side_rows{CopyFormat::binary};
  CopyBuffer attachments;
  CopyBuffer conversations;
  Stage open_copy = Stage::none;
  bool open_copy_binary = false;  // the open COPY is in binary format
  std::uint64_t staged_messages = 0;
  std::uint64_t staged_attachments = 0;
  std::uint64_t batches = 0;

  // Conversations seen in chunks (id → a ConversationRow was staged).
  std::unordered_map<std::string, bool> conversation_seen;
  // Metadata of conversations seen but not described yet (the transform describes each in
  // the batch of its first chunk, so this stays small).
  std::unordered_map<std::string, std::shared_ptr<const ConversationMeta>> undescribed;
  // Senders of the conversation being loaded: id → what their messages say. They are
  // staged when another conversation begins, so memory holds one conversation's senders
  // rather than the whole export's (the merge aggregates repeated rows).
  std::string senders_conversation;
  std::unordered_map<std::string, SenderInfo> senders;
  CopyBuffer participants;  // members and senders, staged as they come
  // Messages whose details may hold a membership event wait in stage_membership_rows (not
  // in memory: it stays flat however many there are) until finish_export knows the names
  // every batch brought; with their text written (describe_membership_rows) they join the
  // others, before the merge and before a side table's indexes are built.
  CopyBuffer membership{CopyFormat::binary};
  std::uint64_t membership_held = 0;

  // Repeats: messages whose id may have been seen before in their conversation, found
  // from 64-bit hashes of the ids (in at most 1.5 MiB however large the conversation;
  // a false "seen" only costs the merge a look, a repeat is never missed). Every message of
  // a conversation that comes back after another one began (not contiguous in the file)
  // is a repeat too. A staged load deduplicates stage_messages when there was any; a side-
  // table load sends repeats to stage_messages instead of the side table, which thus
  // holds each id once, and merges them once it is attached.
  std::string dup_conversation;
  IdSeenFilter dup_hashes;
  bool dup_conversation_returned = false;  // dup_conversation was seen in an earlier run
  std::set<std::string> dup_finished;
  std::uint64_t repeats = 0;

  // skype.messages has a partition per account, named partition_name when this loader
  // creates it (migration 6 made the old table the partition of the accounts it held).
  std::string partition_name;

  // A side-table load (a large export of an account without a partition): the messages
  // that are not repeats are COPYed over several connections at once into a table of
  // schema skype_load, which gets its indexes (again on several connections) and then
  // becomes the account's partition inside the export's transaction.
  bool side = false;
  bool side_undecided = false;  // whether to make this a side-table load: the first batch tells
  std::string side_table;       // "skype_load.<name>" while it exists (until attached or dropped)
  std::string side_name;        // <name>
  bool side_locked = false;     // this session holds the side table's advisory lock
  std::unique_ptr<ParallelCopy> streams;
  std::uint64_t side_row_count = 0;
  std::uint64_t side_nul_bytes_removed = 0;
  std::uint64_t side_json_nul_escapes_replaced = 0;
  std::string side_check;  // its constraint that all rows are the account's
  // Indexes of a future partition: statements that build them (one per index of
  // skype.messages), the names of skype.messages' indexes they match, statements that
  // make the unique indexes of key constraints those constraints (run on
  // skype.<partition_name> before it is attached), and, when built under temporary names,
  // statements that give them their names once attached.
  struct IndexPlan {
    std::vector<std::string> build;
    std::vector<std::string> parent_names;
    std::vector<std::string> constraints;
    std::vector<std::string> renames;
  };
  IndexPlan side_plan;

  void reset_export() {
    in_export = false;
    steps.clear();
    messages.clear();
    attachments.clear();
    conversations.clear();
    messages = CopyBuffer(CopyFormat::binary);
    side_rows = CopyBuffer(CopyFormat::binary);
    attachments = CopyBuffer();
    conversations = CopyBuffer();
    participants = CopyBuffer();
    open_copy = Stage::none;
    staged_messages = staged_attachments = batches = 0;
    conversation_seen.clear();
    undescribed.clear();
    senders_conversation.clear();
    senders.clear();
    membership = CopyBuffer(CopyFormat::binary);
    membership_held = 0;
    dup_conversation.clear();
    dup_hashes.clear();
    dup_conversation_returned = false;
    dup_finished.clear();
    repeats = 0;
    side = false;
    side_undecided = false;
    streams.reset();
    side_row_count = side_nul_bytes_removed = side_json_nul_escapes_replaced = 0;
    side_check.clear();
    side_plan = IndexPlan();
    export_extra.clear();
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

  /// Merges of one account serialise (overlapping exports would otherwise deadlock on each
  /// other's rows, and two would create its partition); merges of different accounts run
  /// concurrently. Every loader takes its locks in one order: the digest's, the account's,
  /// then (attaching a partition) skype.messages' SHARE UPDATE EXCLUSIVE.
  void lock_account() {
    conn.exec_params(
        "SELECT pg_advisory_xact_lock(hashtextextended('skype-etl account ' || $1, 0))",
        std::vector<std::string>{account_id});
  }

  /// The name the account's partition of skype.messages gets when a load creates it: a
  /// readable part of the account id and a hash of all of it.
  void name_partition() {
    partition_name = std::string(
        conn.exec_params("SELECT 'messages_' || left(trim(both '_' from regexp_replace(lower($1), "
                         "'[^a-z0-9]+', '_', 'g')), 20) || '_' || left(md5($1), 8)",
                         std::vector<std::string>{account_id})
            .text(0, 0));
  }

  /// "skype.<partition_name>": the account's partition when a load of it created it.
  std::string own_partition() const { return "skype." + partition_name; }

  /// Runs `body` in savepoint `name`. Returns false, with what it did rolled back, when it
  /// fails because a partition already takes the account (42P17: one of several accounts,
  /// without rows of this one) or a table has the name (42P07); other errors propagate.
  bool unless_taken(const std::string& name, const std::function<void()>& body) {
    conn.exec("SAVEPOINT " + name);
    try {
      body();
    } catch (const DatabaseError& error) {
      if (error.sqlstate() != "42P17" && error.sqlstate() != "42P07") throw;
      conn.exec("ROLLBACK TO SAVEPOINT " + name);
      return false;
    }
    conn.exec("RELEASE SAVEPOINT " + name);
    return true;
  }

  /// The partition of skype.messages that takes the account's rows, "" when there is none:
  /// partition_name, or the one its rows are in (the old table, which migration 6 made the
  /// partition of the accounts it held). Inside a transaction `route` asks where a row of
  /// the account would go (a row inserted and rolled back), which also finds a partition
  /// that takes the account but holds none of its rows.
  std::string account_partition(bool route = false) {
    std::string found(
        conn.exec_params(
                "SELECT coalesce((SELECT inhrelid::regclass::text FROM pg_inherits WHERE "
                "inhparent = 'skype.messages'::regclass AND inhrelid = to_regclass('skype.' || "
                "$2)), (SELECT tableoid::regclass::text FROM skype.messages WHERE account_id = $1 "
                "LIMIT 1), '')",
                std::vector<std::string>{account_id, partition_name})
            .text(0, 0));
    if (!found.empty() || !route) return found;
    conn.exec("SAVEPOINT skype_etl_route");
    try {
      found = conn.exec_params(
                      "INSERT INTO skype.messages (account_id, conversation_id, message_id, "
                      "export_id) VALUES ($1, '', '', 0) ON CONFLICT (account_id, "
                      "conversation_id, message_id) DO UPDATE SET export_id = 0 "
                      "RETURNING tableoid::regclass::text",
                      std::vector<std::string>{account_id})
                  .text(0, 0);
    } catch (const DatabaseError& error) {
      if (error.sqlstate() != "23514") throw;  // no partition takes the account
    }
    conn.exec("ROLLBACK TO SAVEPOINT skype_etl_route");
    conn.exec("RELEASE SAVEPOINT skype_etl_route");
    return found;
  }

  /// Plans how table `table`, a future partition for the account, gets the indexes and key
  /// constraints of skype.messages (the full-text index first: it takes longest). With a
  /// `prefix` they are built as <prefix>_0, _1, ... and renamed after partition_name once
  /// attached; without, they get those names at once. False when an index is of a form this
  /// does not know how to copy.
  bool plan_partition_indexes(const std::string& table, const std::string& prefix,
                              IndexPlan& plan) {
    PgResult r = conn.exec_params(
        "SELECT ic.relname, pg_get_indexdef(i.indexrelid), con.conname IS NOT NULL, "
        "pg_get_constraintdef(con.oid), quote_ident($1 || CASE WHEN ic.relname LIKE 'messages%' "
        "THEN substr(ic.relname, 9) ELSE '_' || ic.relname END), am.amname FROM pg_index i "
        "JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam "
        "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND "
        "con.conrelid = i.indrelid WHERE i.indrelid = 'skype.messages'::regclass "
        "ORDER BY am.amname = 'gin' DESC, ic.relname",
        std::vector<std::string>{partition_name});
    plan = IndexPlan();
    for (int k = 0; k < r.rows(); ++k) {
      const std::string parent_name(r.text(k, 0));
      const std::string final_name(r.text(k, 4));
      const std::string name = prefix.empty() ? final_name : prefix + "_" + std::to_string(k);
      plan.parent_names.push_back(parent_name);
      if (r.text(k, 2) == "t") {
        // A key constraint gets its unique index built like the other indexes, then becomes
        // the constraint (no scan: the columns are NOT NULL). ADD CONSTRAINT ... PRIMARY KEY
        // would lock the table against the other builds while it sorts (CREATE INDEX takes a
        // SHARE lock: the builds run side by side).
        const std::string definition(r.text(k, 3));
        std::string kind;
        for (const char* key : {"PRIMARY KEY (", "UNIQUE ("})
          if (definition.rfind(key, 0) == 0 && definition.back() == ')' &&
              definition.find("DEFERRABLE") == std::string::npos)
            kind = std::string(key, std::strlen(key) - 2);
        if (kind.empty()) return false;
        plan.constraints.push_back("ALTER TABLE skype." + partition_name + " ADD CONSTRAINT " +
                                   name + " " + kind + " USING INDEX " + name);
        if (!prefix.empty())
          plan.renames.push_back("ALTER TABLE skype." + partition_name + " RENAME CONSTRAINT " +
                                 name + " TO " + final_name);
      }
      // "CREATE [UNIQUE] INDEX <name> ON ONLY skype.messages USING ..."
      const std::string definition(r.text(k, 1));
      const std::string on = " ON ONLY skype.messages USING ";
      const std::size_t at = definition.find(on);
      const std::string head = definition.substr(0, std::min(at, definition.size()));
      std::string statement;
      for (const char* create : {"CREATE INDEX ", "CREATE UNIQUE INDEX "})
        if (at != std::string::npos && head.rfind(create, 0) == 0)
          statement =
              create + name + " ON " + table + " USING " + definition.substr(at + on.size());
      if (statement.empty()) return false;
      plan.build.push_back(statement);
      if (!prefix.empty() && r.text(k, 2) != "t")
        plan.renames.push_back("ALTER INDEX skype." + name + " RENAME TO " + final_name);
    }
    return true;
  }

  /// Whether a side-table load of a file of `file_size` bytes into the account's own
  /// partition `existing` may be worth it: its heap is at most twice the file (a message
  /// takes about as many bytes in both), so the export may bring as many new messages as
  /// half the stored ones. Then rewriting the partition with them beats inserting them
  /// through its indexes one by one; finish_export decides on the actual new rows.
  bool side_load_may_pay(const std::string& existing, std::uint64_t file_size) {
    if (existing != own_partition()) return false;  // shared with other accounts
    return static_cast<std::uint64_t>(conn.exec_params("SELECT pg_relation_size($1::regclass)",
                                                       std::vector<std::string>{existing})
                                          .integer(0, 0)) <= 2 * file_size;
  }

  /// Whether most of the messages of `batch` (up to 256 of them, spread over it) are new to
  /// the account's partition. Most exports that bring an account's messages again bring
  /// mostly the same ones, and staging them costs less than a side table that then gets
  /// merged the same way (1 M messages loaded again: 6.4 s staged, 13.4 s through a side
  /// table).
  bool batch_mostly_new(const Batch& batch) {
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
    const std::string partition = account_partition();
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

  /// ALTER TABLE skype.messages ATTACH PARTITION skype.<partition_name> for the account.
  std::string attach_partition_sql() {
    return std::string(
        conn.exec_params("SELECT format('ALTER TABLE skype.messages ATTACH PARTITION skype.%I "
                         "FOR VALUES IN (%L)', $1::text, $2::text)",
                         std::vector<std::string>{partition_name, account_id})
            .text(0, 0));
  }

  /// Before the export's first message is staged: makes this a side-table load. Takes the
  /// lock that marks the side table as in use, creates it with skype.messages' columns
  /// (defaults, generated column, comments), no indexes, and a check that every row is the
  /// account's (so that attaching it needs no scan), and starts the streams. No lock on
  /// skype.messages meanwhile: readers and other accounts' loads go on.
  void start_side_load() {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    side_name = "messages_" + std::to_string(conn.backend_pid()) + "_" +
                std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
    if (!plan_partition_indexes("skype_load." + side_name, side_name, side_plan)) return;
    side_table = "skype_load." + side_name;
    side_check = side_name + "_account";
    conn.exec_params(side_lock_sql("pg_advisory_lock"), std::vector<std::string>{side_table});
    side_locked = true;
    // No autovacuum meanwhile: after the COPYs it would want to vacuum and analyze the
    // new rows, competing with the index builds for the cores or being cancelled by them.
    // Created and committed on a connection of its own (this one may be in the export's
    // transaction already), so that the streams' connections see it.
    PgConnection creator(conninfo);
    creator.exec(session_sql);
    creator.exec(std::string(
        conn.exec_params("SELECT format('CREATE TABLE %s (LIKE skype.messages INCLUDING ALL "
                         "EXCLUDING INDEXES, CONSTRAINT %I CHECK (account_id = %L)) WITH "
                         "(autovacuum_enabled = false)', $1::text, $2::text, $3::text)",
                         std::vector<std::string>{side_table, side_check, account_id})
            .text(0, 0)));
    streams = std::make_unique<ParallelCopy>(
        conninfo, options.copy_streams,
        std::string(session_sql) + "; SET maintenance_work_mem = '256MB'; SET work_mem = '128MB'" +
            // Several connections build the indexes side by side, each keeping a core busy:
            // parallel workers only compete with the other builds for the cores (5 M, two
            // interleaved pairs of runs: 65.8 / 61.7 s -> 63.2 / 58.0 s, 66.7 / 62.1 s ->
            // 64.7 / 60.4 s; the GIN index, which has no workers, 20-22 s -> 10-12 s).
            (options.copy_streams > 1 ? "; SET max_parallel_maintenance_workers = 0" : ""),
        "COPY " + side_table + " (" + side_columns + ") FROM STDIN (FORMAT binary)");
    side = true;
  }

  /// Inside the export's transaction, under the account's lock: makes the indexed side
  /// table the account's partition of skype.messages, its indexes named like those of a
  /// partition created by a staged load. Returns false, changing nothing, when the account
  /// has a partition already (another load created one since begin_export).
  bool attach_side_table() {
    if (!account_partition().empty()) return false;
    if (!unless_taken("skype_etl_attach", [&] {
          conn.exec("ALTER TABLE " + side_table + " RENAME TO " + partition_name);
          conn.exec("ALTER TABLE skype_load." + partition_name + " SET SCHEMA skype");
          for (const std::string& sql : side_plan.constraints) conn.exec(sql);
          conn.exec(attach_partition_sql());
        }))
      return false;
    conn.exec("ALTER TABLE " + own_partition() + " DROP CONSTRAINT " + side_check +
              ", RESET (autovacuum_enabled)");
    for (const std::string& sql : side_plan.renames) conn.exec(sql);
    return true;
  }

  /// Inside the export's transaction, under the account's lock: gives the account an empty
  /// partition of skype.messages, with its indexes, if it has none. Returns the account's
  /// partition, "" when no partition takes it and none could be created.
  std::string ensure_account_partition() {
    std::string existing = account_partition();
    if (!existing.empty()) return existing;
    const std::string table = own_partition();
    const bool created = unless_taken("skype_etl_partition", [&] {
      conn.exec("CREATE TABLE " + table + " (LIKE skype.messages INCLUDING ALL EXCLUDING INDEXES)");
      // Indexes of a form not planned are created by ATTACH, under names of its choosing.
      IndexPlan plan;
      if (plan_partition_indexes(table, "", plan)) {
        for (const std::string& sql : plan.build) conn.exec(sql);
        for (const std::string& sql : plan.constraints) conn.exec(sql);
      }
      conn.exec(attach_partition_sql());
    });
    // If not, the rows go to the partition that takes the account, found by routing a row.
    return created ? table : account_partition(true);
  }

  /// After the export's COMMIT or ROLLBACK: drops the side table unless it became a
  /// partition (a rollback returns it to skype_load), then releases its lock. Leaves
  /// it to ensure_schema when the connection is gone.
  void end_side_table() noexcept {
    if (side_table.empty()) return;
    try {
      if (conn.is_ok()) {
        conn.exec("DROP TABLE IF EXISTS " + side_table);
        if (side_locked)
          conn.exec_params(side_lock_sql("pg_advisory_unlock"),
                           std::vector<std::string>{side_table});
      }
    } catch (...) {
      // Best effort: the next ensure_schema drops what is left once the lock is gone.
    }
    side_locked = false;
    side_table.clear();
  }

  /// Drops the side tables of loads that ended without dropping them (killed, or their
  /// connection lost): those whose lock nobody holds.
  void drop_orphaned_side_tables() {
    PgResult r = conn.exec(
        "SELECT 'skype_load.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = 'skype_load' AND c.relkind = 'r'");
    for (int k = 0; k < r.rows(); ++k) {
      const std::vector<std::string> table{std::string(r.text(k, 0))};
      if (table[0] == side_table) continue;  // ours (advisory locks are re-entrant)
      if (conn.exec_params(side_lock_sql("pg_try_advisory_lock"), table).text(0, 0) != "t")
        continue;
      try {
        conn.exec("DROP TABLE IF EXISTS " + table[0]);
      } catch (const DatabaseError&) {
        // Not ours to drop (another role's, say): it costs disk, not correctness.
      }
      conn.exec_params(side_lock_sql("pg_advisory_unlock"), table);
    }
  }

  void end_open_copy() {
    if (open_copy == Stage::none) return;
    open_copy = Stage::none;
    if (open_copy_binary) conn.put_copy_data(binary_copy_trailer());
    conn.end_copy();
  }

  /// Sends `buffer` into staging table `stage`, keeping that COPY open for more.
  void send(Stage stage, CopyBuffer& buffer) {
    if (buffer.empty()) return;
    if (open_copy != stage) {
      end_open_copy();
      conn.copy_in(copy_sql(stage));
      open_copy = stage;
      open_copy_binary = buffer.binary();
      if (open_copy_binary) conn.put_copy_data(binary_copy_header());
    }
    conn.put_copy_data(buffer.view());
    buffer.clear();
  }

  void finish_dup_conversation() {
    dup_hashes.clear();
    if (!dup_conversation.empty()) dup_finished.insert(dup_conversation);
    dup_conversation.clear();
    dup_conversation_returned = false;
  }

  void start_dup_conversation(std::string_view id) {
    if (!dup_conversation.empty() && dup_conversation == id) return;
    finish_dup_conversation();
    dup_conversation.assign(id);
    // Its earlier messages' hashes are gone: every message of it may repeat one of them.
    dup_conversation_returned = dup_finished.count(dup_conversation) > 0;
  }

  /// Notes message `message_id` of dup_conversation; true when it is a repeat (its id may
  /// have been seen before in the conversation).
  bool is_repeat(std::string_view message_id) {
    if (!dup_conversation_returned && dup_hashes.insert(std::hash<std::string_view>{}(message_id)))
      return false;
    ++repeats;
    return true;
  }

  /// Sends the side table's rows gathered so far to the streams, counting what their
  /// buffer removed (the buffer that comes back is another, with counters at zero).
  void send_side_rows() {
    if (side_rows.empty()) return;
    side_nul_bytes_removed += side_rows.nul_bytes_removed();
    side_json_nul_escapes_replaced += side_rows.json_nul_escapes_replaced();
    streams->send(side_rows);
  }

  /// Stages the senders gathered for senders_conversation.
  void stage_senders() {
    for (const auto& [id, info] : senders) {
      participants.text(senders_conversation);
      participants.text(id);
      participants.nullable_text(info.name);
      if (info.last_seen == INT64_MIN)
        participants.null();
      else
        participants.timestamp_us(info.last_seen);
      participants.end_row();
    }
    senders.clear();
  }

  void flush_chunk_senders(std::string_view conversation_id, std::vector<ChunkSender>& chunk) {
    if (senders_conversation != conversation_id) {
      stage_senders();
      senders_conversation.assign(conversation_id);
    }
    for (const ChunkSender& s : chunk) {
      SenderInfo& info = senders[std::string(s.id)];
      info.last_seen = std::max(info.last_seen, s.last_seen);
      if (s.name && s.name_at >= info.name_at) {
        info.name.emplace(*s.name);
        info.name_at = s.name_at;
      }
    }
    chunk.clear();
  }

  /// Before the side table's COPYs end: sends the held membership rows that are no repeats
  /// (their text written by now) to its streams, read back from stage_membership_rows in
  /// COPY's binary format, row by row (memory stays flat). Returns the rows sent.
  std::uint64_t forward_membership_rows() {
    char* account = PQescapeLiteral(conn.get(), account_id.data(), account_id.size());
    if (!account) throw DatabaseError("could not quote account id '" + account_id + "'");
    const std::string quoted_account(account);
    PQfreemem(account);
    // The side table's columns, in side_columns' order and types.
    const std::string sql = "COPY (" + std::string(held_rows_select) + ", " + quoted_account +
                            "::text, " + export_id + "::bigint" + held_rows_from +
                            " WHERE NOT r.is_repeat) TO STDOUT "
                            "(FORMAT binary)";
    const std::string_view header = binary_copy_header();
    const std::string_view trailer = binary_copy_trailer();
    CopyBuffer rows(CopyFormat::binary);
    std::uint64_t sent = 0;
    bool first = true;
    conn.copy_out(sql, [&](std::string_view data) {
      if (first) {
        first = false;
        if (data.substr(0, header.size()) != header)
          throw DatabaseError("COPY TO STDOUT of membership rows did not begin with its header");
        data.remove_prefix(header.size());
      }
      if (data.empty() || data == trailer) return;
      rows.append_rows(data, 1);
      ++sent;
      if (rows.size() >= options.copy_flush_bytes) streams->send(rows);
    });
    if (!rows.empty()) streams->send(rows);
    return sent;
  }

  /// Stages message `m` at position `seq`: a membership event into stage_membership_rows,
  /// else into the side table unless this is a staged load or the message a repeat, else
  /// into stage_messages.
  void stage_message(std::uint64_t seq, std::string_view conversation_id, const Message& m,
                     bool repeat) {
    const bool held = may_hold_membership(m.details_json);
    const bool to_side = side && !repeat && !held;
    CopyBuffer& b = held ? membership : to_side ? side_rows : messages;
    b.integer(static_cast<std::int64_t>(seq));
    b.text(conversation_id);
    append_message_columns(b, m);
    if (to_side) {
      b.text(account_id);
      b.integer(export_number);
      ++side_row_count;
    }
    if (held) {
      b.boolean(repeat);
      ++membership_held;
    }
    b.end_row();
    std::int32_t ordinal = 0;
    for (const Attachment& a : m.attachments) {
      CopyBuffer& t = attachments;
      t.integer(static_cast<std::int64_t>(seq));
      t.text(conversation_id);
      t.text(m.message_id);
      t.integer(ordinal++);
      t.text_or_null(a.kind);
      t.text_or_null(a.name);
      t.text_or_null(a.content_type);
      t.text_or_null(a.uri);
      t.text_or_null(a.thumbnail_uri);
      t.text_or_null(a.doc_id);
      t.integer(a.size);
      t.integer(a.width);
      t.integer(a.height);
      t.floating(a.duration_seconds);
      t.end_row();
      ++staged_attachments;
    }
  }

  /// The repeated ids (in stage_messages) that have no row in the side table: a side load's
  /// distinct ids are its side rows and these.
  std::uint64_t repeated_ids_not_in_side_table() {
    if (repeats == 0) return 0;
    return static_cast<std::uint64_t>(
        conn.exec("SELECT count(*) FROM (SELECT DISTINCT conversation_id, message_id FROM "
                  "stage_messages) r WHERE NOT EXISTS (SELECT 1 FROM " +
                  side_table +
                  " s WHERE s.conversation_id = r.conversation_id AND s.message_id = "
                  "r.message_id)")
            .integer(0, 0));
  }

  /// INSERT ... ON CONFLICT of stage_messages into skype.messages (of each id, when there
  /// were repeats, only its winner in the export: the highest version, then the latest
  /// edit, then the last in the file). A stored row is replaced as replaces_sql says: on a
  /// tie it stays, so reloading the same messages changes nothing, unless `ties_to_staged`
  /// and it is an earlier row of this export. Returns the rows inserted and replaced, and
  /// adds them up per conversation in stage_derived. Into `partition`, the account's
  /// partition or the side table that becomes it (the inserted/replaced count needs xmax,
  /// which a partitioned table cannot return). With `side_rows`, the rows come from that
  /// side table instead (one per id: no winner to choose).
  std::pair<std::uint64_t, std::uint64_t> merge_stage_messages(
      const std::vector<std::string>& ae, bool ties_to_staged, const std::string& partition,
      const std::string& side_rows = std::string()) {
    const bool dedupe = repeats > 0 && side_rows.empty();
    auto replaces = [&](const std::string& a, const std::string& b) {
      return replaces_sql(a, b, ties_to_staged);
    };
    // Staged rows that would not replace their stored row are left out before the INSERT:
    // ON CONFLICT would lock (and so rewrite) every stored row it keeps. 1 M messages
    // loaded again, all unchanged: 15.2 s -> 2.0 s (benchmarks/README.md).
    const std::string select =
        std::string("SELECT ") + (dedupe ? "DISTINCT ON (conversation_id, message_id) " : "") +
        "$1, conversation_id, message_id, version, sent_at, sender_id, sender_raw, sender_name, "
        "message_type, content_raw, content_text, is_edited, edited_at, is_deleted, "
        "deleted_at, is_server_generated, properties, details, extra, $2::bigint, " +
        (side_rows.empty() ? "seq FROM stage_messages" : "source_position FROM " + side_rows) +
        " s WHERE NOT EXISTS (SELECT 1 FROM " + partition +
        " o WHERE o.account_id = $1 AND o.conversation_id = s.conversation_id AND "
        "o.message_id = s.message_id AND NOT " +
        replaces("s", "o") + ")" +
        (dedupe ? std::string(" ") + staged_winner_order : std::string());
    PgResult r = conn.exec_params(
        "WITH upserted AS (INSERT INTO " + partition +
            " AS m (account_id, conversation_id, "
            "message_id, version, sent_at, sender_id, sender_raw, sender_name, message_type, "
            "content_raw, content_text, is_edited, edited_at, is_deleted, deleted_at, "
            "is_server_generated, properties, details, extra, export_id, source_position) " +
            select +
            " ON CONFLICT (account_id, conversation_id, message_id) DO UPDATE SET "
            "version = excluded.version, sent_at = excluded.sent_at, "
            "sender_id = excluded.sender_id, sender_raw = excluded.sender_raw, "
            "sender_name = excluded.sender_name, "
            "message_type = excluded.message_type, content_raw = excluded.content_raw, "
            "content_text = excluded.content_text, is_edited = excluded.is_edited, "
            "edited_at = excluded.edited_at, is_deleted = excluded.is_deleted, "
            "deleted_at = excluded.deleted_at, "
            "is_server_generated = excluded.is_server_generated, "
            "properties = excluded.properties, details = excluded.details, "
            "extra = excluded.extra, export_id = excluded.export_id, "
            "source_position = excluded.source_position "
            "WHERE " +
            replaces("excluded", "m") +
            " RETURNING conversation_id, sent_at, (xmax = 0) AS inserted), "
            "per_conversation AS (INSERT INTO stage_derived SELECT conversation_id, "
            "count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), "
            "min(sent_at) FILTER (WHERE inserted), max(sent_at) FILTER (WHERE inserted) "
            "FROM upserted GROUP BY conversation_id RETURNING inserted, updated) "
            "SELECT coalesce(sum(inserted), 0), coalesce(sum(updated), 0) FROM per_conversation",
        ae);
    return {static_cast<std::uint64_t>(r.integer(0, 0)),
            static_cast<std::uint64_t>(r.integer(0, 1))};
  }

  void stage_conversation_row(const ConversationRow& row) {
    CopyBuffer& b = conversations;
    b.text(row.conversation_id);
    b.boolean(true);
    b.text_or_null(row.conversation_type);
    b.nullable_text(row.display_name);
    b.text_or_null(row.topic);
    b.json(row.properties_json);
    b.json(row.thread_properties_json);
    b.json(row.extra_json);
    b.end_row();
    for (const std::string& member : row.members) {
      participants.text(row.conversation_id);
      participants.text(member);
      participants.null();
      participants.null();
      participants.end_row();
    }
  }
};

Loader::Loader(const DbConfig& db, LoaderOptions options)
    : m_impl(std::make_unique<Impl>(db, std::move(options))) {}

Loader::~Loader() {
  if (m_impl && m_impl->in_export) abort_export();
}

void Loader::ensure_schema() {
  detail::ensure_schema(m_impl->conn);
  m_impl->drop_orphaned_side_tables();
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
    s.account_id = canonical_person_id(info.user_id);
    s.name_partition();
    // A large export of an account without a partition is a side-table load; of one with
    // a partition of its own not much larger than the file, if its first batch is mostly
    // new messages. Decided without locks: finish_export looks again under the account's
    // lock.
    if (info.file_size >= s.options.side_load_min_file_bytes && s.options.copy_streams > 0 &&
        s.conn.exec(side_load_allowed_sql).text(0, 0) == "t") {
      const std::string existing = s.account_partition();
      if (existing.empty())
        s.start_side_load();
      else if (s.side_load_may_pay(existing, info.file_size))
        s.side_undecided = true;  // the first batch tells
    }
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
    s.export_id = std::string(next_id.text(0, 0));
    s.export_number = next_id.integer(0, 0);
    s.conn.exec(create_staging_sql);
  } catch (...) {
    abort_export();
    throw;
  }
  s.info = info;
  s.owner_display_name = owner_display_name;
  s.export_date = export_date_to_timestamp(info.export_date);
  s.steps.begin("copy");  // the export's batches, as they come
  return BeginResult::started;
}

void Loader::load_batch(const Batch& batch) {
  Impl& s = *m_impl;
  if (!s.in_export) throw std::logic_error("Loader::load_batch: no export is open");
  try {
    if (s.side_undecided) {
      s.side_undecided = false;
      if (s.batch_mostly_new(batch)) s.start_side_load();
    }
    std::vector<Impl::ChunkSender> chunk_senders;
    for (const ConversationChunk& chunk : batch.chunks) {
      if (!chunk.conversation)
        throw std::invalid_argument("Loader::load_batch: a chunk without its conversation");
      const ConversationMeta& meta = *chunk.conversation;
      if (chunk.first_message + chunk.message_count > batch.messages.size())
        throw std::invalid_argument("Loader::load_batch: chunk of conversation '" + meta.id +
                                    "' lies outside batch.messages (not transformed?)");
      auto seen = s.conversation_seen.try_emplace(meta.id, false);
      if (seen.second) s.undescribed.emplace(meta.id, chunk.conversation);
      s.start_dup_conversation(meta.id);
      for (std::size_t i = chunk.first_message; i < chunk.first_message + chunk.message_count;
           ++i) {
        const Message& m = batch.messages[i];
        const std::uint64_t seq = s.staged_messages++;
        s.stage_message(seq, meta.id, m, s.is_repeat(m.message_id));
        // A thread is no participant: its system messages carry its id as their sender.
        if (!m.sender_id.empty() && !is_thread_id(m.sender_id)) {
          const std::int64_t at = m.sent_at_us.value_or(INT64_MIN);
          Impl::ChunkSender* sender = nullptr;
          for (Impl::ChunkSender& c : chunk_senders)
            if (c.id == m.sender_id) {
              sender = &c;
              break;
            }
          if (!sender) {
            if (chunk_senders.size() >= 64) s.flush_chunk_senders(meta.id, chunk_senders);
            chunk_senders.push_back({m.sender_id, {}, INT64_MIN, INT64_MIN});
            sender = &chunk_senders.back();
          }
          sender->last_seen = std::max(sender->last_seen, at);
          if (m.sender_name && at >= sender->name_at) {
            sender->name = m.sender_name;
            sender->name_at = at;
          }
        }
        if (s.messages.size() >= s.options.copy_flush_bytes) s.send(Stage::messages, s.messages);
        if (s.side_rows.size() >= s.options.copy_flush_bytes) s.send_side_rows();
      }
      s.flush_chunk_senders(meta.id, chunk_senders);
    }
    if (!batch.export_extra_json.empty()) s.export_extra = batch.export_extra_json;
    for (const ConversationRow& row : batch.conversations) {
      const std::string id(row.conversation_id);
      s.conversation_seen[id] = true;
      s.undescribed.erase(id);
      s.stage_conversation_row(row);
    }
    // Rows of the small tables go out as they accumulate, not at the end of the export.
    if (s.conversations.size() >= s.options.copy_flush_bytes)
      s.send(Stage::conversations, s.conversations);
    if (s.participants.size() >= s.options.copy_flush_bytes)
      s.send(Stage::participants, s.participants);
    if (s.membership.size() >= s.options.copy_flush_bytes) s.send(Stage::membership, s.membership);
    if (s.attachments.size() >= s.options.copy_flush_bytes) {
      s.send(Stage::messages, s.messages);
      s.send(Stage::attachments, s.attachments);
    }
    if (s.messages.size() >= s.options.copy_flush_bytes) s.send(Stage::messages, s.messages);
    ++s.batches;
  } catch (const DatabaseError&) {
    abort_export();
    throw;
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
    PgConnection& c = s.conn;
    // The steps of the merge are those that begin from here (merge_seconds).
    const std::int64_t merge_start_us = now_us();
    if (!s.digest_checked) {
      s.steps.begin("digest");  // waits for the hash of the file, then for its lock
      s.end_open_copy();
      if (s.digest_loaded(s.info.digest.get())) {
        // Another run loaded the same file meanwhile: keep the database as it is.
        abort_export();
        return nlohmann::json{{"already_loaded", true}};
      }
    }
    s.steps.begin("copy_rest");
    s.finish_dup_conversation();
    // Conversations seen only through their chunks (no ConversationRow) still get a row.
    for (const auto& [id, held] : s.undescribed) {
      const ConversationMeta* meta = held.get();
      CopyBuffer& b = s.conversations;
      b.text(id);
      b.boolean(false);
      b.text("unknown");
      b.nullable_text(meta ? meta->display_name : std::nullopt);
      b.text_or_null(meta ? std::string_view(meta->topic) : std::string_view());
      b.json(meta ? std::string_view(meta->properties_json) : std::string_view());
      b.json(meta ? std::string_view(meta->thread_properties_json) : std::string_view());
      b.json(meta ? std::string_view(meta->extra_json) : std::string_view());
      b.end_row();
    }
    s.stage_senders();
    s.send(Stage::messages, s.messages);
    s.send(Stage::attachments, s.attachments);
    s.send(Stage::conversations, s.conversations);
    s.send(Stage::participants, s.participants);
    s.send(Stage::membership, s.membership);
    s.end_open_copy();
    // What ran on the streams' connections, reported besides the steps' seconds.
    nlohmann::json stream_seconds = nlohmann::json::object();

    const std::string& a = s.account_id;
    const std::string& e = s.export_id;
    const std::vector<std::string> ae{a, e};
    c.exec("SET LOCAL work_mem = '128MB'");
    c.exec("SET LOCAL maintenance_work_mem = '256MB'");
    // No ANALYZE of the staging tables: it samples wide rows for about a second per 100k
    // messages, and every plan below is a sequential scan of them anyway.

    // Membership events: their text names people as the merge will (every batch's names
    // are staged now), and they join the others: into stage_messages, but for a side load's
    // first occurrences, which go to its table (below) before its indexes are built. Written
    // after the indexes, they cost 2.6 s at 5 M messages.
    std::uint64_t membership_described = 0;
    if (s.membership_held > 0) {
      s.steps.begin("membership_text");
      membership_described = describe_membership_rows(c, a, s.owner_display_name);
      c.exec(std::string("INSERT INTO stage_messages (") + staged_columns + ") " +
             held_rows_select + held_rows_from + (s.side ? " WHERE r.is_repeat" : ""));
    }

    // The account, its conversations and their participants: they need nothing of the
    // messages, so a side load writes them while a stream's connection analyzes its table.
    std::uint64_t conversations_updated = 0, participants_written = 0;
    bool conversations_done = false;
    auto upsert_conversations = [&] {
      // The account; its display name and userId as written come from the newest export.
      std::vector<const char*> account_params{
          a.c_str(), s.owner_display_name.empty() ? nullptr : s.owner_display_name.c_str(),
          s.export_date.empty() ? nullptr : s.export_date.c_str(), s.info.user_id.c_str()};
      const std::string newest =
          "(x.last_export_date IS NULL OR excluded.last_export_date IS NULL OR "
          "excluded.last_export_date >= x.last_export_date)";
      c.exec_params(
          "INSERT INTO skype.accounts AS x (account_id, display_name, last_export_date, "
          "user_id) VALUES ($1, $2, $3::timestamptz, $4) ON CONFLICT (account_id) DO UPDATE SET "
          "last_loaded_at = now(), display_name = CASE WHEN excluded.display_name IS NOT NULL "
          "AND " +
              newest + " THEN excluded.display_name ELSE x.display_name END, user_id = CASE WHEN " +
              newest +
              " THEN excluded.user_id ELSE x.user_id END, last_export_date = "
              "greatest(x.last_export_date, excluded.last_export_date)",
          account_params);

      // Conversations: descriptive columns from the newest export that describes them.
      std::vector<const char*> conv_params{a.c_str(), e.c_str(),
                                           s.export_date.empty() ? nullptr : s.export_date.c_str()};
      const PgResult conv = c.exec_params(
          "INSERT INTO skype.conversations AS x (account_id, conversation_id, conversation_type, "
          "display_name, topic, properties, thread_properties, extra, source_export_date, "
          "export_id) SELECT DISTINCT ON (conversation_id) $1, conversation_id, "
          "conversation_type, display_name, topic, properties, thread_properties, extra, "
          "$3::timestamptz, $2::bigint "
          "FROM stage_conversations WHERE described ORDER BY conversation_id "
          "ON CONFLICT (account_id, conversation_id) DO UPDATE SET "
          "conversation_type = excluded.conversation_type, display_name = excluded.display_name, "
          "topic = excluded.topic, properties = excluded.properties, "
          "thread_properties = excluded.thread_properties, extra = excluded.extra, "
          "source_export_date = excluded.source_export_date, export_id = excluded.export_id "
          "WHERE x.source_export_date IS NULL OR excluded.source_export_date IS NULL OR "
          "excluded.source_export_date >= x.source_export_date",
          conv_params);
      c.exec_params(
          "INSERT INTO skype.conversations (account_id, conversation_id, conversation_type, "
          "display_name, topic, properties, thread_properties, extra, export_id) "
          "SELECT DISTINCT ON (conversation_id) $1, conversation_id, conversation_type, "
          "display_name, topic, properties, thread_properties, extra, $2::bigint "
          "FROM stage_conversations WHERE NOT described ORDER BY conversation_id "
          "ON CONFLICT (account_id, conversation_id) DO NOTHING",
          ae);

      const PgResult parts = c.exec_params(
          "INSERT INTO skype.participants AS p (account_id, conversation_id, participant_id, "
          "display_name, is_owner, last_seen_at) SELECT $1, conversation_id, participant_id, "
          "(array_agg(display_name ORDER BY last_seen_at DESC NULLS LAST) FILTER (WHERE "
          "display_name IS NOT NULL))[1], participant_id = $1, max(last_seen_at) "
          "FROM stage_participants WHERE participant_id <> '' "
          "GROUP BY conversation_id, participant_id "
          "ON CONFLICT (account_id, conversation_id, participant_id) DO UPDATE SET "
          "display_name = CASE WHEN excluded.display_name IS NOT NULL AND (p.last_seen_at IS "
          "NULL OR excluded.last_seen_at >= p.last_seen_at) THEN excluded.display_name ELSE "
          "p.display_name END, last_seen_at = greatest(p.last_seen_at, excluded.last_seen_at), "
          "is_owner = excluded.is_owner",
          std::vector<std::string>{a});
      conversations_updated = std::strtoull(PQcmdTuples(conv.get()), nullptr, 10);
      participants_written = std::strtoull(PQcmdTuples(parts.get()), nullptr, 10);
      conversations_done = true;
    };

    std::uint64_t distinct = s.staged_messages;
    std::uint64_t inserted = 0, updated = 0;
    const bool side_load = s.side;
    // The table that holds the account's messages for the statements below: its partition,
    // or, while a partition is rewritten, the side table that will replace it.
    std::string target;
    std::string replaced_partition;  // rewritten: the partition the side table replaces
    enum class SideOutcome { none, attached, rewritten, merged } outcome = SideOutcome::none;
    if (s.side) {
      // The side table's COPYs end (and commit) once their backends have stored every row.
      s.steps.begin("copy_wait");
      s.send_side_rows();
      if (s.membership_held > 0) s.side_row_count += s.forward_membership_rows();
      s.streams->finish();
      s.steps.begin("lock");  // waits for other loads of the account
      s.lock_account();
      // Under the account's lock: its partition cannot change until the commit.
      const std::string existing = s.account_partition();
      outcome = existing.empty() ? SideOutcome::attached : SideOutcome::merged;
      std::uint64_t new_rows = 0, won_rows = 0;
      // What this session reads of the side table before its indexes are built is read
      // in a savepoint that is rolled back: that releases its lock on the table, so that
      // nothing the streams' connections run on it waits for this session (an ADD
      // CONSTRAINT among the builds once did, until the commit: a deadlock).
      c.exec("SAVEPOINT skype_etl_side_read");
      if (existing == s.own_partition()) {
        s.steps.begin("rewrite_check");
        PgResult k = c.exec(
            "SELECT count(*) FILTER (WHERE o.message_id IS NULL), count(*) FILTER (WHERE "
            "o.message_id IS NOT NULL AND " +
            replaces_sql("s", "o", false) + "), (SELECT count(*) FROM " + existing + ") FROM " +
            s.side_table + " s LEFT JOIN " + existing +
            " o ON o.conversation_id = s.conversation_id AND o.message_id = s.message_id");
        new_rows = static_cast<std::uint64_t>(k.integer(0, 0));
        won_rows = static_cast<std::uint64_t>(k.integer(0, 1));
        // As many new messages as half the stored ones: rewriting all of them (on the
        // streams' connections) beats inserting the new ones through the indexes.
        if (new_rows * 2 >= static_cast<std::uint64_t>(k.integer(0, 2))) {
          outcome = SideOutcome::rewritten;
          replaced_partition = existing;
        }
      }
      if (outcome == SideOutcome::rewritten) {
        s.steps.begin("rewrite");
        // The export's distinct ids: its rows in the side table, and the repeated ids that
        // have none there.
        distinct = s.side_row_count + s.repeated_ids_not_in_side_table();
        c.exec("ROLLBACK TO SAVEPOINT skype_etl_side_read");
        // The side table keeps its rows that replace their stored one, then gets the
        // stored rows it does not replace (each stream copies a share of the conversations).
        // (When no id is in both, neither needs a join.)
        const bool overlap = new_rows < s.side_row_count;
        if (overlap)
          s.steps.add_streams(
              "rewrite",
              s.streams->run_statements({"DELETE FROM " + s.side_table + " s USING " + existing +
                                         " o WHERE o.conversation_id = s.conversation_id AND "
                                         "o.message_id = s.message_id AND NOT " +
                                         replaces_sql("s", "o", false)}),
              {"delete replaced rows"});
        std::vector<std::string> copies;
        const std::size_t shares = s.streams->streams();
        for (std::size_t k = 0; k < shares; ++k)
          copies.push_back(std::string("INSERT INTO ") + s.side_table + " (" + side_columns +
                           ") SELECT " + side_columns + " FROM " + existing +
                           " o WHERE (hashtext(o.conversation_id) & 2147483647) % " +
                           std::to_string(shares) + " = " + std::to_string(k) +
                           (overlap ? " AND NOT EXISTS (SELECT 1 FROM " + s.side_table +
                                          " s WHERE s.conversation_id = o.conversation_id AND "
                                          "s.message_id = o.message_id)"
                                    : std::string()));
        s.steps.add_streams("rewrite", s.streams->run_statements(copies),
                            std::vector<std::string>(copies.size(), "copy stored rows"));
        inserted = new_rows;
        updated = won_rows;
      } else {
        c.exec("ROLLBACK TO SAVEPOINT skype_etl_side_read");
      }
      if (outcome != SideOutcome::merged) {
        // Its indexes, built on the streams' connections at once.
        s.steps.begin("index_build");
        const std::vector<StatementTiming> builds = s.streams->run_statements(s.side_plan.build);
        s.steps.add_streams("index_build", builds, s.side_plan.parent_names);
        for (std::size_t i = 0; i < builds.size(); ++i)
          stream_seconds["index_build_each"][s.side_plan.parent_names[i]] = builds[i].seconds();
        // Statistics for the plans below (see the ANALYZE further down), taken on a stream's
        // connection while this one writes the conversations. It must end before the ATTACH,
        // whose lock it conflicts with. The repeats merged later change a few rows at most.
        auto analysis = std::async(std::launch::async, [&] {
          return s.streams->run_statements({"ANALYZE " + s.side_table});
        });
        s.steps.begin("conversations");
        upsert_conversations();
        s.steps.begin("analyze_wait");
        const std::vector<StatementTiming> analyzed = analysis.get();
        s.steps.add_streams("analyze", analyzed);
        stream_seconds["analyze"] = analyzed.front().seconds();
      }
      if (outcome == SideOutcome::attached) s.steps.begin("attach");
      s.streams.reset();
      if (outcome == SideOutcome::attached && !s.attach_side_table()) outcome = SideOutcome::merged;
      if (outcome == SideOutcome::attached) target = s.own_partition();
      if (outcome == SideOutcome::rewritten) target = s.side_table;
    } else {
      s.steps.begin("lock");  // waits for other loads of the account
      s.lock_account();
    }
    // The repeats of a side load: the winner among each id's repeats, against the id's row
    // in `target`: the id's first occurrence, which precedes them in the file (a tie goes
    // to the repeat, the later in the file, as in a staged load's DISTINCT ON), or the row
    // stored before this export (a tie keeps it). An id with no row is inserted. Returns
    // the ids inserted; adds to `updated` the rows of earlier exports replaced.
    auto merge_repeats = [&] {
      if (s.repeats == 0) return std::uint64_t{0};
      if (outcome != SideOutcome::attached)
        updated += static_cast<std::uint64_t>(
            c.exec_params(std::string("SELECT count(*) FROM (SELECT DISTINCT ON (conversation_id, "
                                      "message_id) * FROM stage_messages ") +
                              staged_winner_order + ") r JOIN " + target +
                              " o ON o.conversation_id = r.conversation_id AND o.message_id = "
                              "r.message_id WHERE o.export_id <> $1::bigint AND " +
                              replaces_sql("r", "o", false),
                          std::vector<std::string>{e})
                .integer(0, 0));
      return s.merge_stage_messages(ae, true, target).first;
    };
    if (outcome == SideOutcome::attached || outcome == SideOutcome::rewritten) {
      s.steps.begin("repeats");
      const std::uint64_t from_repeats = merge_repeats();
      if (outcome == SideOutcome::attached) {
        distinct = s.side_row_count + from_repeats;
        inserted = distinct;
      } else {
        inserted += from_repeats;
      }
    } else {
      s.steps.begin("prepare");
      target = s.ensure_account_partition();
      if (target.empty())
        throw DatabaseError("no partition of skype.messages takes account '" + a +
                            "', and skype-etl could not create one (is a table named skype." +
                            s.partition_name + " in the way?)");
      if (outcome == SideOutcome::merged) {
        // Another load gave the account a partition meanwhile, or its partition holds more
        // than the export adds. The side table's rows (each id's first occurrence) are
        // merged straight from it, then the repeats: what a staged load's DISTINCT ON
        // would keep, without copying the side table into stage_messages.
        distinct = s.side_row_count + s.repeated_ids_not_in_side_table();
        s.steps.begin("messages");
        std::tie(inserted, updated) = s.merge_stage_messages(ae, false, target, s.side_table);
        s.steps.begin("repeats");
        inserted += merge_repeats();
      } else {
        // Distinct (conversation, message) pairs, for the superseded count.
        if (s.repeats > 0)
          distinct = static_cast<std::uint64_t>(
              c.exec("SELECT count(*) FROM (SELECT DISTINCT conversation_id, message_id FROM "
                     "stage_messages) d")
                  .integer(0, 0));
        s.steps.begin("messages");
        std::tie(inserted, updated) = s.merge_stage_messages(ae, false, target);
      }
    }
    // The statements below join the account's partition. When this export changed a good
    // part of it, its statistics (perhaps taken while it was empty) mislead the planner
    // into nested loops over the whole table: 10 s instead of 10 ms for 50k messages.
    // An attached or rewritten side table was analyzed after its builds (one whose ATTACH
    // failed was analyzed in vain: its rows went to another partition).
    const bool target_analyzed =
        outcome == SideOutcome::attached || outcome == SideOutcome::rewritten;
    if (inserted + updated > 1000 && !target_analyzed) {
      const std::string& partition = target;
      const double known_rows = std::strtod(
          std::string(c.exec_params("SELECT coalesce((SELECT reltuples FROM pg_class WHERE "
                                    "oid = to_regclass($1)), 0)",
                                    std::vector<std::string>{partition})
                          .text(0, 0))
              .c_str(),
          nullptr);
      if (!partition.empty() && static_cast<double>(inserted + updated) > known_rows * 0.1) {
        s.steps.begin("analyze");
        c.exec("ANALYZE " + partition);
      }
    }

    // Attachments: those of updated messages are replaced by the new version's. Both
    // statements look messages up by key, one attachment at a time. The partition's
    // statistics (unless just analyzed) know no row of this export, and a join filtered by
    // its export_id was planned as a nested loop over a whole staging table per message:
    // 3,000 new messages beside 1 M took 18 s; 300,000 would take hours.
    s.steps.begin("attachments");
    std::uint64_t attachments_written = 0;
    const std::string message_of_this_export =
        "(SELECT m.source_position FROM " + target +
        " m WHERE m.account_id = $1 AND m.conversation_id = t.conversation_id AND "
        "m.message_id = t.message_id AND m.export_id = $2::bigint)";
    // Nothing of this export is in skype.attachments yet: whatever is stored for a message
    // that is now this export's row belongs to the version it replaced.
    if (updated > 0)
      c.exec_params("DELETE FROM skype.attachments t WHERE t.account_id = $1 AND " +
                        message_of_this_export + " IS NOT NULL",
                    ae);
    // Only the stored version's: the row this export wrote, from the attachment's message.
    if (s.staged_attachments > 0) {
      const std::string columns =
          "$1, t.conversation_id, t.message_id, t.ordinal, t.kind, t.name, t.content_type, "
          "t.uri, t.thumbnail_uri, t.doc_id, t.size, t.width, t.height, t.duration_seconds";
      const std::string stored = " WHERE " + message_of_this_export + " = t.msg_seq";
      const std::string repeated =
          "EXISTS (SELECT 1 FROM stage_messages r WHERE r.conversation_id = t.conversation_id "
          "AND r.message_id = t.message_id)";
      // In an attached side table, a message whose id is not among the repeats is the only
      // one with its id: its attachments need no look at skype.messages (whose whole heap a
      // join would otherwise hash: 6 s at 5 M messages); those of repeated ids are looked up.
      const std::string select =
          outcome == SideOutcome::attached
              ? "WITH repeated AS MATERIALIZED (SELECT * FROM stage_attachments t WHERE " +
                    repeated + ") SELECT " + columns + " FROM stage_attachments t WHERE NOT " +
                    repeated + " UNION ALL SELECT " + columns + " FROM repeated t" + stored
              : "SELECT " + columns + " FROM stage_attachments t" + stored;
      PgResult r = c.exec_params(
          "INSERT INTO skype.attachments (account_id, conversation_id, message_id, ordinal, "
          "kind, name, content_type, uri, thumbnail_uri, doc_id, size, width, height, "
          "duration_seconds) " +
              select + " ON CONFLICT DO NOTHING",
          ae);
      attachments_written = std::strtoull(PQcmdTuples(r.get()), nullptr, 10);
    }

    if (!conversations_done) {
      s.steps.begin("conversations");
      upsert_conversations();
    }
    s.steps.begin("derived");
    // Derived columns. An attached or rewritten partition is aggregated in one scan of it.
    // Otherwise from what the merge did: a conversation that only gained rows adds them up (a small
    // export into a large account no longer scans all of its rows: 0.5 s for 20 k messages beside 2
    // M); one where rows were replaced is counted again, from its own rows only.
    const std::string aggregate =
        "SELECT min(m.sent_at) AS first_at, max(m.sent_at) AS last_at, count(*) AS n FROM " +
        target + " m WHERE m.account_id = $1 AND m.conversation_id = ";
    if (outcome == SideOutcome::attached || outcome == SideOutcome::rewritten) {
      // Aggregated first into a table: an UPDATE's own scan gets no parallel workers, a
      // CREATE TABLE AS does (5 M messages: 2.0-3.3 s -> 1.1-1.3 s with two workers).
      c.exec_params(
          "CREATE TEMP TABLE stage_partition_derived ON COMMIT DROP AS SELECT "
          "m.conversation_id, min(m.sent_at) AS first_at, max(m.sent_at) AS last_at, "
          "count(*) AS n FROM " +
              target + " m WHERE m.account_id = $1 GROUP BY m.conversation_id",
          std::vector<std::string>{a});
      c.exec_params(
          "UPDATE skype.conversations x SET first_message_at = d.first_at, last_message_at = "
          "d.last_at, message_count = d.n FROM stage_partition_derived d WHERE x.account_id = "
          "$1 AND x.conversation_id = d.conversation_id",
          std::vector<std::string>{a});
    } else {
      // Per conversation: a side table merged, then its repeats, each added a row.
      const std::string derived_sums =
          "(SELECT conversation_id, sum(inserted)::bigint AS inserted, sum(updated)::bigint AS "
          "updated, "
          "min(first_at) AS first_at, max(last_at) AS last_at FROM stage_derived GROUP BY "
          "conversation_id)";
      c.exec_params(
          "UPDATE skype.conversations x SET message_count = x.message_count + d.inserted, "
          "first_message_at = least(x.first_message_at, d.first_at), last_message_at = "
          "greatest(x.last_message_at, d.last_at) FROM " +
              derived_sums +
              " d WHERE x.account_id = $1 "
              "AND x.conversation_id = d.conversation_id AND d.updated = 0 AND d.inserted > 0",
          std::vector<std::string>{a});
      c.exec_params(
          "UPDATE skype.conversations x SET first_message_at = d.first_at, last_message_at = "
          "d.last_at, message_count = d.n FROM (SELECT r.conversation_id, a.* FROM " +
              derived_sums + " r CROSS JOIN LATERAL (" + aggregate +
              "r.conversation_id) a WHERE r.updated > 0) d WHERE x.account_id = $1 AND "
              "x.conversation_id = d.conversation_id",
          std::vector<std::string>{a});
    }

    if (outcome == SideOutcome::rewritten) {
      s.steps.begin("swap");
      // The rewritten side table replaces the account's partition. Readers of skype.messages
      // wait from here to the commit (DETACH locks it), a few milliseconds.
      c.exec("ALTER TABLE skype.messages DETACH PARTITION " + replaced_partition);
      c.exec("DROP TABLE " + replaced_partition);
      if (!s.attach_side_table())
        throw DatabaseError("could not attach the rewritten messages of account '" + a +
                            "' as skype." + s.partition_name);
    }
    // The side table became the account's partition.
    const bool attached = outcome == SideOutcome::attached || outcome == SideOutcome::rewritten;
    const std::uint64_t conversations_total = s.conversation_seen.size();
    // The statistics stored are taken before the commit: its step is still running there.
    s.steps.begin("commit");
    const auto merge_seconds = [&] {
      nlohmann::json seconds = s.steps.seconds_since(merge_start_us);
      seconds.update(stream_seconds);
      return seconds;
    };
    result = {
        {"status", "loaded"},
        {"export_id", std::stoll(e)},
        {"account_id", a},
        {"messages", distinct},
        {"messages_staged", s.staged_messages},
        {"inserted", inserted},
        {"updated", updated},
        {"unchanged", distinct - inserted - updated},
        {"superseded", s.staged_messages - distinct},
        {"conversations", conversations_total},
        {"conversations_updated", conversations_updated},
        {"participants", participants_written},
        {"attachments", attachments_written},
        {"membership_texts", membership_described},
        {"batches", s.batches},
        {"index_rebuild", attached},
        {"side_table", side_load ? nlohmann::json{{"streams", s.options.copy_streams},
                                                  {"attached", attached},
                                                  {"rewritten", outcome == SideOutcome::rewritten},
                                                  {"partition", s.partition_name},
                                                  {"repeats", s.repeats}}
                                 : nlohmann::json(nullptr)},
        {"merge_seconds", merge_seconds()},
        {"steps", s.steps.to_json()},
        {"nul_bytes_removed", s.messages.nul_bytes_removed() + s.side_nul_bytes_removed +
                                  s.attachments.nul_bytes_removed() +
                                  s.conversations.nul_bytes_removed()},
        {"json_nul_escapes_replaced", s.messages.json_nul_escapes_replaced() +
                                          s.side_json_nul_escapes_replaced +
                                          s.conversations.json_nul_escapes_replaced()},
    };
    const nlohmann::json statistics = statistics_of(result);
    std::string stats_text =
        statistics.is_null()
            ? std::string()
            : statistics.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string fixed;
    if (replace_json_nul_escapes(stats_text, fixed)) stats_text = std::move(fixed);
    const std::string file_size = std::to_string(s.info.file_size);
    // A file name is bytes; the column is text: stored escaped, losslessly.
    const std::string file_name = escape_file_name(s.info.file_name);
    std::vector<const char*> export_params{
        e.c_str(),
        a.c_str(),
        s.export_date.empty() ? nullptr : s.export_date.c_str(),
        file_name.c_str(),
        file_size.c_str(),
        s.info.digest.get().c_str(),
        stats_text.empty() ? nullptr : stats_text.c_str(),
        s.export_extra.empty() ? nullptr : s.export_extra.c_str()};
    c.exec_params(
        "INSERT INTO skype.exports (export_id, account_id, export_date, file_name, file_size, "
        "file_digest, status, statistics, extra) VALUES ($1::bigint, $2, $3::timestamptz, $4, "
        "$5::bigint, $6, 'loaded', $7::jsonb, $8::jsonb)",
        export_params);
    c.exec("COMMIT");
    s.end_side_table();
    s.steps.end();
    result["merge_seconds"] = merge_seconds();
    result["steps"] = s.steps.to_json();
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
  if (s.streams) s.streams->cancel();
  try {
    if (s.conn.in_copy()) s.conn.cancel_copy();
    s.open_copy = Stage::none;
    if (s.conn.is_ok()) PQclear(PQexec(s.conn.get(), "ROLLBACK"));
  } catch (...) {
  }
  s.end_side_table();
  try {
    s.reset_export();
  } catch (...) {
  }
  s.in_export = false;
}

}  // namespace skype_etl::detail
