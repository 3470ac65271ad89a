#include "load/merge.hpp"

#include <vector>

#include "core/file_name.hpp"
#include "load/copy_writer.hpp"
#include "load/partitions.hpp"
#include "load/pg_connection.hpp"

namespace skype_etl::detail {

std::string replaces_sql(const std::string& a, const std::string& b, bool ties_to_export) {
  const std::string left = "ROW(" + a + ".version IS NOT NULL, coalesce(" + a + ".version, 0), " +
                           a + ".edited_at IS NOT NULL, coalesce(" + a + ".edited_at, 'epoch'))";
  const std::string right = "ROW(" + b + ".version IS NOT NULL, coalesce(" + b + ".version, 0), " +
                            b + ".edited_at IS NOT NULL, coalesce(" + b + ".edited_at, 'epoch'))";
  if (!ties_to_export) return left + " > " + right;
  return "(" + left + " > " + right + " OR (" + left + " = " + right + " AND " + b +
         ".export_id = $2::bigint))";
}

std::uint64_t count_distinct_staged_ids(PgConnection& conn) {
  return static_cast<std::uint64_t>(
      conn.exec("SELECT count(*) FROM (SELECT DISTINCT conversation_id, message_id FROM "
                "stage_messages) d")
          .integer(0, 0));
}

std::pair<std::uint64_t, std::uint64_t> merge_messages(PgConnection& conn, const MergedExport& x,
                                                       bool had_repeats, bool ties_to_staged,
                                                       const std::string& partition,
                                                       const std::string& side_rows) {
  const bool dedupe = had_repeats && side_rows.empty();
  auto replaces = [&](const std::string& a, const std::string& b) {
    return replaces_sql(a, b, ties_to_staged);
  };
  // A partition split into hash partitions (SideSplit) takes the rows part by part: only
  // a table, not a partitioned one, returns xmax, which tells an insert from an update.
  std::vector<HashPart> parts = hash_parts(conn, partition);
  if (parts.empty()) parts.push_back({partition, {}, 0, 0});
  std::uint64_t inserted = 0, updated = 0;
  for (const HashPart& part : parts) {
    // Staged rows that would not replace their stored row are left out before the INSERT:
    // ON CONFLICT would lock (and so rewrite) every stored row it keeps
    // (benchmarks/README.md, "staged merge").
    const std::string select =
        std::string("SELECT ") + (dedupe ? "DISTINCT ON (conversation_id, message_id) " : "") +
        "$1, conversation_id, message_id, version, sent_at, sender_id, sender_raw, sender_name, "
        "message_type, content_raw, content_text, is_edited, edited_at, is_deleted, "
        "deleted_at, is_server_generated, properties, details, extra, $2::bigint, " +
        (side_rows.empty() ? "seq FROM stage_messages" : "source_position FROM " + side_rows) +
        " s WHERE NOT EXISTS (SELECT 1 FROM " + part.table +
        " o WHERE o.account_id = $1 AND o.conversation_id = s.conversation_id AND "
        "o.message_id = s.message_id AND NOT " +
        replaces("s", "o") + ")" + (part.parent.empty() ? "" : " AND " + part.holds("s")) +
        (dedupe ? std::string(" ") + staged_winner_order : std::string());
    PgResult r = conn.exec_params(
        "WITH upserted AS (INSERT INTO " + part.table +
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
        std::vector<std::string>{x.account_id, x.export_id});
    inserted += static_cast<std::uint64_t>(r.integer(0, 0));
    updated += static_cast<std::uint64_t>(r.integer(0, 1));
  }
  return {inserted, updated};
}

std::pair<std::uint64_t, std::uint64_t> merge_repeats(PgConnection& conn, const MergedExport& x,
                                                      const std::string& target,
                                                      bool count_replaced) {
  std::uint64_t replaced = 0;
  if (count_replaced)
    replaced = static_cast<std::uint64_t>(
        conn.exec_params(std::string("SELECT count(*) FROM (SELECT DISTINCT ON (conversation_id, "
                                     "message_id) * FROM stage_messages ") +
                             staged_winner_order + ") r JOIN " + target +
                             " o ON o.conversation_id = r.conversation_id AND o.message_id = "
                             "r.message_id WHERE o.export_id <> $1::bigint AND " +
                             replaces_sql("r", "o", false),
                         std::vector<std::string>{x.export_id})
            .integer(0, 0));
  return {merge_messages(conn, x, true, true, target).first, replaced};
}

std::uint64_t merge_attachments(PgConnection& conn, const MergedExport& x,
                                const std::string& target, bool messages_replaced, bool any_staged,
                                bool attached_side_table) {
  // Both statements look messages up by key, one attachment at a time. The partition's
  // statistics (unless just analyzed) know no row of this export, and a join filtered by
  // its export_id was planned as a nested loop over a whole staging table per message
  // (benchmarks/README.md, "attachments looked up by key").
  const std::vector<std::string> ae{x.account_id, x.export_id};
  const std::string message_of_this_export =
      "(SELECT m.source_position FROM " + target +
      " m WHERE m.account_id = $1 AND m.conversation_id = t.conversation_id AND "
      "m.message_id = t.message_id AND m.export_id = $2::bigint)";
  // Nothing of this export is in skype.attachments yet: whatever is stored for a message
  // that is now this export's row belongs to the version it replaced.
  if (messages_replaced)
    conn.exec_params("DELETE FROM skype.attachments t WHERE t.account_id = $1 AND " +
                         message_of_this_export + " IS NOT NULL",
                     ae);
  if (!any_staged) return 0;
  // Only the stored version's: the row this export wrote, from the attachment's message.
  const std::string columns =
      "$1, t.conversation_id, t.message_id, t.ordinal, t.kind, t.name, t.content_type, "
      "t.uri, t.thumbnail_uri, t.doc_id, t.size, t.width, t.height, t.duration_seconds";
  const std::string stored = " WHERE " + message_of_this_export + " = t.msg_seq";
  const std::string repeated =
      "EXISTS (SELECT 1 FROM stage_messages r WHERE r.conversation_id = t.conversation_id "
      "AND r.message_id = t.message_id)";
  // In an attached side table, a message whose id is not among the repeats is the only
  // one with its id: its attachments need no look at skype.messages (whose whole heap a
  // join would otherwise hash); those of repeated ids are looked up.
  const std::string select =
      attached_side_table
          ? "WITH repeated AS MATERIALIZED (SELECT * FROM stage_attachments t WHERE " + repeated +
                ") SELECT " + columns + " FROM stage_attachments t WHERE NOT " + repeated +
                " UNION ALL SELECT " + columns + " FROM repeated t" + stored
          : "SELECT " + columns + " FROM stage_attachments t" + stored;
  return conn
      .exec_params(
          "INSERT INTO skype.attachments (account_id, conversation_id, message_id, ordinal, "
          "kind, name, content_type, uri, thumbnail_uri, doc_id, size, width, height, "
          "duration_seconds) " +
              select + " ON CONFLICT DO NOTHING",
          ae)
      .affected_rows();
}

ConversationCounts merge_conversations(PgConnection& conn, const MergedExport& x) {
  const char* export_date = x.export_date.empty() ? nullptr : x.export_date.c_str();
  // The account; its display name and userId as written come from the newest export.
  std::vector<const char*> account_params{
      x.account_id.c_str(), x.owner_display_name.empty() ? nullptr : x.owner_display_name.c_str(),
      export_date, x.user_id.c_str()};
  const std::string newest =
      "(x.last_export_date IS NULL OR excluded.last_export_date IS NULL OR "
      "excluded.last_export_date >= x.last_export_date)";
  conn.exec_params(
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
  std::vector<const char*> conv_params{x.account_id.c_str(), x.export_id.c_str(), export_date};
  const PgResult conv = conn.exec_params(
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
  conn.exec_params(
      "INSERT INTO skype.conversations (account_id, conversation_id, conversation_type, "
      "display_name, topic, properties, thread_properties, extra, export_id) "
      "SELECT DISTINCT ON (conversation_id) $1, conversation_id, conversation_type, "
      "display_name, topic, properties, thread_properties, extra, $2::bigint "
      "FROM stage_conversations WHERE NOT described ORDER BY conversation_id "
      "ON CONFLICT (account_id, conversation_id) DO NOTHING",
      std::vector<std::string>{x.account_id, x.export_id});

  const PgResult parts = conn.exec_params(
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
      std::vector<std::string>{x.account_id});
  return {conv.affected_rows(), parts.affected_rows()};
}

void update_derived_columns(PgConnection& conn, const MergedExport& x, const std::string& target,
                            bool whole_partition) {
  const std::vector<std::string> a{x.account_id};
  if (whole_partition) {
    // Aggregated first into a table: an UPDATE's own scan gets no parallel workers, a
    // CREATE TABLE AS does (benchmarks/README.md, "Figures that were in the code's comments").
    conn.exec_params(
        "CREATE TEMP TABLE stage_partition_derived ON COMMIT DROP AS SELECT "
        "m.conversation_id, min(m.sent_at) AS first_at, max(m.sent_at) AS last_at, "
        "count(*) AS n FROM " +
            target + " m WHERE m.account_id = $1 GROUP BY m.conversation_id",
        a);
    conn.exec_params(
        "UPDATE skype.conversations x SET first_message_at = d.first_at, last_message_at = "
        "d.last_at, message_count = d.n FROM stage_partition_derived d WHERE x.account_id = "
        "$1 AND x.conversation_id = d.conversation_id",
        a);
    return;
  }
  // From what the merge did: a conversation that only gained rows adds them up (a small
  // export into a large account scans none of its other rows); one where rows were
  // replaced is counted again, from its own rows only. Per conversation, a side table
  // merged, then its repeats, each added a row of stage_derived.
  const std::string aggregate =
      "SELECT min(m.sent_at) AS first_at, max(m.sent_at) AS last_at, count(*) AS n FROM " + target +
      " m WHERE m.account_id = $1 AND m.conversation_id = ";
  const std::string derived_sums =
      "(SELECT conversation_id, sum(inserted)::bigint AS inserted, sum(updated)::bigint AS "
      "updated, "
      "min(first_at) AS first_at, max(last_at) AS last_at FROM stage_derived GROUP BY "
      "conversation_id)";
  conn.exec_params(
      "UPDATE skype.conversations x SET message_count = x.message_count + d.inserted, "
      "first_message_at = least(x.first_message_at, d.first_at), last_message_at = "
      "greatest(x.last_message_at, d.last_at) FROM " +
          derived_sums +
          " d WHERE x.account_id = $1 "
          "AND x.conversation_id = d.conversation_id AND d.updated = 0 AND d.inserted > 0",
      a);
  conn.exec_params(
      "UPDATE skype.conversations x SET first_message_at = d.first_at, last_message_at = "
      "d.last_at, message_count = d.n FROM (SELECT r.conversation_id, a.* FROM " +
          derived_sums + " r CROSS JOIN LATERAL (" + aggregate +
          "r.conversation_id) a WHERE r.updated > 0) d WHERE x.account_id = $1 AND "
          "x.conversation_id = d.conversation_id",
      a);
}

void insert_export_row(PgConnection& conn, const MergedExport& x, const ExportInfo& info,
                       const nlohmann::json& statistics, const std::string& extra) {
  std::string stats_text =
      statistics.is_null()
          ? std::string()
          : statistics.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string fixed;
  if (replace_json_nul_escapes(stats_text, fixed)) stats_text = std::move(fixed);
  const std::string file_size = std::to_string(info.file_size);
  // A file name is bytes; the column is text: stored escaped, losslessly.
  const std::string file_name = escape_file_name(info.file_name);
  std::vector<const char*> params{x.export_id.c_str(),
                                  x.account_id.c_str(),
                                  x.export_date.empty() ? nullptr : x.export_date.c_str(),
                                  file_name.c_str(),
                                  file_size.c_str(),
                                  info.digest.get().c_str(),
                                  stats_text.empty() ? nullptr : stats_text.c_str(),
                                  extra.empty() ? nullptr : extra.c_str()};
  conn.exec_params(
      "INSERT INTO skype.exports (export_id, account_id, export_date, file_name, file_size, "
      "file_digest, status, statistics, extra) VALUES ($1::bigint, $2, $3::timestamptz, $4, "
      "$5::bigint, $6, 'loaded', $7::jsonb, $8::jsonb)",
      params);
}

}  // namespace skype_etl::detail
