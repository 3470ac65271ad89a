// The output formats of `skype-etl export` (each an ArchiveWriter, archive.hpp) and what they
// share: files written with checked errors, times as text, statistics as JSON.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "archive/archive.hpp"
#include "core/json_object_writer.hpp"

namespace skype_etl::detail::archive {

// --- the formats: each writes below `dir`, which exists and is empty ------------------------

/// txt: `<file_stem>.txt` per conversation, a line per message (README, "Reading your
/// history").
std::unique_ptr<ArchiveWriter> make_txt_writer(const std::filesystem::path& dir);
/// csv: `<file_stem>.csv` per conversation and `conversations.csv` (RFC 4180, CRLF).
std::unique_ptr<ArchiveWriter> make_csv_writer(const std::filesystem::path& dir);
/// json: `<file_stem>.json` per conversation and `index.json` (with the statistics).
std::unique_ptr<ArchiveWriter> make_json_writer(const std::filesystem::path& dir);
// html: make_html_writer (archive/html_writer.hpp): index.html, pages per conversation,
// stats.html.

// --- shared by the writers -------------------------------------------------------------------

/// A file written through a buffer; every failure (open, write, close) is an OutputError
/// naming the file. Not copyable.
class OutputFile {
 public:
  explicit OutputFile(const std::filesystem::path& path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  void write(std::string_view text);
  /// Flushes and closes; throws OutputError when the data could not all be written.
  void close();

 private:
  std::filesystem::path m_path;
  std::FILE* m_file = nullptr;
};

/// "2023-11-14 22:13" in the process's local time zone (localtime_r).
std::string local_minute(Micros at);
/// "2023-11-14T22:13:20.104Z": UTC, milliseconds.
std::string utc_iso(Micros at);
/// The offset of local time at `at`, "+01:00".
std::string utc_offset(Micros at);

/// `text` with each control character but tab and line feed (C0, DEL, C1) replaced by
/// U+FFFD and each CR LF or lone CR made a LF; invalid UTF-8 bytes become U+FFFD too. For
/// text files meant to be read on a terminal.
std::string clean_text(std::string_view text);

/// JSON strings as every writer of ours writes them (core/json_object_writer.hpp).
using skype_etl::detail::append_json_string;

/// Whether a message is a system event (membership, topic, calls, ...): shown as an event,
/// not as something a person wrote.
bool is_system_event(const Message& message);

/// The statistics as `skype-etl stats --format json` prints them (and index.json holds).
nlohmann::json statistics_json(const Statistics& statistics);

}  // namespace skype_etl::detail::archive
