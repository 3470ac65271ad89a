// Small helpers the benchmark programs share: timing, peak private memory, argument lists.
#pragma once

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "skype_etl/context.hpp"

namespace skype_etl::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// CPU time of the calling thread (the machine is shared: CPU time is the per-core cost).
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// "a,b,,c" → {"a", "b", "c"}.
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    const std::size_t next = std::min(s.find(sep, at), s.size());
    if (next > at) out.push_back(s.substr(at, next - at));
    at = next + 1;
  }
  return out;
}

/// Peak private memory (RssAnon) of this process while a measurement runs, sampled every
/// 2 ms by a thread of its own: /proc has no peak for RssAnon, and VmHWM counts the
/// memory-mapped input's file pages. The constructor samples once, so peak_bytes() right
/// after construction is the starting level; sample() may also be called from the measured
/// thread at points of interest; stop() samples a last time.
class RssAnonSampler {
 public:
  RssAnonSampler() {
    sample();
    m_thread = std::thread([this] { run(); });
  }
  ~RssAnonSampler() { stop(); }
  RssAnonSampler(const RssAnonSampler&) = delete;
  RssAnonSampler& operator=(const RssAnonSampler&) = delete;

  void sample() noexcept {
    const std::size_t now = MemoryMonitor::read_rss_anon_bytes();
    std::size_t old = m_peak.load(std::memory_order_relaxed);
    while (now > old && !m_peak.compare_exchange_weak(old, now)) {
    }
  }
  void stop() noexcept {
    if (!m_thread.joinable()) return;
    m_stop.store(true);
    m_thread.join();
    sample();
  }
  std::size_t peak_bytes() const noexcept { return m_peak.load(); }
  std::uint64_t peak_kb() const noexcept { return peak_bytes() / 1024; }
  double peak_mb() const noexcept { return static_cast<double>(peak_bytes()) / (1024.0 * 1024.0); }

 private:
  void run() noexcept {
    while (!m_stop.load(std::memory_order_relaxed)) {
      sample();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  std::atomic<std::size_t> m_peak{0};
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

}  // namespace skype_etl::bench
