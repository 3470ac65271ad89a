// Reading a tar's media/<docid>.json metadata once per export (--with-media).
#pragma once

#include <cstddef>
#include <memory>

#include "core/model.hpp"
#include "extract/input_file.hpp"

namespace skype_etl::detail {

/// The largest media/<docid>.json read. Real ones are a few hundred bytes (an expiry date,
/// a file name, a content type); a larger one is ignored and counted (MediaIndex::ignored),
/// so that a small archive cannot make the reader hold or parse much.
inline constexpr std::size_t k_max_media_metadata_bytes = 64 * 1024;

/// Parses every media/<docid>.json of `source` (a tar; empty for other kinds) once and
/// keeps only what attachments use: the file name, the content type, and the size of
/// media/<docid>.1.<ext>. Metadata that is too large, not JSON or not an object is ignored
/// and counted, never an error: the export still loads, its attachments without the name
/// and content type. Memory: about the size of the fields kept, whatever the metadata files'
/// sizes and however many messages name them.
std::shared_ptr<const MediaIndex> read_media_index(const InputSource& source);

}  // namespace skype_etl::detail
