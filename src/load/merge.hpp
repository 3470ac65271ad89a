// The merge of an export's staged rows into the final tables, one function per group of
// statements; all run inside the export's transaction on the loader's connection, under
// the account's lock.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/model.hpp"

namespace skype_etl::detail {

class PgConnection;

/// The export being merged, as its statements need it.
struct MergedExport {
  std::string account_id;
  std::string export_id;           // skype.exports.export_id, as text
  std::string export_date;         // timestamptz text, "" when unknown
  std::string owner_display_name;  // "" when not given
  std::string user_id;             // the export's userId as written
};

/// Of several rows of one id in stage_messages, the export's own winner comes first: the
/// highest version, then the latest edit, then the last in the file.
constexpr const char* staged_winner_order =
    "ORDER BY conversation_id, message_id, version DESC NULLS LAST, edited_at DESC NULLS LAST, "
    "seq DESC";

/// SQL: whether message row `a` replaces stored row `b` of its id: a higher version, or the
/// same and a later edit (a missing version or edit loses to any). On a tie `b` stays,
/// unless `ties_to_export` and `b` is a row of this export ($2): then `a`, a later row of
/// the same export, replaces it.
std::string replaces_sql(const std::string& a, const std::string& b, bool ties_to_export);

/// Distinct (conversation, message) ids in stage_messages.
std::uint64_t count_distinct_staged_ids(PgConnection& conn);

/// INSERT ... ON CONFLICT of stage_messages into `partition` (the account's partition or
/// the side table that becomes it: the inserted/replaced count needs xmax, which a
/// partitioned table cannot return). Of each id, when `had_repeats`, only its winner in the
/// export (staged_winner_order). A stored row is replaced as replaces_sql says: on a tie it
/// stays, so reloading the same messages changes nothing, unless `ties_to_staged` and it is
/// an earlier row of this export. With `side_rows`, the rows come from that side table
/// instead (one per id: no winner to choose). Returns the rows inserted and replaced, and
/// adds them up per conversation in stage_derived.
std::pair<std::uint64_t, std::uint64_t> merge_messages(PgConnection& conn, const MergedExport& x,
                                                       bool had_repeats, bool ties_to_staged,
                                                       const std::string& partition,
                                                       const std::string& side_rows = {});

/// The repeats of a side load: the winner among each id's repeats, against the id's row in
/// `target`: the id's first occurrence, which precedes them in the file (a tie goes to the
/// repeat, the later in the file, as in a staged load's DISTINCT ON), or the row stored
/// before this export (a tie keeps it). An id with no row is inserted. Returns the ids
/// inserted and, when `count_replaced`, the rows of earlier exports replaced (else 0).
std::pair<std::uint64_t, std::uint64_t> merge_repeats(PgConnection& conn, const MergedExport& x,
                                                      const std::string& target,
                                                      bool count_replaced);

/// Attachments: those of messages this export replaced (`messages_replaced`) are deleted,
/// then the staged ones of the messages whose stored row is now this export's are inserted
/// (`any_staged`: stage_attachments has rows). `attached_side_table`: `target` is a side
/// table just attached, whose rows of ids that were not repeated need no lookup. Returns
/// the attachments inserted.
std::uint64_t merge_attachments(PgConnection& conn, const MergedExport& x,
                                const std::string& target, bool messages_replaced, bool any_staged,
                                bool attached_side_table);

/// What merge_conversations wrote.
struct ConversationCounts {
  std::uint64_t conversations = 0;  // described conversations inserted or updated
  std::uint64_t participants = 0;   // participant rows inserted or updated
};
/// The account, its conversations and their participants (they need nothing of the
/// messages): descriptive columns from the newest export that describes them.
ConversationCounts merge_conversations(PgConnection& conn, const MergedExport& x);

/// The conversations' derived columns (first/last message time, message count). With
/// `whole_partition` (an attached or rewritten partition), aggregated in one scan of
/// `target`; otherwise from what the merge did (stage_derived).
void update_derived_columns(PgConnection& conn, const MergedExport& x, const std::string& target,
                            bool whole_partition);

/// The row of skype.exports: `info`'s file, `statistics` (null: none) and the export's
/// unknown top-level keys (`extra`, JSON text or "").
void insert_export_row(PgConnection& conn, const MergedExport& x, const ExportInfo& info,
                       const nlohmann::json& statistics, const std::string& extra);

}  // namespace skype_etl::detail
