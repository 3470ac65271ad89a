// Reading loaded history back out of skype.* (`skype-etl export` and `skype-etl stats`).
//
// The contract between the database reader (archive_reader.cpp: streams rows with a
// server-side cursor, one conversation at a time, in message order) and the formats
// (txt, csv, json, html), each an ArchiveWriter. The reader owns no output; a writer owns
// no database access. Memory: one conversation's summary list plus one message at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace skype_etl::detail::archive {

/// Microseconds since the Unix epoch, UTC (as stored in timestamptz columns).
using Micros = std::int64_t;

struct Participant {
  std::string id;            ///< canonical id ("bob", "live:.cid.x", "28:bot")
  std::string display_name;  ///< "" when no message of theirs names them
  bool is_owner = false;
};

struct Conversation {
  std::string account_id;
  std::string conversation_id;
  std::string type;          ///< conversation_type, "" when NULL
  std::string display_name;  ///< display_name, else topic, else the participants' names
  std::string topic;
  std::vector<Participant> participants;
  std::int64_t message_count = 0;  ///< within the export's filters (--since/--until)
  std::optional<Micros> first_message_at;
  std::optional<Micros> last_message_at;
  /// Unique, safe file-name stem (no separators, no "..", length-limited) chosen by the
  /// reader for this conversation; every format names its files from it.
  std::string file_stem;
};

struct Attachment {
  int ordinal = 0;
  std::string kind, name, content_type, uri, thumbnail_uri, doc_id;
  std::optional<std::int64_t> size, width, height;
  std::optional<double> duration_seconds;
  /// Path of the media file written at load (--with-media --output-dir), relative to the
  /// export's output directory; "" when none is known.
  std::string media_path;
};

struct Message {
  std::string message_id;
  std::optional<Micros> sent_at;
  std::string sender_id;
  std::string sender_name;  ///< as the reader resolved it: owner's name or "Me", display name
  bool from_owner = false;
  std::string message_type;
  std::string content_raw;
  std::string content_text;
  bool is_edited = false;
  std::optional<Micros> edited_at;
  bool is_deleted = false;
  std::optional<Micros> deleted_at;
  bool is_server_generated = false;
  std::string details_json;     ///< skype.messages.details as JSON text, "" when NULL
  std::string properties_json;  ///< "" when NULL
  std::vector<Attachment> attachments;
};

/// Activity over the filtered history, in the export's time zone.
struct Statistics {
  struct Month {
    std::string month;  ///< "YYYY-MM"
    std::int64_t messages = 0;
  };
  struct Ranked {
    std::string id;
    std::string name;
    std::int64_t messages = 0;
  };
  std::vector<Month> per_month;              ///< every month from the first to the last, gaps as 0
  std::int64_t hour_by_weekday[7][24] = {};  ///< [0 = Monday][hour]
  std::vector<Ranked> top_conversations;     ///< most messages first
  std::vector<Ranked> top_senders;
  std::int64_t messages = 0;
  std::int64_t conversations = 0;
  std::optional<Micros> first_message_at, last_message_at;
};

/// One output format. Calls: begin(all), then per conversation begin_conversation, message
/// for each message in order (sent_at, then message_id), end_conversation; then finish.
/// Writers write below the directory they were constructed with and throw OutputError.
class ArchiveWriter {
 public:
  virtual ~ArchiveWriter() = default;
  virtual void begin(const std::vector<Conversation>& conversations) = 0;
  virtual void begin_conversation(const Conversation& conversation) = 0;
  virtual void message(const Message& message) = 0;
  virtual void end_conversation() = 0;
  virtual void finish(const Statistics& statistics) = 0;
};

}  // namespace skype_etl::detail::archive
