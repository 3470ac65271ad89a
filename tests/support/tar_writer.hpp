// Builds tar archives in memory for fixtures: ustar, GNU long names (type 'L') and PAX
// extended headers (type 'x'), so the reader's tar support is tested on every dialect.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace skype_etl::test {

struct TarEntry {
  std::string name;
  std::string data;
  char type = '0';          ///< '0' file, '5' directory, '2' symlink, '1' hard link
  std::string link_target;  ///< for '1' and '2'
};

enum class TarDialect { ustar, gnu, pax };

/// A complete archive (entries, then two zero blocks). Names longer than 100 bytes use
/// the ustar prefix field, a GNU 'L' entry or a PAX 'path' record depending on `dialect`.
std::string make_tar(const std::vector<TarEntry>& entries, TarDialect dialect = TarDialect::ustar);

/// Writes `data` to `path` (creating parent directories); throws on failure.
void write_file(const std::filesystem::path& path, std::string_view data);

/// gzip-compresses `data` (zlib's gzip wrapper).
std::string gzip(std::string_view data);

/// A gzip bomb that is small to build and to store: gzip members, one after another (as
/// `cat a.gz b.gz` makes), of `prefix`, then `filler_mib` MiB of `filler` bytes (the same
/// member of 1 MiB repeated, about 1 KB each), then `suffix`. Inflates about 1000 times.
std::string gzip_bomb(std::string_view prefix, std::size_t filler_mib, char filler,
                      std::string_view suffix);

/// A fresh empty directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const noexcept { return m_path; }
  std::filesystem::path operator/(std::string_view name) const { return m_path / name; }

 private:
  std::filesystem::path m_path;
};

}  // namespace skype_etl::test
