// Reading loaded history out of skype.* for `skype-etl export` and `skype-etl stats`
// (archive.hpp: the data handed to the formats).
//
// Everything is read in one REPEATABLE READ, READ ONLY transaction, so a load running at the
// same time is either wholly in the export or not at all (other connections of the export
// join it with its exported snapshot). Messages are streamed with `COPY (SELECT ...) TO
// STDOUT`, one conversation at a time, by the reading threads of write_archive: the server
// produces rows while those threads decode them and the calling one writes them; the
// socket's buffers and a bounded hand-over (4096 messages, about 16 MB of text) hold what
// waits, and memory holds the conversation list and those messages, whatever the history's
// size. (A cursor's FETCH in chunks of 2000 was measured slower: the server waits for each
// chunk to be written, benchmarks/README.md.)
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "archive/archive.hpp"

namespace skype_etl::detail {
class PgConnection;
}

namespace skype_etl::detail::archive {

/// What to read.
struct ArchiveFilter {
  /// The account, its id in any form (canonical_person_id); empty: the database's only
  /// account (UsageError listing them when it holds several).
  std::string account;
  /// Conversations to read, each an id or a pattern; empty: every conversation. A pattern
  /// without `*` or `?` names the conversation whose id is exactly it, or whose name
  /// (display name, else topic) is it ignoring case. With `*` (any characters) and `?` (one
  /// character) it is a glob matched, ignoring case, against the id and the name. A pattern
  /// that matches no conversation is a UsageError.
  std::vector<std::string> conversations;
  /// Timestamps as cli::parse_date returns them (PostgreSQL reads them whatever its
  /// TimeZone), or empty. since: sent at or after it; until: sent before it. With either,
  /// messages with no known time are left out, and so are conversations with no message.
  std::string since, until;
  /// The directory the load wrote media to (run --with-media --output-dir), or empty.
  /// Attachments whose doc_id has a file `<doc_id>.1.*` below it get media_path, relative to
  /// `output_dir`.
  std::filesystem::path media_dir;
  std::filesystem::path output_dir;
  /// false: Message::content_raw and properties_json are left empty (not even sent by the
  /// server): the html, txt and csv formats do not show them, and they are a third of what
  /// the messages weigh.
  bool with_raw = true;
};

/// write_archive reports progress every this many messages.
inline constexpr int k_progress_rows = 2000;

/// The time zone the export is written in: the process's (TZ, else /etc/localtime, else
/// /etc/timezone, else "UTC"), as an IANA name PostgreSQL knows.
std::string local_time_zone_name();

class ArchiveReader {
 public:
  /// Opens the read transaction on `conn` (which must have none open) and reads the
  /// conversation list. Throws DatabaseError when the database has no skype-etl schema (or
  /// one older than version 8, or newer than this binary knows), UsageError for an unknown account
  /// or a conversation pattern that matches nothing.
  ArchiveReader(PgConnection& conn, const ArchiveFilter& filter);
  ~ArchiveReader();
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;

  const std::string& account_id() const noexcept { return m_account; }
  /// Conversations selected, most recent last message first (those with none last), then
  /// by id. file_stem is unique among them, ignoring case.
  const std::vector<Conversation>& conversations() const noexcept { return m_conversations; }
  /// Messages of the selection in all.
  std::int64_t message_count() const noexcept;

  /// Streams the messages of `conversation` (one of conversations()) in order: by sent_at,
  /// those with no known time last, then by message_id (byte order). A message with no
  /// known time has no day to go with, and last keeps the order the index on (conversation_id,
  /// sent_at) gives, so PostgreSQL streams them without sorting the conversation.
  /// `on_message` may take the message's contents (swap them with its own): it gets a new
  /// message each time.
  /// With `other` (on which share_snapshot was called), the messages are read there, so
  /// that two threads may read two conversations at once.
  void read_messages(const Conversation& conversation,
                     const std::function<void(Message&)>& on_message,
                     PgConnection* other = nullptr);
  /// Opens on `other` (a connection to the same database with no transaction open) a
  /// transaction that sees what this reader's sees (pg_export_snapshot), with its settings.
  void share_snapshot(PgConnection& other) const;

  /// The statistics of the selection, computed by PostgreSQL (GROUP BY) in the time zone of
  /// local_time_zone_name(). Top lists hold at most 10. With `other` (a connection to the
  /// same database with no transaction open), computed there in the reading transaction's
  /// snapshot, so that it may run in another thread while this reader reads messages.
  Statistics statistics(PgConnection* other = nullptr);

 private:
  void read_conversations(const ArchiveFilter& filter);
  std::string message_filter_sql(const std::string& alias, const PgConnection& conn) const;

  PgConnection& m_conn;
  std::string m_account;
  std::string m_owner_name;
  std::string m_since, m_until;
  bool m_with_raw = true;
  std::string m_snapshot;  ///< pg_export_snapshot() of the reading transaction
  std::vector<Conversation> m_conversations;
  std::string m_conversation_ids_literal;  ///< ARRAY[...] of the selection, "" for all
  std::map<std::string, std::filesystem::path> m_media;  ///< doc_id -> relative path
};

/// Reads everything `reader` selected and hands it to `writer`, in the order ArchiveWriter
/// says. `on_progress(messages_written)` is called after each chunk of messages. The
/// messages are read by a thread of their own, at most 4096 messages (and about 16 MB of
/// text) ahead of the writer, so that reading and writing overlap; `writer` and
/// `on_progress` are called in the calling thread, and `reader` must not be used by another
/// one meanwhile. With `statistics_connection`, the statistics are computed on it
/// (ArchiveReader::statistics) by another thread from the start; with
/// `second_reading_connection`, a second reading thread reads every other conversation on
/// it. Both connections must have no transaction open; they join the reader's snapshot.
void write_archive(ArchiveReader& reader, ArchiveWriter& writer,
                   const std::function<void(std::int64_t)>& on_progress = {},
                   PgConnection* statistics_connection = nullptr,
                   PgConnection* second_reading_connection = nullptr);

/// The file-name stem of a conversation: its name's ASCII letters, digits, '-' and '_', and
/// its characters of other scripts (valid UTF-8 sequences, whole, except control, space,
/// format, bidirectional, slash-like, private-use and non-characters); other runs of bytes
/// become one '_'; at most 40 bytes, cut between characters; no leading or trailing '_' or
/// '-'; "conversation" when nothing is left; then '-' and 8 hex digits of a hash of its id.
/// Valid UTF-8, no separators, no '.', no control characters, at most 49 bytes.
std::string file_stem_for(const std::string& name, const std::string& conversation_id);

}  // namespace skype_etl::detail::archive
