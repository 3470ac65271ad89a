// ETLContext: the state shared by every node of a run (progress, phase status,
// statistics, errors, resources, memory). Every method may be called from any thread.
#pragma once

#include <any>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <pqxx/connection>

#include "skype_etl/options.hpp"

namespace skype_etl {

/// The three phases, in pipeline order. Their names are "extract", "transform", "load".
enum class Phase : int { extract = 0, transform = 1, load = 2 };
inline constexpr std::array<Phase, 3> all_phases{Phase::extract, Phase::transform, Phase::load};

/// "extract" etc.
std::string_view phase_name(Phase phase) noexcept;
/// Throws std::invalid_argument("Invalid phase name: foo. Valid phases are: extract, transform,
/// load").
Phase parse_phase(std::string_view name);

/// Progress of one phase. update() is lock-free and allocation-free (hot path);
/// statistics() may be called concurrently with update().
class ProgressTracker {
 public:
  explicit ProgressTracker(Phase phase) noexcept : m_phase(phase) {}

  /// Resets the counters and starts the clock.
  void start(std::uint64_t total_conversations = 0, std::uint64_t total_messages = 0) noexcept;
  void set_totals(std::uint64_t total_conversations, std::uint64_t total_messages) noexcept;
  void update(std::uint64_t conversations, std::uint64_t messages) noexcept;
  /// Stops the clock.
  void finish() noexcept;

  std::uint64_t processed_conversations() const noexcept;
  std::uint64_t processed_messages() const noexcept;
  /// system_clock microseconds since the epoch of start() / finish(); 0 = not yet.
  std::int64_t start_time_us() const noexcept { return m_start_us.load(std::memory_order_acquire); }
  std::int64_t end_time_us() const noexcept { return m_end_us.load(std::memory_order_acquire); }
  /// The seed's statistics object: phase, start_time, end_time, duration_seconds,
  /// total_conversations, processed_conversations, conversation_percent, total_messages,
  /// processed_messages, message_percent, conversations_per_second, messages_per_second.
  nlohmann::json statistics() const;

 private:
  Phase m_phase;
  std::atomic<std::uint64_t> m_total_conversations{0};
  std::atomic<std::uint64_t> m_total_messages{0};
  std::atomic<std::uint64_t> m_processed_conversations{0};
  std::atomic<std::uint64_t> m_processed_messages{0};
  /// system_clock microseconds since epoch; 0 = not started / not ended.
  std::atomic<std::int64_t> m_start_us{0};
  std::atomic<std::int64_t> m_end_us{0};
};

/// Watches private memory (RssAnon of /proc/self/status: pages of the memory-mapped
/// input are file-backed and do not count). check_memory() is cheap enough to call per
/// batch: it re-reads /proc at most every `min_interval`.
class MemoryMonitor {
 public:
  explicit MemoryMonitor(std::optional<std::size_t> limit_mb,
                         std::chrono::milliseconds min_interval = std::chrono::milliseconds(50));

  /// Samples (rate-limited), tracks the peak, and throws MemoryLimitExceeded
  /// ("Memory usage (X MB) exceeds limit (Y MB)") when above the limit.
  void check_memory();
  /// Samples now, ignoring the rate limit; returns RssAnon in bytes.
  std::size_t sample() noexcept;
  std::size_t peak_bytes() const noexcept { return m_peak_bytes.load(std::memory_order_relaxed); }
  std::size_t last_bytes() const noexcept { return m_last_bytes.load(std::memory_order_relaxed); }
  std::optional<std::size_t> limit_mb() const noexcept { return m_limit_mb; }
  /// {"current_mb", "peak_mb", "limit_mb"}: current read now, MB with one decimal.
  nlohmann::json statistics() const;

  /// RssAnon of this process in bytes (0 if /proc is unavailable).
  static std::size_t read_rss_anon_bytes() noexcept;

