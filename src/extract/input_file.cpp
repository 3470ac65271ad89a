#include "extract/input_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <openssl/evp.h>

#include "extract/tar.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail {
namespace {

std::size_t page_size() noexcept {
  return static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::size_t round_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) / to * to;
}

std::string errno_text(int error) {
  return std::generic_category().message(error);
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.substr(0, prefix.size()) == prefix;
}

/// Names archive and compression formats we do not read, by their magic bytes.
std::string_view foreign_format(std::string_view bytes) noexcept {
  if (starts_with(bytes, std::string_view("PK\x03\x04", 4)) ||
      starts_with(bytes, std::string_view("PK\x05\x06", 4)))
    return "a zip archive";
  if (starts_with(bytes, "BZh")) return "a bzip2 file";
  if (starts_with(bytes, std::string_view("\xFD"
                                          "7zXZ\x00",
                                          6)))
    return "an xz file";
  if (starts_with(bytes, std::string_view("7z\xBC\xAF\x27\x1C", 6))) return "a 7-Zip archive";
  if (starts_with(bytes, "Rar!")) return "a RAR archive";
  if (starts_with(bytes, std::string_view("\x28\xB5\x2F\xFD", 4))) return "a zstd file";
  if (starts_with(bytes, "SQLite format 3")) return "an SQLite database (a Skype main.db?)";
  return {};
}

