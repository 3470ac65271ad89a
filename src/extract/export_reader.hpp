// Extract: reads one opened export and yields it as Batches of about batch_size messages,
// in input order, in bounded memory whatever the export's size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/model.hpp"
#include "extract/input_file.hpp"
#include "skype_etl/options.hpp"

namespace skype_etl {
class MemoryMonitor;
}

namespace skype_etl::detail {

/// What reading one value of the input (a message, a conversation's header value) of S
/// bytes may cost in private memory at most, in multiples of S, from the reader to the load
/// (parser buffers, unescaped strings, the transform's texts and parsed JSON, the COPY rows):
/// the memory limit is checked for this much before such a value is read. Measured
/// (benchmarks/README.md, "Hostile input"): about 4 for a message of text, 21 for one whose
/// JSON body or properties hold millions of empty arrays.
inline constexpr std::size_t value_memory_factor = 24;

/// Longest identifier accepted, in bytes once unescaped: userId, conversation and message
/// ids, a message's `from`, `messagetype` and `conversationid`, and member ids. They are
/// keys of btree indexes, whose entries PostgreSQL limits to about 2,700 bytes (three of
/// them in the messages' primary key); Skype's own ids are below 200 bytes.
inline constexpr std::size_t max_id_bytes = 512;

struct ReaderOptions {
  std::size_t batch_size = Options::default_batch_size;
  bool with_media = false;  ///< read media/<docid>.json metadata into Batch::media
  /// A batch also ends once its messages span this many bytes of the input (0: no limit),
  /// so that batches of large messages stay small (Options::batch_max_bytes).
  std::size_t batch_max_bytes = Options{}.batch_max_bytes;
  /// Asked before a value of MemoryMonitor::large_allocation bytes or more is read
  /// (check_allocation for value_memory_factor times its size); may be null. Must outlive
  /// the reader.
  MemoryMonitor* memory = nullptr;
};

/// Not thread-safe: one reader is driven by one (serial) input node.
///
/// Cutting: the top-level object and each conversation object are walked with the
/// structural scanner; conversation header values and each message are parsed as their own
/// simdjson documents in place in the input (the input keeps input_padding readable bytes
/// after its end). Strings without escapes are views of the input; escaped ones are
/// unescaped into the batch's arena.
///
/// Errors: every failure is an InputError naming the file, the byte offset of the bad byte
/// itself (the unexpected token, the invalid character or escape, the value of the wrong
/// type; for data that ends too early, the opening of the innermost string or container left
/// open; for a missing key, the opening of its object), and the conversation/message index
/// with the message's own start. Offsets count as InputSource::json_offset says. A single
/// malformed message fails the whole export (see README: nothing partial is loaded, nothing
/// is dropped silently).
///
/// Validation: every byte of messages.json is checked, by simdjson for the values the
/// reader parses and by skip_value (json_scanner.hpp) for those it keeps raw or skips.
/// Besides JSON itself the reader refuses what would load as if valid but lose or merge
/// records: a conversation without "id" or "MessageList", a message without "id", ids that
/// are not strings (a message id may be a positive integer, written as digits), empty or
/// longer than max_id_bytes or holding control characters, a userId that names no account,
/// a version that is not a number within +-9e18, a key given twice in one object of the
/// export's own (top level, conversation, message), and a key that spells a known one with
/// other characters or case ("MessageList\u0000", "ID"). Unknown keys are kept raw in
/// `extra_json` (ConversationMeta, RawMessage, Batch::export_extra_json).
class ExportReader {
 public:
  /// Reads the export header (userId, exportDate) and computes the input's digest.
  ExportReader(std::shared_ptr<InputSource> source, std::size_t export_index,
               ReaderOptions options);
  ~ExportReader();
  ExportReader(const ExportReader&) = delete;
  ExportReader& operator=(const ExportReader&) = delete;

  const std::shared_ptr<const ExportInfo>& info() const noexcept { return m_info; }
  /// The next batch, or nullptr after the batch marked last_of_export. Every export yields
  /// at least one batch (possibly empty) so that its end is always seen downstream.
  BatchPtr next();

  /// With ReaderOptions::with_media, the export's media metadata (read by the constructor,
  /// shared by every batch); null otherwise.
  const std::shared_ptr<const MediaIndex>& media() const noexcept;
  /// Bytes of the input read so far, counted as error offsets are (InputSource::json_offset:
  /// of the file, or of a .gz's decompressed content): where the next batch begins.
  std::uint64_t input_position() const noexcept;
  std::uint64_t conversations_read() const noexcept { return m_conversations_read; }
  std::uint64_t messages_read() const noexcept { return m_messages_read; }
  bool finished() const noexcept { return m_finished; }

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
  std::shared_ptr<const ExportInfo> m_info;
  std::uint64_t m_conversations_read = 0;
  std::uint64_t m_messages_read = 0;
  bool m_finished = false;
};

}  // namespace skype_etl::detail
