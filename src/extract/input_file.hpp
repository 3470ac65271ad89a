// Opening an export: detecting its kind by content and exposing messages.json's bytes
// with the padding simdjson needs, without copying plain files.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "extract/tar.hpp"
#include "skype_etl/options.hpp"

namespace skype_etl {
class MemoryMonitor;
}

namespace skype_etl::detail {

/// SHA-256 of `bytes` (the digest of skype.exports.file_digest; the HTML archive's
/// Content-Security-Policy hashes).
std::array<unsigned char, 32> sha256(std::string_view bytes);

/// Bytes readable past the end of every buffer this file hands out (>= SIMDJSON_PADDING).
inline constexpr std::size_t input_padding = 64;

/// A read-only memory map of a whole file followed by at least input_padding readable
/// zero bytes (anonymous pages mapped behind the file), so documents that end at the end
/// of the file can be parsed in place. Pages of the file are file-backed: they do not count
/// towards private memory (RssAnon).
class MappedFile {
 public:
  /// Throws InputError naming `path` when it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  /// Maps the open regular file `fd` as it is now (the caller keeps and closes `fd`: the
  /// mapping holds the file, unlinked or not, until it goes). Throws InputError naming `name`.
  MappedFile(int fd, const std::string& name);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view bytes() const noexcept { return {m_data, m_size}; }
  std::size_t size() const noexcept { return m_size; }
  /// Tells the kernel the pages before `offset` are not needed again (keeps the page
  /// cache from holding the whole export in this process's RSS).
  void release_before(std::uint64_t offset) noexcept;

 private:
  void map(int fd, const std::string& name);

  char* m_data = nullptr;
  std::size_t m_size = 0;
  std::size_t m_mapped = 0;
  std::uint64_t m_released = 0;
};

/// How an export is opened: where gzip content is inflated to, and the limits that keep a
/// small hostile file from costing gigabytes (issue 15).
struct InputOptions {
  /// Directory of the unlinked temporary file that gzip content is inflated into (its pages
  /// are file-backed, not private memory). Empty: $TMPDIR, else /tmp.
  std::filesystem::path temp_dir;
  /// Refuse gzip data that inflates to more than this many times the compressed bytes read so
  /// far, plus gzip_ratio_allowance; 0: no limit. See Options::max_gzip_ratio.
  std::uint64_t max_gzip_ratio = Options{}.max_gzip_ratio;
  /// Stop inflating (InputError) before the file system of temp_dir has less than this many
  /// bytes free. Empty: 1 GiB, or 5% of the file system when that is less.
  std::optional<std::uint64_t> keep_free_bytes;
  /// Sampled while inflating and asked before copies that grow with the input
  /// (MemoryMonitor::check_allocation); may be null. Must outlive open().
  MemoryMonitor* memory = nullptr;
  /// While gzip content is inflated: set to the compressed bytes inflated so far, every MiB of
  /// output (for progress displays); may be null. Must outlive open().
  std::atomic<std::uint64_t>* inflated_from = nullptr;
};

/// What gzip data may inflate to beyond max_gzip_ratio times its compressed size: small
/// files (a tar's headers and padding are mostly zeros) never come near the ratio.
inline constexpr std::uint64_t gzip_ratio_allowance = std::uint64_t{64} << 20U;

/// One media item of a tar export (media/<docid>.json metadata and its files).
struct MediaEntry {
  std::string_view metadata;            ///< the bytes of media/<docid>.json, in archive()
  std::string metadata_path;            ///< entry name of the metadata
  std::vector<std::string> file_paths;  ///< media/<docid>.<n>.<ext> entry names
  std::uint64_t file_size = 0;          ///< size of the .1 (content) file, if present
};

/// An opened export. Holds the mappings the batches' views point into (of the file, and for
/// gzip of its inflated content); share it with std::shared_ptr for as long as any view is
/// alive.
class InputSource {
 public:
  /// Detects the kind by content: a directory holding messages.json, a plain JSON
  /// document, a tar (ustar, GNU, PAX) holding messages.json anywhere, or either of the
  /// latter compressed with gzip. Gzip content is inflated into an unlinked temporary file in
  /// options.temp_dir, memory-mapped like a plain file, so private memory stays flat; the
  /// file's disk space is freed when the source goes. Throws InputError (also when the disk
  /// cannot hold the content or it inflates beyond options.max_gzip_ratio), or
  /// MemoryLimitExceeded from options.memory.
  static std::shared_ptr<InputSource> open(const std::filesystem::path& path,
                                           const InputOptions& options = {});
  ~InputSource();

