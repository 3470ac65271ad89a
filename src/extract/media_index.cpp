#include "extract/media_index.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace skype_etl::detail {
namespace {

/// The string `key` of `object`, or "" when it is missing or not a string.
std::string string_field(const nlohmann::json& object, const char* key) {
  const auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : std::string();
}

/// Fills `out` from the metadata's bytes; returns why it cannot be used, or "" when it can.
std::string read_metadata(std::string_view bytes, MediaMetadata& out) {
  if (bytes.size() > k_max_media_metadata_bytes)
    return "larger than " + std::to_string(k_max_media_metadata_bytes / 1024) + " KiB (" +
           std::to_string(bytes.size()) + " bytes)";
  nlohmann::json metadata;
  try {
    metadata = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::parse_error& error) {
    return "not valid JSON (at byte " + std::to_string(error.byte > 0 ? error.byte - 1 : 0) + ")";
  }
  if (!metadata.is_object()) return std::string("not a JSON object, but ") + metadata.type_name();
  out.file_name = string_field(metadata, "filename");
  const auto contents = metadata.find("contents");
  if (contents != metadata.end() && contents->is_object()) {
    const auto first = contents->find("1");
    if (first != contents->end() && first->is_object())
      out.content_type = string_field(*first, "type");
  }
  if (out.content_type.empty()) out.content_type = string_field(metadata, "content_type");
  return {};
}

}  // namespace

std::shared_ptr<const MediaIndex> read_media_index(const InputSource& source) {
  auto index = std::make_shared<MediaIndex>();
  for (const auto& [doc_id, entry] : source.media()) {
    MediaMetadata& item = index->by_doc_id[doc_id];
    if (entry.file_size > 0) item.size = static_cast<std::int64_t>(entry.file_size);
    if (entry.metadata_path.empty()) continue;  // files without metadata: their size only
    const std::string why = read_metadata(entry.metadata, item);
    if (why.empty()) continue;
    item.file_name.clear();
    item.content_type.clear();
    if (index->ignored++ == 0) {
      index->first_ignored = entry.metadata_path;
      index->first_ignored_reason = why;
    }
  }
  return index;
}

}  // namespace skype_etl::detail