 private:
  std::optional<std::size_t> m_limit_mb;
  std::chrono::milliseconds m_min_interval;
  std::atomic<std::int64_t> m_last_sample_ns{0};
  std::atomic<std::size_t> m_last_bytes{0};
  std::atomic<std::size_t> m_peak_bytes{0};
};

/// State shared by all nodes of a run. In sequential mode (parallel_processing == false)
/// exactly one phase runs at a time, as in the seed; in parallel mode the three phases may
/// run at once and the phase-taking overloads must be used when more than one is running.
class ETLContext {
 public:
  explicit ETLContext(DbConfig db_config = {}, std::size_t batch_size = 100,
                      std::optional<std::size_t> memory_limit_mb = {},
                      bool parallel_processing = false,
                      std::optional<std::filesystem::path> output_dir = {});
  ~ETLContext();
  ETLContext(const ETLContext&) = delete;
  ETLContext& operator=(const ETLContext&) = delete;

  const DbConfig& db_config() const noexcept { return m_db_config; }
  std::size_t batch_size() const noexcept { return m_batch_size; }
  std::optional<std::size_t> memory_limit_mb() const noexcept { return m_memory.limit_mb(); }
  bool parallel_processing() const noexcept { return m_parallel; }
  const std::optional<std::filesystem::path>& output_dir() const noexcept { return m_output_dir; }

  void start_phase(std::string_view phase, std::uint64_t total_conversations = 0,
                   std::uint64_t total_messages = 0);
  /// Ends the only running phase. Throws when none (or, in parallel mode, more than one) runs.
  nlohmann::json end_phase(std::optional<nlohmann::json> result = {});
  nlohmann::json end_phase(std::string_view phase, std::optional<nlohmann::json> result);
  /// Hot path: atomics only.
  void update_progress(std::uint64_t conversations = 0, std::uint64_t messages = 0);
  void update_progress(std::string_view phase, std::uint64_t conversations, std::uint64_t messages);
  void set_totals(std::string_view phase, std::uint64_t conversations, std::uint64_t messages);

  std::string get_phase_status(std::string_view phase) const;
  void set_phase_status(std::string_view phase, std::string_view status);
  /// Appends {error_type, error_message, timestamp, phase, traceback} to
  /// statistics()["errors"], marks the phase failed, and returns the entry.
  nlohmann::json record_error(std::string_view phase, const std::exception& error);
  /// The running phase; in parallel mode the most upstream running one.
  std::optional<std::string> current_phase() const;

  /// Lazily opened connection to db_config(). Not for concurrent use by several threads.
  pqxx::connection& get_db_connection();
  void close_db_connection();

  void set_resource(const std::string& key, std::any value);
  /// Empty std::any when missing.
  std::any get_resource(const std::string& key) const;

  /// {"phases": {...}, "total": {...}, "errors": [...], "memory": {...}, plus anything
  /// added with add_statistics()}.
  nlohmann::json statistics() const;
  /// Merges `values` into statistics()[key] (objects are merged, numbers added).
  void add_statistics(const std::string& key, const nlohmann::json& values);

  ProgressTracker& progress_tracker(Phase phase) noexcept;
  const ProgressTracker& progress_tracker(Phase phase) const noexcept;
  MemoryMonitor& memory_monitor() noexcept { return m_memory; }
  const MemoryMonitor& memory_monitor() const noexcept { return m_memory; }

 private:
  DbConfig m_db_config;
  std::size_t m_batch_size;
  bool m_parallel;
  std::optional<std::filesystem::path> m_output_dir;
  MemoryMonitor m_memory;
  std::array<ProgressTracker, 3> m_trackers{ProgressTracker(Phase::extract),
                                            ProgressTracker(Phase::transform),
                                            ProgressTracker(Phase::load)};
  /// Low two bits: 0 pending, 1 running, 2 completed, 3 failed; bit 2 (value 4): the phase
  /// is in progress (started, not yet ended; a failed phase stays in progress until
  /// end_phase). Written under m_mutex, read lock-free by update_progress.
  std::array<std::atomic<int>, 3> m_status{};

  /// Ends phase `index` (m_mutex held): status, statistics, totals.
  nlohmann::json end_phase_locked(int index, const std::optional<nlohmann::json>& result);

  mutable std::mutex m_mutex;  // guards everything below
  nlohmann::json m_statistics;
  std::map<std::string, std::any> m_resources;
  /// Earliest phase start and latest phase end (system_clock us) for statistics()["total"].
  std::int64_t m_total_start_us = 0;
  std::int64_t m_total_end_us = 0;

  /// Separate from m_mutex so that a slow connect does not block statistics().
  std::mutex m_db_mutex;  // guards m_connection
  std::unique_ptr<pqxx::connection> m_connection;
};

}  // namespace skype_etl
