#include "extract/media_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>
#include <system_error>

#include "core/file_name.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail {
namespace {

/// Creates `dir` and its parents below `root`, refusing any component that is a symlink.
void make_directories(const std::filesystem::path& root, const std::filesystem::path& relative) {
  std::filesystem::path at = root;
  for (const auto& part : relative) {
    at /= part;
    std::error_code ec;
    const auto status = std::filesystem::symlink_status(at, ec);
    if (std::filesystem::is_symlink(status))
      throw OutputError("media directory", at.string(),
                        "refusing to write media through a symbolic link");
    if (!std::filesystem::exists(status)) {
      std::filesystem::create_directory(at, ec);
      if (ec) throw OutputError("media directory", at.string(), ec.message());
    } else if (!std::filesystem::is_directory(status)) {
      throw OutputError("media directory", at.string(), "exists and is not a directory");
    }
  }
}

std::string errno_text(int error) {
  return std::generic_category().message(error);
}

bool ends_with(const std::string& s, const char* suffix) {
  const std::string_view tail(suffix);
  return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

/// `name` cut to at most `limit` bytes without splitting a UTF-8 sequence.
std::string cut_at_character(std::string name, std::size_t limit) {
  if (name.size() <= limit) return name;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(name[end]) & 0xC0U) == 0x80U) --end;
  name.resize(end);
  return name;
}

}  // namespace

std::string media_directory_name(const std::filesystem::path& input, std::set<std::string>& taken) {
  std::string name = input.filename().string();
  if (name.empty()) name = input.parent_path().filename().string();  // "dir/"
  if (ends_with(name, ".gz")) name.resize(name.size() - 3);
  if (const auto dot = name.rfind('.'); dot != std::string::npos && dot > 0) name.resize(dot);
  name = escape_file_name(name);  // valid UTF-8 from here on
  for (char& c : name) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F || c == '/') c = '_';
  }
  for (char& c : name) {
    if (c != '.') break;
    c = '_';
  }
  if (name.empty()) name = "export";
  name = cut_at_character(std::move(name), k_max_media_directory_name);
  std::string unique = name;
  for (int n = 2; taken.count(unique) > 0; ++n) unique = name + "-" + std::to_string(n);
  taken.insert(unique);
  return unique;
}

MediaStaging::MediaStaging(const std::filesystem::path& output_dir, const std::string& name) {
  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  if (ec) throw OutputError("media directory", output_dir.string(), ec.message());
  // The name is one plain component, and once links are resolved its directory must still
  // be the output directory: nothing is ever written or replaced anywhere else.
  m_target = output_dir / name;
  const auto root = std::filesystem::weakly_canonical(output_dir, ec);
  const auto resolved = ec ? root : std::filesystem::weakly_canonical(m_target, ec);
  if (ec || name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      resolved.parent_path() != root)
    throw OutputError(
        "media directory", m_target.string(),
        "refusing to write media outside the output directory '" + output_dir.string() + "'");
  struct stat st {};
  if (::lstat(m_target.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    throw OutputError("media directory", m_target.string(),
                      S_ISLNK(st.st_mode) ? "refusing to replace a symbolic link with media"
                                          : "exists and is not a directory");
  // A name of our own, created here (mkdir fails if anything has it): never someone else's.
  // Random rather than counted, so no process-wide counter; mkdir (not mkdtemp) so the
  // published directory gets the user's umask, as any directory they create.
  const std::string prefix = ".skype-etl-partial-" + std::to_string(::getpid()) + "-";
  std::random_device random;
  for (int attempt = 0;; ++attempt) {
    m_staging = output_dir / (prefix + std::to_string(random()));
    if (::mkdir(m_staging.c_str(), 0777) == 0) break;
    const int error = errno;
    if (error != EEXIST || attempt > 1000)
      throw OutputError("media directory", m_staging.string(), errno_text(error));
  }
}

MediaStaging::~MediaStaging() {
  if (m_published || m_staging.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(m_staging, ec);  // best effort: nothing to report it to
}

std::size_t MediaStaging::write(const InputSource& source) {
  m_files += write_media_files(source, m_staging);
  return m_files;
}

void MediaStaging::publish() {
  const auto fail = [this](const std::string& what, int error) {
    // The export is committed: its media stay where they are for the user to move.
    m_published = true;
    throw OutputError("media directory", m_target.string(),
                      "cannot move the export's media into place (" + what +
                          "): " + errno_text(error) + "; they are in '" + m_staging.string() + "'");
  };
  if (::rename(m_staging.c_str(), m_target.c_str()) == 0) {
    m_published = true;
    return;
  }
  if (errno != EEXIST && errno != ENOTEMPTY) fail("rename", errno);
  // An earlier run's directory: swap it with ours in one step, then remove it.
  struct stat st {};
  if (::lstat(m_target.c_str(), &st) != 0) fail("lstat", errno);
  if (!S_ISDIR(st.st_mode)) fail("it is not a directory", ENOTDIR);
  if (::renameat2(AT_FDCWD, m_staging.c_str(), AT_FDCWD, m_target.c_str(), RENAME_EXCHANGE) == 0) {
    m_published = true;
    std::error_code ec;
    std::filesystem::remove_all(m_staging, ec);  // now the old media
    return;
  }
  if (errno != EINVAL && errno != ENOSYS) fail("exchange", errno);
  // A file system without RENAME_EXCHANGE: move the old one aside first.
  const std::filesystem::path old = m_staging.string() + "-old";
  if (::rename(m_target.c_str(), old.c_str()) != 0) fail("rename", errno);
  if (::rename(m_staging.c_str(), m_target.c_str()) != 0) {
    const int error = errno;
    ::rename(old.c_str(), m_target.c_str());
    fail("rename", error);
  }
  m_published = true;
  std::error_code ec;
  std::filesystem::remove_all(old, ec);
}

std::size_t write_media_files(const InputSource& source, const std::filesystem::path& directory) {
  const std::string file = source.path().string();
  // Check everything first: a bad entry writes nothing at all.
  for (const TarMember& m : source.media_members()) {
    if (is_unsafe_member_name(m.name))
      throw InputError(file,
                       "refusing media entry '" + m.name + "': absolute path or '..' in its name");
    if (m.type == '1' || m.type == '2')
      throw InputError(file, "refusing media entry '" + m.name + "': links are never extracted",
                       m.header_offset, {}, source.archive_offsets_of());
  }
  // The user's --output-dir may not exist yet; below it, no component may be a link.
  std::error_code ec;
  std::filesystem::create_directories(directory.parent_path(), ec);
  if (ec) throw OutputError("media directory", directory.parent_path().string(), ec.message());
  make_directories(directory.parent_path(), directory.filename());
  std::size_t written = 0;
  for (const TarMember& m : source.media_members()) {
    if (m.type != '0' && m.type != '7') continue;
    const std::filesystem::path relative(m.name);
    make_directories(directory, relative.parent_path());
    const std::filesystem::path target = directory / relative;
    // O_NOFOLLOW: a symlink planted at the target is an error, never followed.
    const int fd =
        ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) throw OutputError("media file", target.string(), errno_text(errno));
    const char* data = source.archive().data() + m.offset;
    std::size_t left = m.size;
    while (left > 0) {
      const ssize_t n = ::write(fd, data, left);
      if (n < 0) {
        const int error = errno;
        ::close(fd);
        throw OutputError("media file", target.string(), errno_text(error));
      }
      data += n;
      left -= static_cast<std::size_t>(n);
    }
    ::close(fd);
    ++written;
  }
  return written;
}

}  // namespace skype_etl::detail
