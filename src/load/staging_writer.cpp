#include "load/staging_writer.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/identity.hpp"
#include "load/membership_text.hpp"
#include "load/partition_hash.hpp"
#include "load/pg_connection.hpp"
#include "load/repeat_tracker.hpp"

namespace skype_etl::detail {
namespace {

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

}  // namespace

StagingWriter::StagingWriter(PgConnection& conn, std::size_t flush_bytes)
    : m_conn(conn), m_flush_bytes(flush_bytes) {}

void StagingWriter::create_tables() {
  m_conn.exec(create_staging_sql);
}

void StagingWriter::reset() {
  m_account_id.clear();
  m_export_number = 0;
  m_to_side = false;
  m_messages = CopyBuffer(CopyFormat::binary);
  m_side_rows.clear();
  m_attachments = CopyBuffer();
  m_conversations = CopyBuffer();
  m_participants = CopyBuffer();
  m_membership = CopyBuffer(CopyFormat::binary);
  m_open = Stage::none;
  m_staged_messages = m_side_row_count = m_staged_attachments = m_membership_held = 0;
  m_conversation_seen.clear();
  m_undescribed.clear();
  m_senders_conversation.clear();
  m_senders.clear();
}

void StagingWriter::route_first_occurrences_to_side(std::size_t parts) {
  m_to_side = true;
  m_side_rows.clear();
  for (std::size_t part = 0; part < std::max<std::size_t>(parts, 1); ++part)
    m_side_rows.emplace_back(CopyFormat::binary);
}

void StagingWriter::set_export(const std::string& account_id, std::int64_t export_number) {
  m_account_id = account_id;
  m_export_number = export_number;
}

void StagingWriter::stage_batch(const Batch& batch, RepeatTracker& repeats,
                                const SideRowSink& send_side) {
  std::vector<ChunkSender> chunk_senders;
  for (const ConversationChunk& chunk : batch.chunks) {
    if (!chunk.conversation)
      throw std::invalid_argument("Loader::load_batch: a chunk without its conversation");
    const ConversationMeta& meta = *chunk.conversation;
    if (chunk.first_message + chunk.message_count > batch.messages.size())
      throw std::invalid_argument("Loader::load_batch: chunk of conversation '" + meta.id +
                                  "' lies outside batch.messages (not transformed?)");
    auto seen = m_conversation_seen.try_emplace(meta.id, false);
    if (seen.second) m_undescribed.emplace(meta.id, chunk.conversation);
    repeats.start_conversation(meta.id);
    for (std::size_t i = chunk.first_message; i < chunk.first_message + chunk.message_count; ++i) {
      const Message& m = batch.messages[i];
      const std::uint64_t seq = m_staged_messages++;
      stage_message(seq, meta.id, m, repeats.is_repeat(m.message_id));
      note_sender(meta.id, m, chunk_senders);
      if (m_messages.size() >= m_flush_bytes) send(Stage::messages, m_messages);
      for (std::size_t part = 0; part < m_side_rows.size(); ++part)
        if (m_side_rows[part].size() >= m_flush_bytes) send_side(part, m_side_rows[part]);
    }
    flush_chunk_senders(meta.id, chunk_senders);
  }
  for (const ConversationRow& row : batch.conversations) {
    const std::string id(row.conversation_id);
    m_conversation_seen[id] = true;
    m_undescribed.erase(id);
    stage_conversation_row(row);
  }
  // Rows of the small tables go out as they accumulate, not at the end of the export.
  if (m_conversations.size() >= m_flush_bytes) send(Stage::conversations, m_conversations);
  if (m_participants.size() >= m_flush_bytes) send(Stage::participants, m_participants);
  if (m_membership.size() >= m_flush_bytes) send(Stage::membership, m_membership);
  if (m_attachments.size() >= m_flush_bytes) {
    send(Stage::messages, m_messages);
    send(Stage::attachments, m_attachments);
  }
  if (m_messages.size() >= m_flush_bytes) send(Stage::messages, m_messages);
}

void StagingWriter::stage_rest() {
  // Conversations seen only through their chunks (no ConversationRow) still get a row.
  for (const auto& [id, held] : m_undescribed) {
    const ConversationMeta* meta = held.get();
    CopyBuffer& b = m_conversations;
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
  stage_senders();
  send(Stage::messages, m_messages);
  send(Stage::attachments, m_attachments);
  send(Stage::conversations, m_conversations);
  send(Stage::participants, m_participants);
  send(Stage::membership, m_membership);
  end_copy();
}

void StagingWriter::end_copy() {
  if (m_open == Stage::none) return;
  m_open = Stage::none;
  if (m_open_binary) m_conn.put_copy_data(binary_copy_trailer());
  m_conn.end_copy();
}

std::uint64_t StagingWriter::nul_bytes_removed() const noexcept {
  return m_messages.nul_bytes_removed() + m_attachments.nul_bytes_removed() +
         m_conversations.nul_bytes_removed();
}

std::uint64_t StagingWriter::json_nul_escapes_replaced() const noexcept {
  return m_messages.json_nul_escapes_replaced() + m_conversations.json_nul_escapes_replaced();
}

/// Sends `buffer` into staging table `stage`, keeping that COPY open for more.
void StagingWriter::send(Stage stage, CopyBuffer& buffer) {
  if (buffer.empty()) return;
  if (m_open != stage) {
    end_copy();
    const char* sql = "";
    switch (stage) {
      case Stage::messages:
        sql = "COPY stage_messages FROM STDIN (FORMAT binary)";
        break;
      case Stage::attachments:
        sql = "COPY stage_attachments FROM STDIN";
        break;
      case Stage::conversations:
        sql = "COPY stage_conversations FROM STDIN";
        break;
      case Stage::participants:
        sql = "COPY stage_participants FROM STDIN";
        break;
      case Stage::membership:
        sql = "COPY stage_membership_rows FROM STDIN (FORMAT binary)";
        break;
      case Stage::none:
        break;
    }
    m_conn.copy_in(sql);
    m_open = stage;
    m_open_binary = buffer.binary();
    if (m_open_binary) m_conn.put_copy_data(binary_copy_header());
  }
  m_conn.put_copy_data(buffer.view());
  buffer.clear();
}

/// Stages message `m` at position `seq`: a membership event into stage_membership_rows,
/// else into the side table unless this is a staged load or the message a repeat, else
/// into stage_messages.
void StagingWriter::stage_message(std::uint64_t seq, std::string_view conversation_id,
                                  const Message& m, bool repeat) {
  const bool held = may_hold_membership(m.details_json);
  const bool to_side = m_to_side && !repeat && !held;
  CopyBuffer& b = held ? m_membership
                  : to_side
                      ? m_side_rows[m_side_rows.size() > 1
                                        ? text_hash_partition(m.message_id, m_side_rows.size())
                                        : 0]
                      : m_messages;
  b.integer(static_cast<std::int64_t>(seq));
  b.text(conversation_id);
  append_message_columns(b, m);
  if (to_side) {
    b.text(m_account_id);
    b.integer(m_export_number);
    ++m_side_row_count;
  }
  if (held) {
    b.boolean(repeat);
    ++m_membership_held;
  }
  b.end_row();
  std::int32_t ordinal = 0;
  for (const Attachment& a : m.attachments) {
    CopyBuffer& t = m_attachments;
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
    ++m_staged_attachments;
  }
}

void StagingWriter::stage_conversation_row(const ConversationRow& row) {
  CopyBuffer& b = m_conversations;
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
    m_participants.text(row.conversation_id);
    m_participants.text(member);
    m_participants.null();
    m_participants.null();
    m_participants.end_row();
  }
}

/// Notes the sender of `m` among the chunk's (at most 64, then merged into m_senders).
void StagingWriter::note_sender(std::string_view conversation_id, const Message& m,
                                std::vector<ChunkSender>& chunk) {
  // A thread is no participant: its system messages carry its id as their sender.
  if (m.sender_id.empty() || is_thread_id(m.sender_id)) return;
  const std::int64_t at = m.sent_at_us.value_or(INT64_MIN);
  ChunkSender* sender = nullptr;
  for (ChunkSender& c : chunk)
    if (c.id == m.sender_id) {
      sender = &c;
      break;
    }
  if (!sender) {
    if (chunk.size() >= 64) flush_chunk_senders(conversation_id, chunk);
    chunk.push_back({m.sender_id, {}, INT64_MIN, INT64_MIN});
    sender = &chunk.back();
  }
  sender->last_seen = std::max(sender->last_seen, at);
  if (m.sender_name && at >= sender->name_at) {
    sender->name = m.sender_name;
    sender->name_at = at;
  }
}

void StagingWriter::flush_chunk_senders(std::string_view conversation_id,
                                        std::vector<ChunkSender>& chunk) {
  if (m_senders_conversation != conversation_id) {
    stage_senders();
    m_senders_conversation.assign(conversation_id);
  }
  for (const ChunkSender& s : chunk) {
    SenderInfo& info = m_senders[std::string(s.id)];
    info.last_seen = std::max(info.last_seen, s.last_seen);
    if (s.name && s.name_at >= info.name_at) {
      info.name.emplace(*s.name);
      info.name_at = s.name_at;
    }
  }
  chunk.clear();
}

/// Stages the senders gathered for m_senders_conversation.
void StagingWriter::stage_senders() {
  for (const auto& [id, info] : m_senders) {
    m_participants.text(m_senders_conversation);
    m_participants.text(id);
    m_participants.nullable_text(info.name);
    if (info.last_seen == INT64_MIN)
      m_participants.null();
    else
      m_participants.timestamp_us(info.last_seen);
    m_participants.end_row();
  }
  m_senders.clear();
}

}  // namespace skype_etl::detail
