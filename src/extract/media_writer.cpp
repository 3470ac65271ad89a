#include "extract/media_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

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
      throw InputError(at.string(), "refusing to write media through a symbolic link");
    if (!std::filesystem::exists(status)) {
      std::filesystem::create_directory(at, ec);
      if (ec) throw InputError(at.string(), "cannot create directory: " + ec.message());
    } else if (!std::filesystem::is_directory(status)) {
      throw InputError(at.string(), "exists and is not a directory");
    }
  }
}

}  // namespace

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
  if (ec)
    throw InputError(directory.parent_path().string(), "cannot create directory: " + ec.message());
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
    if (fd < 0)
      throw InputError(target.string(),
                       "cannot write media file: " + std::generic_category().message(errno));
    const char* data = source.archive().data() + m.offset;
    std::size_t left = m.size;
    while (left > 0) {
      const ssize_t n = ::write(fd, data, left);
      if (n < 0) {
        const int error = errno;
        ::close(fd);
        throw InputError(target.string(),
                         "cannot write media file: " + std::generic_category().message(error));
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
