// libFuzzer target: the export reader (InputSource + ExportReader, src/extract/) on whole
// files.
//
// Each input is read twice: as the file given to skype-etl (its content decides the kind: a
// messages.json, a tar, either gzip-compressed, or something refused), and as the
// messages.json of a ustar archive. Besides not crashing (ASan, UBSan), every read checks
// - only InputError escapes; it is one line (no control character); it names a byte inside
//   what offset_of() says offsets count (and so does where()'s "which starts at byte N"); an
//   error of the reader names a byte of messages.json, counted as InputSource::json_offset
//   says;
// - the batches: numbered in order, the last one marked and followed by nullptr; chunks
//   covering the messages in order, a conversation starting and ending once; positions and
//   offsets of messages increasing inside messages.json; every view inside messages.json or
//   the batch's arena; every JSON text kept verbatim (properties, amsreferences, emotions,
//   media, unknown keys) valid JSON; every message and conversation with an id;
// - an export read to its end is valid JSON: nlohmann's strict parser accepts it (the
//   reader's skipping scanner must not let anything else through);
// - a plain JSON input gives the same messages both ways, or the same error 512 bytes
//   further in the tar (read with other batch sizes, so that batch boundaries move).
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "extract/export_reader.hpp"
#include "extract/input_file.hpp"
#include "extract/tar.hpp"
#include "fuzz_support.hpp"
#include "skype_etl/errors.hpp"
#include "support/tar_writer.hpp"

namespace {

namespace fs = std::filesystem;
namespace se = skype_etl;
namespace sd = skype_etl::detail;
using skype_etl::fuzz::excerpt;

/// Where the inputs are written: InputSource opens files by path.
fs::path scratch_dir;

void remove_scratch_dir() {
  std::error_code ignored;
  fs::remove_all(scratch_dir, ignored);
}

/// The bytes given, as the file was written (the tar wrapping needs them).
struct FileBytes {
  fs::path path;
  std::string_view bytes;
};

struct Outcome {
  bool opened = false;
  bool read_to_end = false;
  std::string kind;
  std::string problem;  // of the InputError, when there was one
  std::optional<std::uint64_t> offset;
  std::string stream;  // everything read, in order, offsets relative to messages.json
};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

/// The size of the content of a gzip file whose members follow each other (as
/// InputSource reads it), or nullopt when it is not one. Streams: no memory beyond zlib's.
std::optional<std::uint64_t> gunzipped_size(std::string_view in) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return std::nullopt;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::uint64_t total = 0;
  unsigned char out[1 << 16];
  std::optional<std::uint64_t> result;
  while (true) {
    z.next_out = out;
    z.avail_out = sizeof out;
    const int rc = inflate(&z, Z_NO_FLUSH);
    total += sizeof out - z.avail_out;
    if (rc == Z_STREAM_END) {
      const std::size_t at = in.size() - z.avail_in;
      if (z.avail_in >= 2 && is_gzip(in.substr(at))) {
        inflateReset(&z);
        continue;
      }
      result = total;
      break;
    }
    if (rc != Z_OK) break;
  }
  inflateEnd(&z);
  return result;
}

void append_field(std::string& stream, std::string_view value) {
  stream += std::to_string(value.size());
  stream += ':';
  stream += value;
  stream += ';';
}

void append_optional(std::string& stream, const std::optional<std::string_view>& value) {
  if (value) {
    append_field(stream, *value);
  } else {
    stream += "-;";
  }
}

