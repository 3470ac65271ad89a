#include "load/repeat_tracker.hpp"

namespace skype_etl::detail {

void RepeatTracker::start_conversation(std::string_view id) {
  if (!m_conversation.empty() && m_conversation == id) return;
  finish_conversation();
  m_conversation.assign(id);
  // Its earlier messages' hashes are gone: every message of it may repeat one of them.
  m_returned = m_finished.count(m_conversation) > 0;
}

void RepeatTracker::finish_conversation() {
  m_hashes.clear();
  if (!m_conversation.empty()) m_finished.insert(m_conversation);
  m_conversation.clear();
  m_returned = false;
}

void RepeatTracker::clear() {
  m_conversation.clear();
  m_hashes.clear();
  m_returned = false;
  m_finished.clear();
  m_repeats = 0;
}

}  // namespace skype_etl::detail