  const std::filesystem::path& path() const noexcept { return m_path; }
  /// "json", "tar", "json.gz", "tar.gz" or "directory".
  const std::string& kind() const noexcept { return m_kind; }
  /// The messages.json document; input_padding readable bytes follow it.
  std::string_view json() const noexcept { return m_json; }
  /// Offset of json()[0] in what error offsets count: the file given, or for gzip its
  /// decompressed content (so an error in a tar's messages.json is at the same byte of the
  /// tar whether or not the tar was compressed).
  std::uint64_t json_offset() const noexcept { return m_json_offset; }
  /// What error offsets in json() count bytes of, as InputError::offset_of() says it: "the
  /// tar", "the decompressed tar", "the decompressed JSON", or empty for the file itself.
  const std::string& json_offsets_of() const noexcept { return m_json_offsets_of; }
  /// The same for offsets in archive(): empty for a tar, "the decompressed tar" for tar.gz.
  const std::string& archive_offsets_of() const noexcept { return m_archive_offsets_of; }
  /// The name error messages use for the document (e.g. "x.tar:messages.json").
  const std::string& json_name() const noexcept { return m_json_name; }
  /// Size in bytes of the file that was given (for a directory, of its messages.json).
  std::uint64_t file_size() const noexcept { return m_file_size; }
  /// Size in bytes of what json_offset() and error offsets count in: the file given, or for
  /// gzip its decompressed content.
  std::uint64_t content_size() const noexcept;
  /// "sha256:<hex>" of the same bytes; computed once, on first call.
  const std::string& digest();
  /// The same digest, computed on a thread of its own (started on the first call), so that
  /// hashing overlaps reading. The destructor waits for that thread.
  std::shared_future<std::string> digest_async();
  /// media/<docid>.json entries of a tar, by docid (empty for other kinds).
  const std::map<std::string, MediaEntry, std::less<>>& media() const noexcept { return m_media; }
  /// Every member of a tar below a media/ folder, links included (empty for other kinds).
  const std::vector<TarMember>& media_members() const noexcept { return m_media_members; }
  /// The tar's bytes (decompressed for tar.gz); empty for other kinds.
  std::string_view archive() const noexcept { return m_archive; }
  /// See MappedFile::release_before; offsets are json()-relative.
  void release_before(std::uint64_t json_position) noexcept;

 private:
  InputSource() = default;

  std::filesystem::path m_path;
  std::string m_kind;
  std::string m_json_name;
  std::unique_ptr<MappedFile> m_map;       // the file given (for a directory, messages.json)
  std::unique_ptr<MappedFile> m_inflated;  // gzip: the inflated content's unlinked file
  std::string_view m_json;
  std::uint64_t m_json_offset = 0;
  std::string m_json_offsets_of;
  std::string m_archive_offsets_of;
  std::uint64_t m_file_size = 0;
  std::filesystem::path m_digest_path;  // file whose bytes identify the export
  std::string m_digest;
  std::shared_future<std::string> m_digest_task;
  std::map<std::string, MediaEntry, std::less<>> m_media;
  std::vector<TarMember> m_media_members;
  std::string_view m_archive;
};

}  // namespace skype_etl::detail
