// Reading tar archives in place: ustar, GNU ('L'/'K' long names, base-256 sizes) and PAX
// ('x' path/size records) headers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace skype_etl::detail {

struct TarMember {
  std::string name;
  char type = '0';           ///< '0' file, '5' directory, '1'/'2' links, ...
  std::uint64_t offset = 0;  ///< of the member's data within the archive
  std::uint64_t size = 0;
  std::uint64_t header_offset = 0;
};

/// True when `archive` starts with a tar header (ustar magic or a valid v7 checksum).
bool looks_like_tar(std::string_view archive) noexcept;

/// Lists every member. Throws InputError naming `file` (with the byte offset, and
/// `offsets_of` to say what it counts when `archive` is not `file`'s bytes, see
/// InputError::offset_of) for a corrupt header or a member whose data runs past the end of
/// the archive.
std::vector<TarMember> list_tar(std::string_view archive, const std::string& file,
                                const std::string& offsets_of = {});

/// True for names that must never be written to disk: absolute paths and `..` parts.
bool is_unsafe_member_name(std::string_view name) noexcept;

}  // namespace skype_etl::detail