bool is_gzip(std::string_view bytes) noexcept {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

/// Position of the first byte that is not a UTF-8 BOM or JSON whitespace.
std::size_t skip_bom_and_space(std::string_view bytes) noexcept {
  std::size_t i = starts_with(bytes, "\xEF\xBB\xBF") ? 3 : 0;
  while (i < bytes.size() &&
         (bytes[i] == ' ' || bytes[i] == '\n' || bytes[i] == '\r' || bytes[i] == '\t'))
    ++i;
  return i;
}

/// Checks that `bytes` can be a messages.json; throws InputError naming what it is instead.
/// `base` and `offsets_of` say what offsets count (see InputSource::json_offset).
void require_json_object(std::string_view bytes, const std::string& name, std::uint64_t base,
                         const std::string& offsets_of) {
  const std::size_t i = skip_bom_and_space(bytes);
  if (bytes.empty()) throw InputError(name, "file is empty");
  // The whole file is the problem: no byte of it is more to blame than another.
  if (i == bytes.size()) throw InputError(name, "file holds only whitespace, no JSON");
  if (bytes[i] == '{') return;
  if (bytes[i] == '[')
    throw InputError(name,
                     "wrong top-level shape: expected a JSON object with \"conversations\", "
                     "found an array",
                     base + i, {}, offsets_of);
  throw InputError(name,
                   "not JSON: expected '{' (a Skype messages.json), found " +
                       (static_cast<unsigned char>(bytes[i]) >= 0x20 &&
                                static_cast<unsigned char>(bytes[i]) < 0x7f
                            ? "'" + std::string(1, bytes[i]) + "'"
                            : "byte 0x" +
                                  [&] {
                                    static const char* hex = "0123456789abcdef";
                                    const auto b = static_cast<unsigned char>(bytes[i]);
                                    return std::string{hex[b >> 4U], hex[b & 15U]};
                                  }()),
                   base + i, {}, offsets_of);
}

constexpr std::uint64_t k_mib = std::uint64_t{1} << 20U;

/// "12 MB" (rounded up), or "3 KB" / "22 bytes" below a MB, for messages.
std::string size_text(std::uint64_t bytes) {
  if (bytes >= k_mib) return std::to_string((bytes + k_mib - 1) / k_mib) + " MB";
  if (bytes >= 1024) return std::to_string((bytes + 1023) / 1024) + " KB";
  return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

std::filesystem::path temp_directory(const InputOptions& options) {
  if (!options.temp_dir.empty()) return options.temp_dir;
  const char* env = std::getenv("TMPDIR");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path("/tmp");
}

/// What the messages about a temporary file that cannot be written end with.
const char* const k_disk_advice =
    ": free some space there, point --temp-dir (or TMPDIR) at a disk with room for the "
    "inflated export, or gunzip it elsewhere and load the result";

/// A file in `dir` that no directory lists (O_TMPFILE, else mkstemp and unlink), open for
/// reading and writing: its blocks are freed when it is closed and no longer mapped, also
/// when the process dies.
int create_unlinked_file(const std::filesystem::path& dir, const std::string& name) {
#ifdef O_TMPFILE
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  const int error = errno;
  // File systems without O_TMPFILE say EOPNOTSUPP (old kernels EISDIR): use a named file.
  if (error != EOPNOTSUPP && error != EISDIR && error != EINVAL)
    throw InputError(name, "cannot create a temporary file in '" + dir.string() +
                               "' to decompress into: " + errno_text(error) +
                               " (set --temp-dir or TMPDIR to a writable directory)");
#endif
  std::string path = (dir / "skype-etl-inflate-XXXXXX").string();
  const int named = ::mkostemp(path.data(), O_CLOEXEC);
  if (named < 0) {
    const int mkstemp_error = errno;
    throw InputError(name, "cannot create a temporary file in '" + dir.string() +
                               "' to decompress into: " + errno_text(mkstemp_error) +
                               " (set --temp-dir or TMPDIR to a writable directory)");
  }
  ::unlink(path.c_str());
  return named;
}

/// Where inflated bytes go: the unlinked file, written in bounded steps. Refuses (InputError)
/// to write past the gzip ratio limit or into the disk's reserve, and samples private memory
/// (MemoryLimitExceeded) as it goes.
class InflateSink {
 public:
  InflateSink(int fd, std::filesystem::path dir, const std::string& name,
              const InputOptions& options)
      : m_fd(fd), m_dir(std::move(dir)), m_name(name), m_options(options) {}

  std::uint64_t size() const noexcept { return m_written; }

  /// Appends `data`; `compressed_read` is how much of the gzip file produced it and what
  /// came before.
  void write(const char* data, std::size_t size, std::uint64_t compressed_read) {
    if (size == 0) return;
    if (m_options.memory) m_options.memory->check_memory();
    check_ratio(m_written + size, compressed_read);
    check_free_space(size);
    if (m_options.inflated_from)
      m_options.inflated_from->store(compressed_read, std::memory_order_relaxed);
    while (size > 0) {
      const ssize_t n = ::write(m_fd, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_write(errno);
      data += n;
      size -= static_cast<std::size_t>(n);
      m_written += static_cast<std::uint64_t>(n);
    }
  }

 private:
  void check_ratio(std::uint64_t total, std::uint64_t compressed_read) const {
    const std::uint64_t ratio = m_options.max_gzip_ratio;
    if (ratio == 0) return;
    const std::uint64_t allowed = compressed_read > (UINT64_MAX - gzip_ratio_allowance) / ratio
                                      ? UINT64_MAX
                                      : compressed_read * ratio + gzip_ratio_allowance;
    if (total <= allowed) return;
    throw InputError(m_name, "gzip data inflates to more than " + std::to_string(ratio) +
                                 " times its compressed size (" + size_text(total) +
                                 " from the first " + size_text(compressed_read) +
                                 "), which no real export does: refused as a likely gzip "
                                 "bomb; if the file is genuine, load it with "
                                 "--max-gzip-ratio 0, or gunzip it and load the result");
  }

  /// Keeps the reserve free on the temporary file's file system, so that a large export (or
  /// a bomb under the ratio) fails here with a clear message rather than filling the disk
  /// under other programs, the database server perhaps among them.
  void check_free_space(std::size_t size) {
    struct statvfs fs {};
    if (::fstatvfs(m_fd, &fs) != 0) return;  // nothing to go by: write() will say ENOSPC
    const std::uint64_t block = fs.f_frsize ? fs.f_frsize : fs.f_bsize;
    if (!m_keep_free) {
      m_keep_free = m_options.keep_free_bytes.value_or(
          std::min<std::uint64_t>(std::uint64_t{1} << 30U, fs.f_blocks * block / 20));
    }
    const std::uint64_t available = fs.f_bavail * block;
    if (available >= *m_keep_free && available - *m_keep_free >= size) return;
    throw InputError(m_name, "cannot decompress into '" + m_dir.string() +
                                 "': its disk has too little free space for the inflated "
                                 "export (" +
                                 size_text(m_written) + " written, " + size_text(available) +
                                 " free, " + size_text(*m_keep_free) + " kept free)" +
                                 k_disk_advice);
  }

  [[noreturn]] void fail_write(int error) const {
    const std::string why = error == ENOSPC || error == EDQUOT
                                ? "its disk is full (" + errno_text(error) + ")"
                                : errno_text(error);
    throw InputError(m_name, "cannot decompress into '" + m_dir.string() + "': " + why + " after " +
                                 size_text(m_written) + " of inflated data" + k_disk_advice);
  }

  int m_fd;
  std::filesystem::path m_dir;
  std::string m_name;
  const InputOptions& m_options;
  std::uint64_t m_written = 0;
  std::optional<std::uint64_t> m_keep_free;
};

/// zlib's inflate state, ended however the function using it leaves.
struct Inflater {
  z_stream z{};
  bool live = false;
  ~Inflater() {
    if (live) inflateEnd(&z);
  }
};

/// Inflates a gzip stream (possibly several members) into `sink`, through a buffer of fixed
/// size (never sized by the trailer's ISIZE, which a file can forge). Error offsets are of
/// the compressed file: for data that ends early, the start of the member that never ends;
/// for corrupt data, the last byte zlib read before it gave up (it reads some fields, e.g. a
/// stored block's lengths, several bytes at a time).
void gunzip(std::string_view in, const std::string& name, InflateSink& sink) {
  constexpr std::size_t out_chunk = std::size_t{1} << 20U;
  auto out = std::make_unique<char[]>(out_chunk);
  Inflater inflater;
  z_stream& z = inflater.z;
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw InputError(name, "cannot start gzip decoder");
  inflater.live = true;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = 0;
  std::size_t consumed = 0;
  std::size_t member_start = 0;
  // The position of the next byte zlib reads (z.total_in restarts at each member).
  const auto read_up_to = [&] {
    return static_cast<std::size_t>(reinterpret_cast<const char*>(z.next_in) - in.data());
  };
  // zlib reads a member's method and flags bytes together: check the method on its own so
  // that the offset names its byte.
  const auto check_method = [&](std::size_t member) {
    if (in.size() > member + 2 && static_cast<unsigned char>(in[member + 2]) != Z_DEFLATED)
      throw InputError(name, "corrupt gzip data: unknown compression method", member + 2);
  };
  check_method(0);
  std::size_t pending = 0;  // bytes of `out` not yet written
  while (true) {
    if (z.avail_in == 0 && consumed < in.size()) {
      const std::size_t chunk = std::min<std::size_t>(in.size() - consumed, 1U << 30U);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + consumed));
      z.avail_in = static_cast<uInt>(chunk);
      consumed += chunk;
    }
    if (pending == out_chunk) {
      sink.write(out.get(), pending, read_up_to());
      pending = 0;
    }
    z.next_out = reinterpret_cast<Bytef*>(out.get() + pending);
    z.avail_out = static_cast<uInt>(out_chunk - pending);
    const int rc = inflate(&z, Z_NO_FLUSH);
    pending = out_chunk - z.avail_out;
    if (rc == Z_STREAM_END) {
      const std::size_t left = z.avail_in + (in.size() - consumed);
      const std::size_t at = in.size() - left;
      if (left >= 2 && is_gzip(in.substr(at))) {  // another gzip member follows
        member_start = at;
        check_method(member_start);
        inflateReset(&z);
        continue;
      }
      break;
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0 && consumed == in.size())
      throw InputError(name, "truncated gzip data: the member starting here never ends",
                       member_start);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      const std::string why = z.msg ? z.msg : "invalid compressed data";
      const std::size_t read = read_up_to();
      throw InputError(name, "corrupt gzip data: " + why, read > 0 ? read - 1 : 0);
    }
  }
  sink.write(out.get(), pending, read_up_to());
}

