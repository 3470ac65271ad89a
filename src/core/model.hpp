// The data that flows through the graph: one Batch per message, handed between nodes as
// std::shared_ptr<Batch>.
//
// Lifetimes: every std::string_view in RawMessage and Message points either into the
// memory-mapped input (kept alive by Batch::input) or into the batch's own TextArena, so
// it is valid exactly as long as the Batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skype_etl/export.hpp"
namespace skype_etl {

/// Append-only storage for text a batch owns (unescaped strings, rewritten content).
/// Views returned by store() stay valid until the arena is destroyed.
class SKYPE_ETL_API TextArena {
 public:
  explicit TextArena(std::size_t block_size = 64 * 1024) : m_block_size(block_size) {}
  TextArena(const TextArena&) = delete;
  TextArena& operator=(const TextArena&) = delete;
  TextArena(TextArena&&) noexcept = default;
  TextArena& operator=(TextArena&&) noexcept = default;

  /// Copies `text` into the arena.
  std::string_view store(std::string_view text);
  /// Reserves `size` writable bytes; commit() the used prefix before the next allocate().
  char* allocate(std::size_t size);
  std::string_view commit(const char* begin, std::size_t used) noexcept;
  std::size_t bytes_used() const noexcept { return m_total; }
  /// True when `text` lies inside what store() or commit() handed out (for checks of the
  /// views' lifetimes, as in the fuzzers; linear in the number of blocks).
  bool owns(std::string_view text) const noexcept;

 private:
  struct Block {
    std::unique_ptr<char[]> data;
    std::size_t size = 0;
    std::size_t used = 0;
  };
  std::size_t m_block_size;
  std::vector<Block> m_blocks;
  std::size_t m_total = 0;
};

/// An export's identity, "sha256:<hex>" of the input file's bytes. It is computed on a
/// thread of its own while the export is read, so it may not be known yet: get() waits.
class SKYPE_ETL_API Digest {
 public:
  Digest() = default;
  /// A digest already known (implicit, so `info.digest = "sha256:..."` works).
  Digest(std::string known);                                 // NOLINT(google-explicit-constructor)
  Digest(const char* known) : Digest(std::string(known)) {}  // NOLINT
  /// A digest being computed.
  explicit Digest(std::shared_future<std::string> pending) : m_value(std::move(pending)) {}

  /// True when get() would not wait.
  bool ready() const;
  /// The digest; waits for it, and rethrows the error if computing it failed.
  const std::string& get() const;