/// The number after the last "starts at byte " of `where`, if it ends with one (ids quoted
/// in `where` are the file's text and may hold anything, so only its tail is trusted).
std::optional<std::uint64_t> start_named_in(const std::string& where) {
  const std::string marker = "which starts at byte ";
  const auto at = where.rfind(marker);
  if (at == std::string::npos) return std::nullopt;
  const std::string digits = where.substr(at + marker.size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoull(digits);
}

/// README: "Every error is one line on stderr". A control character breaks the line, and a
/// NUL cuts what() short (it is a C string).
void check_one_line(const se::InputError& e) {
  for (const std::string* part : {&e.file(), &e.problem(), &e.where()})
    for (const char c : *part)
      FUZZ_CHECK(
          static_cast<unsigned char>(c) >= 0x20 && c != 0x7f,
          "an error holds a control character: " + excerpt(e.problem() + " (" + e.where() + ")"));
}

void check_error_bytes(const se::InputError& e, std::uint64_t limit, const std::string& counted) {
  check_one_line(e);
  const std::string what = e.what();
  if (e.offset())
    FUZZ_CHECK(*e.offset() < limit,
               what + ": the offset is past the " + std::to_string(limit) + " bytes of " + counted);
  if (const auto start = start_named_in(e.where()))
    FUZZ_CHECK(*start < limit, what + ": the start named is past the " + std::to_string(limit) +
                                   " bytes of " + counted);
}

/// An error of InputSource::open: offsets count the file, or the tar or JSON it decompresses
/// to; nothing else.
void check_open_error(const se::InputError& e, const FileBytes& file) {
  check_one_line(e);
  const std::string what = e.what();
  FUZZ_CHECK(starts_with(e.file(), file.path.string()), what);
  const std::string& of = e.offset_of();
  if (of.empty() || of == "the tar") {
    check_error_bytes(e, file.bytes.size(), "the file");
  } else if (of == "the decompressed tar" || of == "the decompressed JSON") {
    FUZZ_CHECK(is_gzip(file.bytes), what + ": decompressed offsets of a file that is no gzip");
    if (const auto size = gunzipped_size(file.bytes))
      check_error_bytes(e, *size, "the decompressed content");
  } else {
    skype_etl::fuzz::broken(what + ": unknown offset_of " + excerpt(of));
  }
}

/// A JSON text kept verbatim goes to a jsonb column: it must be JSON.
void check_json_text(std::string_view text, const std::string& what) {
  if (text.empty()) return;
  FUZZ_CHECK(nlohmann::json::accept(text.begin(), text.end()),
             what + " is kept as JSON but is not JSON: " + excerpt(text));
}

class BatchChecker {
 public:
  BatchChecker(const sd::InputSource& source, std::size_t batch_size, std::string& stream)
      : m_json(source.json()),
        m_base(source.json_offset()),
        m_batch_size(batch_size),
        m_stream(stream) {}

  void check(const se::Batch& batch, const std::shared_ptr<const se::ExportInfo>& info,
             const void* input) {
    FUZZ_CHECK(batch.source == info, "a batch names another export");
    FUZZ_CHECK(batch.input.get() == input, "a batch keeps another input alive");
    FUZZ_CHECK(batch.export_sequence == m_batches, "batches out of order");
    FUZZ_CHECK(!m_saw_last, "a batch after the one marked last_of_export");
    FUZZ_CHECK(batch.raw.size() <= m_batch_size && batch.chunks.size() <= m_batch_size,
               "a batch larger than batch_size");
    // The media index is read once per export and shared by all its batches.
    if (m_batches == 0) m_media = batch.media.get();
    FUZZ_CHECK(batch.media.get() == m_media, "batches of one export hold different media indexes");
    ++m_batches;
    m_saw_last = batch.last_of_export;
    std::size_t next_message = 0;
    for (const se::ConversationChunk& chunk : batch.chunks) {
      FUZZ_CHECK(chunk.conversation != nullptr, "a chunk without its conversation");
      FUZZ_CHECK(chunk.first_message == next_message, "chunks do not cover the batch in order");
      FUZZ_CHECK(chunk.message_count <= batch.raw.size() - chunk.first_message,
                 "a chunk runs past the batch's messages");
      next_message += chunk.message_count;
      const se::ConversationMeta& conv = *chunk.conversation;
      FUZZ_CHECK(chunk.starts_conversation == (m_current != &conv),
                 "a conversation starts twice, or not where it first appears");
      if (chunk.starts_conversation) {
        FUZZ_CHECK(!m_current || m_current_ended, "a conversation starts before the last ended");
        FUZZ_CHECK(conv.index == m_conversations, "conversations out of order");
        FUZZ_CHECK(conv.offset >= m_base && conv.offset - m_base < m_json.size() &&
                       m_json[conv.offset - m_base] == '{',
                   "a conversation's offset is not its '{' in messages.json");
        FUZZ_CHECK(!conv.id.empty(), "a conversation without an id was read");
        check_json_text(conv.properties_json, "a conversation's properties");
        check_json_text(conv.thread_properties_json, "a conversation's threadProperties");
        check_json_text(conv.extra_json, "a conversation's unknown keys");
        ++m_conversations;
        m_current = &conv;
        m_position = 0;
        append_conversation(conv);
      }
      m_current_ended = chunk.ends_conversation;
      for (std::size_t i = 0; i < chunk.message_count; ++i)
        check_message(batch, batch.raw[chunk.first_message + i]);
    }
    FUZZ_CHECK(next_message == batch.raw.size(), "messages of a batch in no chunk");
  }

  /// At the end of an export read without error.
  void finish(const sd::ExportReader& reader) const {
    FUZZ_CHECK(m_saw_last, "the export ended without a batch marked last_of_export");
    FUZZ_CHECK(!m_current || m_current_ended, "the last conversation never ended");
    FUZZ_CHECK(reader.finished(), "finished() is false after the last batch");
    FUZZ_CHECK(reader.messages_read() == m_messages, "messages_read() miscounts");
    FUZZ_CHECK(reader.conversations_read() == m_conversations, "conversations_read() miscounts");
  }

 private:
  void check_view(const se::Batch& batch, std::string_view view, const char* what) const {
    if (view.empty()) return;
    FUZZ_CHECK(skype_etl::fuzz::inside(view, m_json) || batch.arena.owns(view),
               std::string(what) + " points neither into messages.json nor the batch's arena");
  }

  void check_message(const se::Batch& batch, const se::RawMessage& m) {
    FUZZ_CHECK(m.position == m_position, "a message's position is not its index");
    ++m_position;
    FUZZ_CHECK(
        m.offset >= m_base && m.offset - m_base < m_json.size() && m_json[m.offset - m_base] == '{',
        "a message's offset is not its '{' in messages.json");
    FUZZ_CHECK(m_messages == 0 || m.offset > m_last_offset, "message offsets do not increase");
    m_last_offset = m.offset;
    ++m_messages;
    check_view(batch, m.id, "id");
    if (m.display_name) check_view(batch, *m.display_name, "displayName");
    check_view(batch, m.original_arrival_time, "originalarrivaltime");
    check_view(batch, m.message_type, "messagetype");
    check_view(batch, m.content, "content");
    check_view(batch, m.conversation_id, "conversationid");
    check_view(batch, m.from, "from");
    check_view(batch, m.properties_json, "properties");
    check_view(batch, m.edit_time, "edittime");
    check_view(batch, m.delete_time, "deletetime");
    check_view(batch, m.emotions_json, "emotions");
    check_view(batch, m.ams_references_json, "amsreferences");
    check_view(batch, m.extra_json, "unknown keys");
    check_json_text(m.properties_json, "a message's properties");
    check_json_text(m.emotions_json, "a message's emotions");
    check_json_text(m.ams_references_json, "a message's amsreferences");
    check_json_text(m.extra_json, "a message's unknown keys");
    FUZZ_CHECK(!m.id.empty(), "a message without an id was read");
    append_message(m);
  }

  void append_conversation(const se::ConversationMeta& c) {
    m_stream += "C";
    append_field(m_stream, c.id);
    append_optional(
        m_stream, c.display_name ? std::optional<std::string_view>(*c.display_name) : std::nullopt);
    m_stream += c.version ? std::to_string(*c.version) + ";" : "-;";
    append_field(m_stream, c.properties_json);
    append_field(m_stream, c.thread_properties_json);
    append_field(m_stream, c.topic);
    for (const auto& member : c.members) append_field(m_stream, member);
    append_field(m_stream, c.extra_json);
    m_stream += std::to_string(c.offset - m_base) + "\n";
  }

  void append_message(const se::RawMessage& m) {
    m_stream += "M";
    for (const std::string_view v :
         {m.id, m.original_arrival_time, m.message_type, m.content, m.conversation_id, m.from,
          m.properties_json, m.edit_time, m.delete_time, m.emotions_json, m.ams_references_json,
          m.extra_json})
      append_field(m_stream, v);
    append_optional(m_stream, m.display_name);
    m_stream += m.version ? std::to_string(*m.version) + ";" : "-;";
    m_stream += m.is_server_generated ? "s;" : "-;";
    m_stream += std::to_string(m.position) + ";" + std::to_string(m.offset - m_base) + "\n";
  }

  std::string_view m_json;
  std::uint64_t m_base;
  const se::MediaIndex* m_media = nullptr;
  std::size_t m_batch_size;
  std::string& m_stream;
  std::uint64_t m_batches = 0;
  bool m_saw_last = false;
  const se::ConversationMeta* m_current = nullptr;
  bool m_current_ended = false;
  std::size_t m_conversations = 0;
  std::uint32_t m_position = 0;
  std::uint64_t m_messages = 0;
  std::uint64_t m_last_offset = 0;
};

Outcome read_export(const FileBytes& file, std::size_t batch_size) {
  Outcome outcome;
  std::shared_ptr<sd::InputSource> source;
  try {
    source = sd::InputSource::open(file.path);
  } catch (const se::InputError& e) {
    check_open_error(e, file);
    outcome.problem = e.problem();
    outcome.offset = e.offset();
    return outcome;
  } catch (const std::exception& e) {
    skype_etl::fuzz::broken(std::string("InputSource::open threw something else than "
                                        "InputError: ") +
                            e.what());
  }
  outcome.opened = true;
  outcome.kind = source->kind();
  const std::string_view json = source->json();
  const std::uint64_t base = source->json_offset();
  if (source->kind() == "json" || source->kind() == "json.gz") {
    FUZZ_CHECK(base == 0, "a JSON file's messages.json does not start it");
  } else {
    FUZZ_CHECK(source->kind() == "tar" || source->kind() == "tar.gz", source->kind());
    const std::string_view archive = source->archive();
    FUZZ_CHECK(skype_etl::fuzz::inside(json, archive) &&
                   base == static_cast<std::uint64_t>(json.data() - archive.data()),
               "messages.json is not where json_offset() says in the archive");
  }
  if (source->kind() == "json" || source->kind() == "tar")
    FUZZ_CHECK(json.size() + base <= file.bytes.size(), "messages.json is larger than the file");

  BatchChecker checker(*source, batch_size, outcome.stream);
  try {
    sd::ExportReader reader(source, 0, {batch_size, true});
    FUZZ_CHECK(!reader.info()->user_id.empty(), "an export without a userId was opened");
    FUZZ_CHECK(reader.info()->kind == source->kind(), "ExportInfo's kind");
    outcome.stream += "U";
    append_field(outcome.stream, reader.info()->user_id);
    append_field(outcome.stream, reader.info()->export_date);
    outcome.stream += "\n";
    while (const se::BatchPtr batch = reader.next())
      checker.check(*batch, reader.info(), source.get());
    checker.finish(reader);
    outcome.read_to_end = true;
  } catch (const se::InputError& e) {
    const std::string what = e.what();
    // The name as errors print it: escaped (a tar member's name may hold any byte).
    FUZZ_CHECK(e.file() == se::printable(source->json_name()), what + ": names another file");
    FUZZ_CHECK(e.offset_of() == source->json_offsets_of(), what + ": offsets count another thing");
    FUZZ_CHECK(e.offset().has_value(), what + ": no byte named");
    FUZZ_CHECK(*e.offset() >= base && *e.offset() - base < json.size(),
               what + ": the byte named is outside messages.json (" + std::to_string(base) + ", " +
                   std::to_string(json.size()) + " bytes)");
    check_error_bytes(e, base + json.size(), "messages.json");
    outcome.problem = e.problem();
    outcome.offset = e.offset();
    return outcome;
  } catch (const std::exception& e) {
    skype_etl::fuzz::broken(std::string("the reader threw something else than InputError: ") +
                            e.what());
  }
  FUZZ_CHECK(nlohmann::json::accept(json.begin(), json.end()),
             "the reader read to its end a messages.json that is not JSON");
  return outcome;
}

/// Whether the bytes are read as a plain messages.json (not a tar, a gzip file or one of
/// the formats InputSource names), so that wrapping them in a tar must change nothing.
bool plain_json(std::string_view bytes) {
  if (is_gzip(bytes) || sd::looks_like_tar(bytes)) return false;
  for (const std::string_view magic :
       {std::string_view("PK\x03\x04", 4), std::string_view("PK\x05\x06", 4),
        std::string_view("BZh"),
        std::string_view("\xFD"
                         "7zXZ\x00",
                         6),
        std::string_view("7z\xBC\xAF\x27\x1C", 6), std::string_view("Rar!"),
        std::string_view("\x28\xB5\x2F\xFD", 4), std::string_view("SQLite format 3")})
    if (starts_with(bytes, magic)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::error_code ec;
  scratch_dir = fs::temp_directory_path(ec) /
                ("skype-etl-fuzz-" + std::to_string(static_cast<long>(::getpid())));
  fs::create_directories(scratch_dir, ec);
  std::atexit(remove_scratch_dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const FileBytes direct{scratch_dir / "export", bytes};
  skype_etl::test::write_file(direct.path, bytes);
  const Outcome as_file = read_export(direct, 100);

  const std::string tar = skype_etl::test::make_tar({{"messages.json", std::string(bytes)}});
  const FileBytes wrapped{scratch_dir / "export.tar", tar};
  skype_etl::test::write_file(wrapped.path, tar);
  // Small batches for the second reading: the result must not depend on where they end.
  const std::size_t batch_size = 1 + size % 3;
  const Outcome in_tar = read_export(wrapped, batch_size);

  if (!plain_json(bytes)) return 0;
  FUZZ_CHECK(!as_file.opened || as_file.kind == "json", "plain JSON opened as " + as_file.kind);
  FUZZ_CHECK(as_file.problem == in_tar.problem,
             "an error differs in a tar: " + excerpt(as_file.problem) + " alone, " +
                 excerpt(in_tar.problem) + " in a tar");
  FUZZ_CHECK(as_file.offset.has_value() == in_tar.offset.has_value() &&
                 (!as_file.offset || *as_file.offset + 512 == *in_tar.offset),
             "an error's byte differs in a tar: " + excerpt(as_file.problem));
  FUZZ_CHECK(as_file.read_to_end == in_tar.read_to_end, "read to the end one way only");
  // After an error, each reading saw the batches completed before it: those differ.
  if (as_file.read_to_end)
    FUZZ_CHECK(as_file.stream == in_tar.stream,
               "what is read differs in a tar (batch size " + std::to_string(batch_size) + ")");
  return 0;
}
