// Staging: an export's rows COPYed into temporary tables (or, for a side-table load, its
// messages' first occurrences into a buffer for the side table's streams) as its batches
// come, with the senders of each conversation aggregated on the way.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/model.hpp"
#include "load/copy_writer.hpp"

namespace skype_etl::detail {

class PgConnection;
class RepeatTracker;

/// The columns of stage_messages (stage_membership_rows has them too).
constexpr const char* staged_columns =
    "seq, conversation_id, message_id, version, sent_at, sender_id, sender_raw, sender_name, "
    "message_type, content_raw, content_text, is_edited, edited_at, is_deleted, deleted_at, "
    "is_server_generated, properties, details, extra";

/// The held membership rows as stage_messages' columns, with the text and names that
/// describe_membership_rows wrote for them (in stage_membership_text): held_rows_select,
/// then any further columns, then held_rows_from.
constexpr const char* held_rows_select =
    "SELECT r.seq, r.conversation_id, r.message_id, r.version, r.sent_at, r.sender_id, "
    "r.sender_raw, r.sender_name, r.message_type, r.content_raw, coalesce(t.content_text, "
    "r.content_text), r.is_edited, r.edited_at, r.is_deleted, r.deleted_at, "
    "r.is_server_generated, r.properties, CASE WHEN t.names IS NULL THEN r.details ELSE "
    "jsonb_set(r.details, '{membership,names}', t.names) END, r.extra";
constexpr const char* held_rows_from =
    " FROM stage_membership_rows r LEFT JOIN stage_membership_text t ON t.seq = r.seq";

/// Writes one export's rows into the staging tables of the loader's connection: temporary
/// tables (never WAL-logged, dropped at COMMIT or ROLLBACK, invisible to other sessions),
/// without indexes or constraints so COPY into them runs at full speed. Message rows go in
/// COPY's binary format (the server's share of their COPY is the bottleneck of reading an
/// export), the other tables in text; one COPY at a time stays open on the connection.
/// Not thread-safe.
class StagingWriter {
 public:
  /// Receives the side table's rows of part `part` once flush_bytes of them are buffered.
  using SideRowSink = std::function<void(std::size_t part, CopyBuffer& rows)>;

  /// COPY data goes to the server once `flush_bytes` are buffered for a table.
  StagingWriter(PgConnection& conn, std::size_t flush_bytes);
  StagingWriter(const StagingWriter&) = delete;
  StagingWriter& operator=(const StagingWriter&) = delete;

  /// Creates the staging tables (inside the export's transaction).
  void create_tables();
  /// Forgets the export: buffers, counters, conversations and senders.
  void reset();
  /// The account and export number a side table's rows carry.
  void set_export(const std::string& account_id, std::int64_t export_number);
  /// From now on, messages that are neither repeats nor membership events go to
  /// side_rows() instead of stage_messages (a side-table load), each to the buffer of the
  /// hash partition of `parts` its message_id belongs in (SideTable::parts()).
  void route_first_occurrences_to_side(std::size_t parts);

  /// Stages the batch's messages (each noted in `repeats`), attachments, conversations and
  /// participants; hands side rows to `send_side` as they fill a buffer.
  void stage_batch(const Batch& batch, RepeatTracker& repeats, const SideRowSink& send_side);
  /// At the end of the export: stages a row for each conversation seen only through its
  /// messages, the last conversation's senders, and sends everything buffered (but
  /// side_rows()); no COPY stays open.
  void stage_rest();
  /// Ends the COPY in progress, if any (before another statement on the connection).
  void end_copy();
  /// Forgets the COPY in progress (the connection's was cancelled). Never throws.
  void forget_copy() noexcept { m_open = Stage::none; }

  /// Rows for the side table not sent yet, by part.
  std::vector<CopyBuffer>& side_rows() noexcept { return m_side_rows; }
  /// Messages staged (and sent to the side table), the export's positions 0..n-1.
  std::uint64_t messages() const noexcept { return m_staged_messages; }
  /// Messages sent to side_rows().
  std::uint64_t side_row_count() const noexcept { return m_side_row_count; }
  std::uint64_t attachments() const noexcept { return m_staged_attachments; }
  /// Messages that may be membership events, held in stage_membership_rows.
  std::uint64_t membership_held() const noexcept { return m_membership_held; }
  /// Distinct conversations of the export.
  std::uint64_t conversations() const noexcept { return m_conversation_seen.size(); }
  /// NUL bytes dropped from messages, attachments and conversations (side rows apart).
  std::uint64_t nul_bytes_removed() const noexcept;
  /// \u0000 escapes replaced in JSON of messages and conversations (side rows apart).
  std::uint64_t json_nul_escapes_replaced() const noexcept;

 private:
  enum class Stage { none, messages, attachments, conversations, participants, membership };
  // A sender's name is the latest non-null one; "" is a name (the file said so).
  struct SenderInfo {
    std::optional<std::string> name;
    std::int64_t name_at = INT64_MIN;
    std::int64_t last_seen = INT64_MIN;
  };
  // The senders of a chunk, gathered before they are merged into m_senders.
  struct ChunkSender {
    std::string_view id;
    std::optional<std::string_view> name;
    std::int64_t name_at = INT64_MIN;
    std::int64_t last_seen = INT64_MIN;
  };

  void send(Stage stage, CopyBuffer& buffer);
  void stage_message(std::uint64_t seq, std::string_view conversation_id, const Message& m,
                     bool repeat);
  void stage_conversation_row(const ConversationRow& row);
  void note_sender(std::string_view conversation_id, const Message& m,
                   std::vector<ChunkSender>& chunk);
  void flush_chunk_senders(std::string_view conversation_id, std::vector<ChunkSender>& chunk);
  void stage_senders();

  PgConnection& m_conn;
  std::size_t m_flush_bytes;
  std::string m_account_id;
  std::int64_t m_export_number = 0;
  bool m_to_side = false;

  // `m_messages` feeds stage_messages (in a side-table load only the repeats),
  // `m_side_rows` the side table's streams.
  CopyBuffer m_messages{CopyFormat::binary};
  std::vector<CopyBuffer> m_side_rows;  // one per part of the side table
  CopyBuffer m_attachments;
  CopyBuffer m_conversations;
  CopyBuffer m_participants;  // members and senders, staged as they come
  // Messages whose details may hold a membership event wait in stage_membership_rows (not
  // in memory: it stays flat however many there are) until finish_export knows the names
  // every batch brought; with their text written (describe_membership_rows) they join the
  // others, before the merge and before a side table's indexes are built.
  CopyBuffer m_membership{CopyFormat::binary};
  Stage m_open = Stage::none;
  bool m_open_binary = false;  // the open COPY is in binary format
  std::uint64_t m_staged_messages = 0;
  std::uint64_t m_side_row_count = 0;
  std::uint64_t m_staged_attachments = 0;
  std::uint64_t m_membership_held = 0;

  // Conversations seen in chunks (id → a ConversationRow was staged).
  std::unordered_map<std::string, bool> m_conversation_seen;
  // Metadata of conversations seen but not described yet (the transform describes each in
  // the batch of its first chunk, so this stays small).
  std::unordered_map<std::string, std::shared_ptr<const ConversationMeta>> m_undescribed;
  // Senders of the conversation being loaded: id → what their messages say. They are
  // staged when another conversation begins, so memory holds one conversation's senders
  // rather than the whole export's (the merge aggregates repeated rows).
  std::string m_senders_conversation;
  std::unordered_map<std::string, SenderInfo> m_senders;
};

}  // namespace skype_etl::detail