 private:
  std::shared_future<std::string> m_value;
};

/// One input export (a file given on the command line).
struct ExportInfo {
  std::filesystem::path path;
  std::string file_name;        ///< base name of path
  std::string kind;             ///< "json", "tar", "directory", ...
  std::uint64_t file_size = 0;  ///< bytes of the input file
  Digest digest;                ///< identity of the input file's bytes
  std::string user_id;          ///< userId as in the export
  std::string export_date;      ///< exportDate as in the export
  std::size_t index = 0;        ///< position among the run's inputs
};

/// Conversation metadata; shared by every batch holding part of the conversation.
struct ConversationMeta {
  std::string id;
  std::optional<std::string> display_name;  ///< unescaped, markup kept
  std::optional<std::int64_t> version;
  std::string properties_json;         ///< raw JSON text; empty when null or missing
  std::string thread_properties_json;  ///< raw JSON text; empty when null or missing
  std::string topic;                   ///< threadProperties.topic (unescaped)
  std::vector<std::string> members;    ///< threadProperties.members, decoded
  std::string extra_json;              ///< unknown keys as a JSON object text, or empty
  std::size_t index = 0;               ///< position in the export's conversations array
  std::uint64_t offset = 0;            ///< byte offset of the object in the input
};

/// A message as read: views of the export's values (unescaped), nothing interpreted.
struct RawMessage {
  std::string_view id;
  std::optional<std::string_view> display_name;  ///< nullopt when null or missing
  std::string_view original_arrival_time;
  std::string_view message_type;
  std::string_view content;
  std::string_view conversation_id;
  std::string_view from;
  std::optional<std::int64_t> version;
  std::string_view properties_json;      ///< raw JSON of "properties" when an object
  std::string_view edit_time;            ///< properties.edittime as text (string or number)
  std::string_view delete_time;          ///< properties.deletetime as text
  bool is_server_generated = false;      ///< properties.isserversidegenerated true or "True"
  std::string_view emotions_json;        ///< raw JSON of properties.emotions (may be a string)
  std::string_view ams_references_json;  ///< raw JSON array of amsreferences
  std::string_view extra_json;           ///< unknown keys as a JSON object text, or empty
  std::uint32_t position = 0;            ///< index in the conversation's MessageList
  std::uint64_t offset = 0;              ///< byte offset of the message object in the input
};

/// What a tar's media/<docid>.json says about one shared file, with the size of the file
/// itself. Read once per export (--with-media) and shared by every message naming the doc id.
struct MediaMetadata {
  std::string file_name;             ///< "filename"; "" when the metadata gives none
  std::string content_type;          ///< "contents"."1"."type" (or "content_type"); or ""
  std::optional<std::int64_t> size;  ///< bytes of media/<docid>.1.<ext>, when the tar has it
};

/// An export's media metadata by doc id, and what of it was ignored. Immutable once read:
/// every batch of the export shares it (Batch::media).
struct MediaIndex {
  std::map<std::string, MediaMetadata, std::less<>> by_doc_id;
  /// media/<docid>.json files not used: larger than the reader accepts, not JSON, or not a
  /// JSON object. Their doc ids keep the file's size, without name or content type.
  std::uint64_t ignored = 0;
  std::string first_ignored;         ///< the first such entry's name in the tar
  std::string first_ignored_reason;  ///< why it was ignored
};

/// A shared file or media item found in a message.
struct Attachment {
  std::string kind;  ///< picture, file, video, audio, voice_message, call_recording, ...
  std::string name;
  std::string content_type;
  std::string uri;
  std::string thumbnail_uri;
  std::string doc_id;
  std::optional<std::int64_t> size;
  std::optional<std::int64_t> width;
  std::optional<std::int64_t> height;
  std::optional<double> duration_seconds;
};

/// A message after transform: the columns of skype.messages.
struct Message {
  std::string_view message_id;
  std::optional<std::int64_t> version;
  std::optional<std::int64_t> sent_at_us;       ///< microseconds since the Unix epoch, UTC
  std::string_view sender_id;                   ///< canonical MRI ("8:alice"); "" when none
  std::string_view sender_raw;                  ///< `from` as written when it differs, else ""
  std::optional<std::string_view> sender_name;  ///< nullopt when the file gives none (null)
  std::string_view message_type;
  std::string_view content_raw;
  std::string_view content_text;
  bool is_edited = false;
  std::optional<std::int64_t> edited_at_us;
  bool is_deleted = false;
  std::optional<std::int64_t> deleted_at_us;
  bool is_server_generated = false;
  std::string_view properties_json;  ///< raw JSON or empty
  std::string details_json;          ///< structured fields as a JSON object text, or empty
  std::string_view extra_json;       ///< the message's unknown keys as a JSON object, or empty
  std::vector<Attachment> attachments;
};

/// A conversation after transform: the columns of skype.conversations that do not
/// depend on its messages (those are computed by the database at merge time).
struct ConversationRow {
  std::string_view conversation_id;
  std::string conversation_type;  ///< one_to_one, group, bot, system, phone, guest, unknown
  /// Markup removed; "" when the file says "", nullopt when nothing names the conversation.
  std::optional<std::string> display_name;
  std::string topic;
  std::string_view properties_json;
  std::string_view thread_properties_json;
  std::string_view extra_json;       ///< the conversation's unknown keys as a JSON object, or empty
  std::vector<std::string> members;  ///< canonical ids of members and senders, no thread
};

/// Where a message is in its export, for warnings.
struct MessagePlace {
  std::string conversation_id;
  std::size_t conversation_index = 0;  ///< in the export's conversations array, from 0
  std::uint32_t message_index = 0;     ///< in the conversation's MessageList, from 0
  std::uint64_t byte_offset = 0;       ///< of the message object in the input
  std::string raw_value;               ///< the value the warning is about, as found
};

/// Counters of one batch's transform, summed into statistics()["transform"].
struct TransformCounters {
  std::uint64_t nul_characters_removed = 0;
  std::uint64_t broken_markup = 0;
  std::uint64_t invalid_timestamps = 0;  ///< originalarrivaltime missing or unparsable
  std::optional<MessagePlace> first_invalid_timestamp;  ///< the batch's first such message
  std::map<std::string, std::uint64_t, std::less<>> unknown_types;
};

/// A slice of one conversation inside a batch: messages [first_message, first_message+count).
struct ConversationChunk {
  std::shared_ptr<const ConversationMeta> conversation;
  std::size_t first_message = 0;
  std::size_t message_count = 0;
  bool starts_conversation = false;  ///< the conversation's first chunk
  bool ends_conversation = false;    ///< the conversation's last chunk
};

/// What travels along the graph's edges.
struct Batch {
  std::shared_ptr<const ExportInfo> source;
  std::shared_ptr<const void> input;  ///< keeps the mapped input alive
  std::uint64_t sequence = 0;         ///< global order across the run (sequencer_node)
  std::uint64_t export_sequence = 0;  ///< order inside its export, from 0
  bool last_of_export = false;        ///< nothing of this export follows
  /// On the batch marked last_of_export: the top-level object's unknown keys as a JSON
  /// object text (those after the conversations array are known only then), or empty.
  std::string export_extra_json;
  std::vector<ConversationChunk> chunks;
  std::vector<RawMessage> raw;  ///< every chunk's messages, in input order
  TextArena arena;
  /// With --with-media: the export's media metadata, the same object for all its batches
  /// (attachments look their doc ids up in it); null otherwise.
  std::shared_ptr<const MediaIndex> media;

  // Filled by transform:
  std::vector<Message> messages;               ///< parallel to raw
  std::vector<ConversationRow> conversations;  ///< one per chunk that starts a conversation
  TransformCounters counters;
};

using BatchPtr = std::shared_ptr<Batch>;

}  // namespace skype_etl
