// Transform: turns a batch's RawMessages into Messages (clean text + structured fields)
// and each conversation's first chunk into a ConversationRow.
#pragma once

#include <string>
#include <string_view>

#include "core/model.hpp"

namespace skype_etl::detail {

/// Per-export settings of the transform.
struct TransformSettings {
  std::string owner_id;            ///< userId, in any form (made canonical by Transformer)
  std::string owner_display_name;  ///< --user-display-name (may be empty)
};

/// The plain text of a markup string (conversation display names, topics): tags removed,
/// entities decoded, whitespace trimmed; valid UTF-8 without NUL. Thread-safe.
/// (Defined in markup.cpp; markup.hpp has the lower-level pieces.)
std::string markup_to_text(std::string_view markup);

/// Stateless apart from its settings; transform() may run on many batches at once.
/// Every id that names a person (senders, members, ids in details) comes out canonical
/// (core/identity.hpp); threads are never members.
class Transformer {
 public:
  explicit Transformer(TransformSettings settings);
  /// Fills batch.messages (parallel to batch.raw), batch.conversations and
  /// batch.counters. Never throws on bad markup; throws only on std::bad_alloc.
  void transform(Batch& batch) const;

 private:
  TransformSettings m_settings;
};

}  // namespace skype_etl::detail
