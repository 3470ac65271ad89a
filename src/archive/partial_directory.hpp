// The directory `skype-etl export` writes into before renaming it to DIR: a new directory
// `.<DIR name>.skype-etl-partial-XXXXXX` beside DIR (README, "Reading your history"). The
// process writing one holds an flock(2) on it for its whole life, so that a later export
// can tell the directory of a live export from one a killed export left behind, and remove
// only the latter (remove_stale_partial_directories). The kernel drops the lock when the
// process ends, however it ends (kill -9 too); after a power loss nothing holds it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace skype_etl::detail::archive {

/// A new, locked partial directory beside a target; removed (with what is in it) on
/// destruction unless released. Not copyable.
class PartialDirectory {
 public:
  /// Creates the directory in `target`'s parent (mode 0700, as mkdtemp makes it) and locks
  /// it. Throws OutputError naming `target` when it cannot be created.
  explicit PartialDirectory(const std::filesystem::path& target);
  /// Removes the directory unless released; then drops the lock.
  ~PartialDirectory();
  PartialDirectory(const PartialDirectory&) = delete;
  PartialDirectory& operator=(const PartialDirectory&) = delete;

  const std::filesystem::path& path() const noexcept { return m_path; }
  /// Whether the lock is held: false only on a file system without flock (some network
  /// file systems), where no later export removes the directory either.
  bool locked() const noexcept { return m_locked; }
  /// The directory was renamed into place: keep it. The lock is dropped on destruction.
  void release() noexcept { m_path.clear(); }

 private:
  std::filesystem::path m_path;
  int m_fd = -1;
  bool m_locked = false;
};

/// Whether `name` is a partial directory's name for a target named `target_name`: the
/// prefix, then exactly 6 ASCII letters or digits (mkdtemp's XXXXXX).
bool is_partial_directory_name(std::string_view name, std::string_view target_name);

/// What remove_stale_partial_directories did, paths in `target`'s parent.
struct StaleRemoval {
  std::vector<std::filesystem::path> removed;
  /// A stale one that could not be removed (wholly), with the reason: "PATH: reason".
  std::vector<std::string> failed;
};

/// Removes the partial directories of `target` that no live export holds: each entry of
/// `target`'s parent whose name is_partial_directory_name, that is a directory (not a
/// symbolic link, which is never followed) owned by the effective user, and whose lock is
/// free (taken without waiting, and held while the directory is removed). Anything else,
/// a parent that cannot be listed included, is left alone. Never throws for a file-system
/// error: those are in `failed` (or, when listing fails, nothing is done).
StaleRemoval remove_stale_partial_directories(const std::filesystem::path& target);

}  // namespace skype_etl::detail::archive
