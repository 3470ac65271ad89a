// Writing the media files of a tar export under --output-dir.
//
// An export's media appear in `<output-dir>/<name>` only once the export is committed: they
// are written into a staging directory inside the output directory (MediaStaging), which is
// renamed into place by publish() after the commit and removed otherwise. So a failed export,
// or one already loaded, leaves no media behind, and a reader of the output directory never
// sees half of an export's files.
#pragma once

#include <cstddef>
#include <filesystem>
#include <set>
#include <string>

#include "extract/input_file.hpp"

namespace skype_etl::detail {

/// Writes every regular file below media/ in the source's tar to `directory`/<entry name>,
/// and returns how many. Refuses (InputError, before writing anything) entry names that are
/// absolute or contain `..`, and link entries; never follows a symlink on disk, so nothing
/// is ever written outside `directory` (a symlink in the way is an OutputError, like any
/// directory or file that cannot be written). Existing files are replaced.
std::size_t write_media_files(const InputSource& source, const std::filesystem::path& directory);

/// The longest name media_directory_name() returns, in bytes (NAME_MAX is 255; the rest is
/// room for a "-<n>" suffix).
inline constexpr std::size_t k_max_media_directory_name = 200;

/// The name of the directory below --output-dir that holds an input's media: the input's file
/// name without ".gz" and then one more extension (`e.tar` and `e.tar.gz` give `e`), written
/// so that it is one safe, visible directory name:
/// - bytes that are not UTF-8 as `\xHH`, backslashes doubled (as skype.exports.file_name);
/// - control characters and '/' become '_'; so do leading dots (no ".", "..", hidden names);
/// - empty becomes "export"; longer than k_max_media_directory_name bytes is cut (at a
///   character boundary);
/// - unique in `taken` (the names given to earlier inputs of the run): "-2", "-3", ... is
///   added when needed. The name returned is added to `taken`.
std::string media_directory_name(const std::filesystem::path& input, std::set<std::string>& taken);

/// One export's media files on their way to `<output_dir>/<name>`. Not thread-safe; may be
/// created on one thread and published or destroyed on another when the two are ordered
/// (happens-before), as the graph's queues order the reader and the load node.
class MediaStaging {
 public:
  /// Creates `output_dir` if needed and, inside it, a new empty staging directory
  /// `.skype-etl-partial-<pid>-<random>`. Throws OutputError when `<output_dir>/<name>` would not
  /// be a directory directly inside `output_dir` (after resolving symbolic links), or exists
  /// as something publish() cannot replace (a symbolic link, a file), or when the directory
  /// cannot be created. `name`: from media_directory_name().
  MediaStaging(const std::filesystem::path& output_dir, const std::string& name);
  /// Removes the staging directory and everything in it unless publish() moved it.
  ~MediaStaging();
  MediaStaging(const MediaStaging&) = delete;
  MediaStaging& operator=(const MediaStaging&) = delete;

  /// Writes the source's media into the staging directory (see write_media_files).
  std::size_t write(const InputSource& source);
  /// Moves the staging directory to target(). A directory already there (an earlier run's
  /// media for an input of the same name) is replaced in one step (renameat2's
  /// RENAME_EXCHANGE, then the old one is removed), so readers see the old files or the new
  /// ones, never a mix. Throws OutputError when it cannot, naming the staging directory,
  /// which is then kept (the export is committed by then: its media are not thrown away).
  void publish();

  const std::filesystem::path& target() const noexcept { return m_target; }
  const std::filesystem::path& staging() const noexcept { return m_staging; }
  std::size_t files_written() const noexcept { return m_files; }

 private:
  std::filesystem::path m_target;
  std::filesystem::path m_staging;
  std::size_t m_files = 0;
  bool m_published = false;
};

}  // namespace skype_etl::detail
