// Writing the media files of a tar export under --output-dir.
#pragma once

#include <cstddef>
#include <filesystem>

#include "extract/input_file.hpp"

namespace skype_etl::detail {

/// Writes every regular file below media/ in the source's tar to `directory`/<entry name>,
/// and returns how many. Refuses (InputError, before writing anything) entry names that are
/// absolute or contain `..`, and link entries; never follows a symlink on disk, so nothing
/// is ever written outside `directory`. Existing files are replaced.
std::size_t write_media_files(const InputSource& source, const std::filesystem::path& directory);

}  // namespace skype_etl::detail
