// Repeats: messages of an export whose id may have been seen before in their conversation.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>

#include "load/id_seen_filter.hpp"

namespace skype_etl::detail {

/// Finds the messages of an export whose id may have been seen before in their
/// conversation, from 64-bit hashes of the ids (IdSeenFilter: at most 1.5 MiB however large
/// the conversation; a false "seen" only costs the merge a look, a repeat is never missed).
/// Every message of a conversation that comes back after another one began (not contiguous
/// in the file) is a repeat too. A staged load deduplicates stage_messages when there was
/// any; a side-table load sends repeats to stage_messages instead of the side table, which
/// thus holds each id once, and merges them once it is attached. Not thread-safe.
class RepeatTracker {
 public:
  /// The messages that follow are of conversation `id` (the current one, or another).
  void start_conversation(std::string_view id);
  /// Ends the current conversation: its hashes are released; if it comes back, every
  /// message of it is a repeat.
  void finish_conversation();
  /// Notes message `message_id` of the current conversation; true when it is a repeat.
  bool is_repeat(std::string_view message_id) {
    if (!m_returned && m_hashes.insert(std::hash<std::string_view>{}(message_id))) return false;
    ++m_repeats;
    return true;
  }
  /// Repeats found in the export so far.
  std::uint64_t repeats() const noexcept { return m_repeats; }
  /// Forgets everything (a new export).
  void clear();

 private:
  std::string m_conversation;
  IdSeenFilter m_hashes;
  bool m_returned = false;  // m_conversation was finished before
  std::set<std::string> m_finished;
  std::uint64_t m_repeats = 0;
};

}  // namespace skype_etl::detail