/// What a file that is not a regular file is, for the error that refuses it.
std::string not_regular_file(mode_t mode) {
  const char* what = S_ISDIR(mode)    ? "a directory"
                     : S_ISFIFO(mode) ? "a named pipe (FIFO)"
                     : S_ISSOCK(mode) ? "a socket"
                     : S_ISCHR(mode)  ? "a character device"
                     : S_ISBLK(mode)  ? "a block device"
                                      : "not a file";
  return std::string("not a regular file: ") + what +
         " (give the export's .tar, its messages.json, or an unpacked export directory)";
}

std::string base_name(const std::string& entry) {
  const auto slash = entry.rfind('/');
  return slash == std::string::npos ? entry : entry.substr(slash + 1);
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) {
  Fd fd;
  // O_NONBLOCK: opening a FIFO (or a device) for reading must not wait for a writer; what
  // is not a regular file is refused just below. It changes nothing for a regular file.
  fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd.fd < 0) throw InputError(path.string(), "cannot open: " + errno_text(errno));
  map(fd.fd, path.string());
}

MappedFile::MappedFile(int fd, const std::string& name) {
  map(fd, name);
}

void MappedFile::map(int fd, const std::string& name) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw InputError(name, "cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) throw InputError(name, not_regular_file(st.st_mode));
  m_size = static_cast<std::size_t>(st.st_size);
  const std::size_t page = page_size();
  // Reserve the file's pages plus padding as zero-filled anonymous memory, then map the file
  // over the front: reads past the end of the file land in the zero pages, not in SIGBUS.
  m_mapped = round_up(m_size, page) + round_up(input_padding, page);
  void* base = ::mmap(nullptr, m_mapped, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) throw InputError(name, "cannot map: " + errno_text(errno));
  m_data = static_cast<char*>(base);
  if (m_size > 0) {
    void* file = ::mmap(base, m_size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (file == MAP_FAILED) {
      const int error = errno;
      ::munmap(base, m_mapped);
      m_data = nullptr;
      throw InputError(name, "cannot map: " + errno_text(error));
    }
    ::madvise(base, m_size, MADV_SEQUENTIAL);
  }
}

MappedFile::~MappedFile() {
  if (m_data) ::munmap(m_data, m_mapped);
}

void MappedFile::release_before(std::uint64_t offset) noexcept {
  const std::size_t page = page_size();
  const std::uint64_t end = std::min<std::uint64_t>(offset, m_size) / page * page;
  if (end <= m_released) return;
  // File-backed private pages that were never written are re-read from the file if touched
  // again, so views into them stay valid.
  ::madvise(m_data + m_released, end - m_released, MADV_DONTNEED);
  m_released = end;
}

InputSource::~InputSource() {
  // The digest thread reads the mapping: it must finish before the mapping goes.
  if (m_digest_task.valid()) m_digest_task.wait();
}

std::shared_future<std::string> InputSource::digest_async() {
  if (!m_digest_task.valid()) {
    m_digest_task = std::async(std::launch::async, [this] { return digest(); }).share();
  }
  return m_digest_task;
}

std::shared_ptr<InputSource> InputSource::open(const std::filesystem::path& path,
                                               const InputOptions& options) {
  std::shared_ptr<InputSource> source(new InputSource());
  source->m_path = path;
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    throw InputError(
        path.string(),
        std::string("no such file or directory") +
            (ec && ec != std::errc::no_such_file_or_directory ? " (" + ec.message() + ")" : ""));
  }
  if (std::filesystem::is_directory(status)) {
    const auto json = path / "messages.json";
    if (!std::filesystem::exists(json))
      throw InputError(path.string(), "directory has no messages.json (not an unpacked export)");
    source->m_map = std::make_unique<MappedFile>(json);
    source->m_kind = "directory";
    source->m_json = source->m_map->bytes();
    source->m_json_name = json.string();
    source->m_digest_path = json;
    source->m_file_size = source->m_json.size();
    require_json_object(source->m_json, source->m_json_name, 0, {});
    return source;
  }

  source->m_map = std::make_unique<MappedFile>(path);
  source->m_digest_path = path;
  std::string_view bytes = source->m_map->bytes();
  source->m_file_size = bytes.size();
  const std::string name = path.string();
  if (bytes.empty()) throw InputError(name, "file is empty");

  bool compressed = false;
  if (is_gzip(bytes)) {
    // Inflated into a file and mapped like a plain export: private memory stays flat, and
    // views into the content stay valid for as long as the source lives.
    const std::filesystem::path dir = temp_directory(options);
    Fd inflated;
    inflated.fd = create_unlinked_file(dir, name);
    InflateSink sink(inflated.fd, dir, name, options);
    gunzip(bytes, name, sink);
    source->m_inflated = std::make_unique<MappedFile>(inflated.fd, name);
    bytes = source->m_inflated->bytes();
    compressed = true;
    if (bytes.empty()) throw InputError(name, "gzip data decompresses to nothing");
  }
  if (const auto foreign = foreign_format(bytes); !foreign.empty()) {
    throw InputError(name, "is " + std::string(foreign) + (compressed ? " inside gzip" : "") +
                               ", not a Skype export (expected the .tar Skype produces, its "
                               "messages.json, or either gzip-compressed)");
  }
  if (looks_like_tar(bytes)) {
    source->m_kind = compressed ? "tar.gz" : "tar";
    source->m_archive_offsets_of = compressed ? "the decompressed tar" : "";
    source->m_json_offsets_of = compressed ? "the decompressed tar" : "the tar";
    const auto members = list_tar(bytes, name, source->m_archive_offsets_of);
    const TarMember* chosen = nullptr;
    source->m_archive = bytes;
    for (const auto& m : members) {
      if (m.name.rfind("media/", 0) == 0 || m.name.find("/media/") != std::string::npos)
        source->m_media_members.push_back(m);
      if (m.type != '0' && m.type != '7') continue;
      const std::string base = base_name(m.name);
      if (base == "messages.json") {
        // Prefer the shallowest messages.json (the export's root).
        if (!chosen || std::count(m.name.begin(), m.name.end(), '/') <
                           std::count(chosen->name.begin(), chosen->name.end(), '/'))
          chosen = &m;
      }
      // media/<docid>.json metadata and media/<docid>.<n>.<ext> files.
      const auto slash = m.name.rfind('/');
      const std::string dir = slash == std::string::npos ? "" : m.name.substr(0, slash);
      if (dir == "media" || (dir.size() > 6 && dir.compare(dir.size() - 6, 6, "/media") == 0)) {
        const auto dot = base.find('.');
        if (dot == std::string::npos || dot == 0) continue;
        const std::string doc_id = base.substr(0, dot);
        MediaEntry& entry = source->m_media[doc_id];
        if (base.compare(dot, std::string::npos, ".json") == 0) {
          entry.metadata_path = m.name;
          entry.metadata = bytes.substr(m.offset, m.size);  // a view: read only if used
        } else {
          entry.file_paths.push_back(m.name);
          if (base.compare(dot, 3, ".1.") == 0) entry.file_size = m.size;
        }
      }
    }
    if (!chosen) {
      std::string listing;
      for (std::size_t i = 0; i < members.size() && i < 5; ++i)
        listing += (i ? ", " : "") + members[i].name;
      if (members.size() > 5) listing += ", ...";
      throw InputError(name, "tar archive has no messages.json" +
                                 (members.empty() ? std::string(" (it is empty)")
                                                  : " (entries: " + listing + ")"));
    }
    source->m_json = bytes.substr(chosen->offset, chosen->size);
    source->m_json_offset = chosen->offset;
    source->m_json_name = name + ":" + chosen->name;
    require_json_object(source->m_json, source->m_json_name, source->m_json_offset,
                        source->m_json_offsets_of);
    return source;
  }
  source->m_kind = compressed ? "json.gz" : "json";
  source->m_json = bytes;
  source->m_json_name = name;
  source->m_json_offsets_of = compressed ? "the decompressed JSON" : "";
  require_json_object(bytes, name, 0, source->m_json_offsets_of);
  return source;
}

std::array<unsigned char, 32> sha256(std::string_view bytes) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("cannot initialise SHA-256");
  constexpr std::size_t chunk = 8U << 20U;
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    EVP_DigestUpdate(ctx.get(), bytes.data() + at, std::min(chunk, bytes.size() - at));
  }
  std::array<unsigned char, 32> md{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md.data(), &len);
  return md;
}

const std::string& InputSource::digest() {
  if (!m_digest.empty()) return m_digest;
  std::unique_ptr<MappedFile> own;
  const MappedFile* map = m_map.get();
  if (!map || m_kind == "directory") {
    own = std::make_unique<MappedFile>(m_digest_path);
    map = own.get();
  }
  const auto md = sha256(map->bytes());
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256:";
  for (const unsigned char b : md) {
    out += hex[b >> 4U];
    out += hex[b & 15U];
  }
  m_digest = std::move(out);
  return m_digest;
}

std::uint64_t InputSource::content_size() const noexcept {
  return m_inflated ? m_inflated->size() : m_file_size;
}

void InputSource::release_before(std::uint64_t json_position) noexcept {
  MappedFile* map = m_inflated ? m_inflated.get() : m_map.get();
  if (map) map->release_before(m_json_offset + json_position);
}

}  // namespace skype_etl::detail
