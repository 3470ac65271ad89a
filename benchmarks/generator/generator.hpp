// Synthetic Skype exports shaped like real ones (see ../shared/FORMAT.md), for benchmarks
// and test fixtures. Include as "generator/generator.hpp", link skype_etl_generator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace skype_etl::gen {

struct GeneratorOptions {
  std::uint64_t seed = 1;
  std::uint64_t messages = 1000;  ///< message objects to write in total
  /// 0 = choose from messages (realistic distribution: many small chats, a few huge ones).
  std::size_t conversations = 0;
  enum class Format { json, tar } format = Format::json;
  /// Include FORMAT.md's real-world quirks: fields missing entirely, members as objects,
  /// numbers where strings are expected and the reverse, server-side duplicates of edited
  /// messages (repeated ids), an unknown message type. Without quirks every message id is
  /// distinct inside its conversation (distinct_messages == messages).
  bool quirks = true;
  std::string user_id = "8:live:.cid.0123456789abcdef";
  /// A later export of the same account: each conversation of n messages starts with
  /// n * newer_percent / 100 more, newer than all of its others (a minute apart, from 11
  /// minutes after its newest), and the export date is 30 days later. Everything else is
  /// the export of the same options without them, message for message.
  unsigned newer_percent = 0;
};

struct GeneratorSummary {
  std::uint64_t conversations = 0;
  std::uint64_t messages = 0;           ///< message objects written
  std::uint64_t distinct_messages = 0;  ///< distinct (conversation id, message id) pairs
  std::uint64_t json_bytes = 0;         ///< size of messages.json
  std::uint64_t file_bytes = 0;         ///< size of the output file
  std::map<std::string, std::uint64_t> messages_by_type;  ///< message objects per messagetype
};

/// Writes an export to `out` (messages.json, or a ustar archive holding it at the root).
/// Deterministic: the same options give a byte-identical file, and the messages.json inside
/// a tar equals the json output of the same options. Streams with flat memory (a few MB
/// whatever the size). Throws std::runtime_error when the file cannot be written and
/// std::invalid_argument for unusable options.
GeneratorSummary generate_export(const GeneratorOptions& options, const std::filesystem::path& out);

}  // namespace skype_etl::gen
