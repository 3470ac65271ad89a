#include "archive/partial_directory.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "skype_etl/errors.hpp"

namespace skype_etl::detail::archive {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_infix = ".skype-etl-partial-";
constexpr std::size_t k_random_length = 6;  // mkdtemp's XXXXXX
/// How often a directory removed (by another export's clean-up) between mkdtemp and the lock
/// is made again before giving up: each time needs that clean-up to win a race of
/// microseconds.
constexpr int k_attempts = 100;

/// Opens a directory for its lock without following a symbolic link; -1 for anything else.
int open_directory(const fs::path& path) {
  return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/// Whether `path` still names the directory open as `fd` (not removed, not replaced).
bool still_named(int fd, const fs::path& path) {
  struct stat by_fd {};
  struct stat by_name {};
  return ::fstat(fd, &by_fd) == 0 && ::lstat(path.c_str(), &by_name) == 0 &&
         by_fd.st_dev == by_name.st_dev && by_fd.st_ino == by_name.st_ino;
}

[[noreturn]] void cannot_create(const fs::path& target, const std::string& problem) {
  throw OutputError(
      "export directory", target.string(),
      "cannot create a directory in " + target.parent_path().string() + ": " + problem);
}

class Fd {
 public:
  explicit Fd(int fd) noexcept : m_fd(fd) {}
  ~Fd() {
    if (m_fd >= 0) ::close(m_fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return m_fd; }

 private:
  int m_fd;
};

}  // namespace

PartialDirectory::PartialDirectory(const fs::path& target) {
  const fs::path parent = target.parent_path();
  const std::string prefix =
      (parent / ("." + target.filename().string() + std::string(k_infix))).string();
  for (int attempt = 1;; ++attempt) {
    std::string path = prefix + std::string(k_random_length, 'X');
    if (!::mkdtemp(path.data())) cannot_create(target, std::strerror(errno));
    const int fd = open_directory(path);
    if (fd < 0) {
      const int error = errno;
      // Removed already by a clean-up that saw it unlocked: make another.
      if (error == ENOENT && attempt < k_attempts) continue;
      ::rmdir(path.c_str());
      cannot_create(target, std::strerror(error));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      // A clean-up that took the lock first removed the directory before letting go.
      if (still_named(fd, path)) {
        m_path = path;
        m_fd = fd;
        m_locked = true;
        return;
      }
      ::close(fd);
    } else if (errno == EWOULDBLOCK) {
      ::close(fd);  // a clean-up holds it and is removing it
    } else {
      // No flock on this file system: unlocked, and a clean-up cannot lock it either, so
      // leaves it alone.
      m_path = path;
      m_fd = fd;
      return;
    }
    if (attempt >= k_attempts)
      cannot_create(target,
                    "each new directory was removed at once (by another export's clean-up?)");
  }
}

PartialDirectory::~PartialDirectory() {
  if (!m_path.empty()) {
    std::error_code ec;
    fs::remove_all(m_path, ec);  // still locked: no clean-up removes it meanwhile
  }
  if (m_fd >= 0) ::close(m_fd);
}

bool is_partial_directory_name(std::string_view name, std::string_view target_name) {
  if (target_name.empty()) return false;
  const std::size_t prefix_length = 1 + target_name.size() + k_infix.size();
  if (name.size() != prefix_length + k_random_length || name[0] != '.' ||
      name.substr(1, target_name.size()) != target_name ||
      name.substr(1 + target_name.size(), k_infix.size()) != k_infix)
    return false;
  for (const char c : name.substr(prefix_length)) {
    const bool alphanumeric =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alphanumeric) return false;
  }
  return true;
}

StaleRemoval remove_stale_partial_directories(const fs::path& target) {
  StaleRemoval result;
  const fs::path parent = target.parent_path();
  const std::string target_name = target.filename().string();
  // Listed first, removed after: nothing is removed while the listing runs.
  std::vector<fs::path> candidates;
  std::error_code ec;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_partial_directory_name(name, target_name)) candidates.push_back(parent / name);
  }
  const uid_t user = ::geteuid();
  for (const fs::path& path : candidates) {
    // A file, a symbolic link (O_NOFOLLOW) or something gone meanwhile does not open.
    const Fd fd(open_directory(path));
    if (fd.get() < 0) continue;
    struct stat status {};
    if (::fstat(fd.get(), &status) != 0 || !S_ISDIR(status.st_mode) || status.st_uid != user)
      continue;
    // Held by a live export (EWOULDBLOCK), or a file system without flock: not ours to judge.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    if (!still_named(fd.get(), path)) continue;
    std::error_code removal;
    fs::remove_all(path, removal);  // removes symbolic links inside, never what they name
    if (removal)
      result.failed.push_back(path.string() + ": " + removal.message());
    else
      result.removed.push_back(path);
  }  // each lock is held until its directory is gone
  return result;
}

}  // namespace skype_etl::detail::archive
