// MemoryMonitor: private memory (RssAnon) from /proc/self/status, rate-limited so that
// check_memory() can be called per batch (or per update_progress) from any thread.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string_view>

#include "skype_etl/context.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl {
namespace {

constexpr std::size_t k_mib = 1024 * 1024;

std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// MB with one decimal, for statistics.
double to_mb(std::size_t bytes) noexcept {
  return std::round(static_cast<double>(bytes) / static_cast<double>(k_mib) * 10.0) / 10.0;
}

}  // namespace

MemoryMonitor::MemoryMonitor(std::optional<std::size_t> limit_mb,
                             std::chrono::milliseconds min_interval)
    // 0 means no limit, as the seed's falsy None did.
    : m_limit_mb(limit_mb && *limit_mb > 0 ? limit_mb : std::nullopt),
      m_min_interval(min_interval) {}

std::size_t MemoryMonitor::read_rss_anon_bytes() noexcept {
  // Plain read(2) into a stack buffer: no allocation, no iostreams (called on hot paths).
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buffer[8192];
  std::size_t used = 0;
  while (used < sizeof buffer) {
    const ssize_t n = ::read(fd, buffer + used, sizeof buffer - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);

  const std::string_view text(buffer, used);
  constexpr std::string_view key = "\nRssAnon:";
  const std::size_t at = text.find(key);
  if (at == std::string_view::npos) return 0;
  std::size_t pos = at + key.size();
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
  std::size_t kib = 0;
  bool any_digit = false;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    kib = kib * 10 + static_cast<std::size_t>(text[pos] - '0');
    any_digit = true;
    ++pos;
  }
  return any_digit ? kib * 1024 : 0;  // the kernel reports kB (KiB)
}

std::size_t MemoryMonitor::sample() noexcept {
  const std::size_t bytes = read_rss_anon_bytes();
  m_last_sample_ns.store(steady_now_ns(), std::memory_order_relaxed);
  m_last_bytes.store(bytes, std::memory_order_relaxed);
  std::size_t peak = m_peak_bytes.load(std::memory_order_relaxed);
  while (bytes > peak &&
         !m_peak_bytes.compare_exchange_weak(peak, bytes, std::memory_order_relaxed)) {
  }
  return bytes;
}

void MemoryMonitor::check_memory() {
  const std::int64_t now = steady_now_ns();
  std::int64_t last = m_last_sample_ns.load(std::memory_order_relaxed);
  const std::int64_t interval_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(m_min_interval).count();
  if (last == 0 || now - last >= interval_ns) {
    // One caller wins the right to read /proc; concurrent callers use the last sample.
    if (m_last_sample_ns.compare_exchange_strong(last, now, std::memory_order_relaxed)) sample();
  }
  if (!m_limit_mb) return;
  const std::size_t bytes = m_last_bytes.load(std::memory_order_relaxed);
  if (bytes > *m_limit_mb * k_mib) {
    // Rounded up, so that the message never shows a usage equal to the limit.
    throw MemoryLimitExceeded((bytes + k_mib - 1) / k_mib, *m_limit_mb);
  }
}

void MemoryMonitor::check_allocation(std::size_t bytes, const std::string& what) {
  if (!m_limit_mb || bytes < large_allocation) {
    check_memory();
    return;
  }
  // Rare (one large value): read /proc now, whatever the rate limit says.
  const std::size_t in_use = sample();
  const std::size_t limit = *m_limit_mb * k_mib;
  if (in_use <= limit && bytes <= limit - in_use) return;
  throw MemoryLimitExceeded((in_use + k_mib - 1) / k_mib, (bytes + k_mib - 1) / k_mib, *m_limit_mb,
                            what);
}

nlohmann::json MemoryMonitor::statistics() const {
  // A rare path: read now rather than report a stale (or never taken) sample. The read is
  // not stored (const), but the peak reported includes it.
  const std::size_t current = read_rss_anon_bytes();
  nlohmann::json stats = nlohmann::json::object();
  stats["current_mb"] = to_mb(current);
  stats["peak_mb"] = to_mb(std::max(peak_bytes(), current));
  stats["limit_mb"] = m_limit_mb ? nlohmann::json(*m_limit_mb) : nlohmann::json(nullptr);
  return stats;
}

}  // namespace skype_etl
