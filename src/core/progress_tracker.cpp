// ProgressTracker: per-phase counters. update() is the hot path (relaxed atomic adds);
// statistics() reads the atomics without locking, so it may run concurrently with update().
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "core/clock.hpp"
#include "skype_etl/context.hpp"

namespace skype_etl {
namespace detail {

std::int64_t now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string format_utc_us(std::int64_t us) {
  std::int64_t seconds = us / 1000000;
  std::int64_t micros = us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    --seconds;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(micros));
  return buffer;
}

}  // namespace detail

void ProgressTracker::start(std::uint64_t total_conversations,
                            std::uint64_t total_messages) noexcept {
  m_end_us.store(0, std::memory_order_relaxed);
  m_processed_conversations.store(0, std::memory_order_relaxed);
  m_processed_messages.store(0, std::memory_order_relaxed);
  m_total_conversations.store(total_conversations, std::memory_order_relaxed);
  m_total_messages.store(total_messages, std::memory_order_relaxed);
  // Release: a reader that sees the new start time also sees the reset counters.
  m_start_us.store(detail::now_us(), std::memory_order_release);
}

void ProgressTracker::set_totals(std::uint64_t total_conversations,
                                 std::uint64_t total_messages) noexcept {
  m_total_conversations.store(total_conversations, std::memory_order_relaxed);
  m_total_messages.store(total_messages, std::memory_order_relaxed);
}

void ProgressTracker::update(std::uint64_t conversations, std::uint64_t messages) noexcept {
  if (conversations != 0)
    m_processed_conversations.fetch_add(conversations, std::memory_order_relaxed);
  if (messages != 0) m_processed_messages.fetch_add(messages, std::memory_order_relaxed);
}

void ProgressTracker::finish() noexcept {
  m_end_us.store(detail::now_us(), std::memory_order_release);
}

std::uint64_t ProgressTracker::processed_conversations() const noexcept {
  return m_processed_conversations.load(std::memory_order_relaxed);
}

std::uint64_t ProgressTracker::processed_messages() const noexcept {
  return m_processed_messages.load(std::memory_order_relaxed);
}

nlohmann::json ProgressTracker::statistics() const {
  const std::int64_t start_us = m_start_us.load(std::memory_order_acquire);
  const std::int64_t end_us = m_end_us.load(std::memory_order_acquire);
  const std::uint64_t total_conversations = m_total_conversations.load(std::memory_order_relaxed);
  const std::uint64_t total_messages = m_total_messages.load(std::memory_order_relaxed);
  const std::uint64_t conversations = m_processed_conversations.load(std::memory_order_relaxed);
  const std::uint64_t messages = m_processed_messages.load(std::memory_order_relaxed);

  double duration = 0.0;
  if (start_us != 0) {
    // While running the duration is live (up to now).
    const std::int64_t until = end_us != 0 ? end_us : detail::now_us();
    if (until > start_us) duration = static_cast<double>(until - start_us) / 1e6;
  }
  const auto percent = [](std::uint64_t done, std::uint64_t total) {
    return total != 0 ? static_cast<double>(done) / static_cast<double>(total) * 100.0 : 0.0;
  };
  const auto rate = [duration](std::uint64_t done) {
    return duration > 0.0 ? static_cast<double>(done) / duration : 0.0;
  };

  nlohmann::json stats = nlohmann::json::object();
  stats["phase"] = std::string(phase_name(m_phase));
  stats["start_time"] = start_us != 0 ? nlohmann::json(detail::format_utc_us(start_us)) : nullptr;
  stats["end_time"] = end_us != 0 ? nlohmann::json(detail::format_utc_us(end_us)) : nullptr;
  stats["duration_seconds"] = duration;
  stats["total_conversations"] = total_conversations;
  stats["processed_conversations"] = conversations;
  stats["conversation_percent"] = percent(conversations, total_conversations);
  stats["total_messages"] = total_messages;
  stats["processed_messages"] = messages;
  stats["message_percent"] = percent(messages, total_messages);
  stats["conversations_per_second"] = rate(conversations);
  stats["messages_per_second"] = rate(messages);
  return stats;
}

}  // namespace skype_etl
