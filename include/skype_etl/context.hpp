// ETLContext: the state shared by every node of a run (progress, phase status,
// statistics, errors, resources, memory). Every method may be called from any thread.
#pragma once

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
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <utility>

#include <nlohmann/json.hpp>
#include <pqxx/connection>

#include "skype_etl/export.hpp"
#include "skype_etl/options.hpp"

namespace spdlog {
class logger;
}  // namespace spdlog

namespace skype_etl {

/// The three phases, in pipeline order. Their names are "extract", "transform", "load".
enum class Phase : int { extract = 0, transform = 1, load = 2 };
inline constexpr std::array<Phase, 3> all_phases{Phase::extract, Phase::transform, Phase::load};

/// "extract" etc.
SKYPE_ETL_API std::string_view phase_name(Phase phase) noexcept;
/// Throws std::invalid_argument("Invalid phase name: foo. Valid phases are: extract, transform,
/// load").
SKYPE_ETL_API Phase parse_phase(std::string_view name);

/// Progress of one phase. update() is lock-free and allocation-free (hot path);
/// statistics() may be called concurrently with update().
class SKYPE_ETL_API ProgressTracker {
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
class SKYPE_ETL_API MemoryMonitor {
 public:
  /// `limit_mb` empty or 0: no limit.
  explicit MemoryMonitor(std::optional<std::size_t> limit_mb,
                         std::chrono::milliseconds min_interval = std::chrono::milliseconds(50));

  /// Samples (rate-limited), tracks the peak, and throws MemoryLimitExceeded
  /// ("Memory usage (X MB) exceeds limit (Y MB)") when above the limit.
  void check_memory();
  /// Call before allocating about `bytes` at once for one value of the input (a copy, a
  /// parser's buffers): with a limit, and `bytes` of at least large_allocation, samples now
  /// and throws MemoryLimitExceeded when RssAnon plus `bytes` would exceed the limit, so that
  /// the limit holds before the allocation rather than after it. `what` names the value in
  /// the message ("a message of 120 MB"). Smaller sizes: check_memory().
  void check_allocation(std::size_t bytes, const std::string& what);
  /// From this size up, check_allocation reads /proc each time.
  static constexpr std::size_t large_allocation = std::size_t{1} << 20U;
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
///
/// Contract under concurrency: every method may be called from any thread at any time.
/// An update_progress() that returns normally is counted in exactly one phase: the one in
/// progress when it was accepted, whose end_phase() (which waits for updates already
/// accepted) returns and keeps it. An update that races with end_phase() is either
/// counted before the phase's figures are taken or refused with std::invalid_argument.
///
/// Contract under failure: a phase that fails should be ended like any other (end_phase
/// with {"status": "failed"}, or after record_error); the context can then run the phases
/// again (EtlGraph does both). Strings given to it (results, statistics, error messages)
/// are stored as valid UTF-8 (invalid bytes become U+FFFD), so statistics().dump() never
/// throws.
class SKYPE_ETL_API ETLContext {
 public:
  /// `memory_limit_mb`: empty or 0 means no limit (the seed's falsy None). The defaults
  /// are Options' (one default for each knob).
  explicit ETLContext(DbConfig db_config = {}, std::size_t batch_size = Options::default_batch_size,
                      std::optional<std::size_t> memory_limit_mb = {},
                      bool parallel_processing = Options{}.parallel_processing,
                      std::optional<std::filesystem::path> output_dir = {});
  /// The context of a run with these options (db, batch_size, memory_limit_mb,
  /// parallel_processing, output_dir).
  explicit ETLContext(const Options& options);
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
  /// Waits for update_progress() calls already accepted for the phase (they are counted);
  /// later ones are refused.
  nlohmann::json end_phase(std::optional<nlohmann::json> result = {});
  nlohmann::json end_phase(std::string_view phase, std::optional<nlohmann::json> result);
  /// Hot path: atomics only (no lock, no allocation unless it throws).
  void update_progress(std::uint64_t conversations = 0, std::uint64_t messages = 0);
  void update_progress(std::string_view phase, std::uint64_t conversations, std::uint64_t messages);
  void set_totals(std::string_view phase, std::uint64_t conversations, std::uint64_t messages);

  std::string get_phase_status(std::string_view phase) const;
  void set_phase_status(std::string_view phase, std::string_view status);
  /// True between start_phase and end_phase (also when its status says failed).
  bool is_in_progress(std::string_view phase) const;
  /// Appends {error_type, error_message, timestamp, phase} to statistics()["errors"], marks
  /// the phase failed (it stays in progress until end_phase), and returns the entry.
  /// error_message is what() of the error, followed by those of the exceptions nested in it
  /// (std::nested_exception), ": "-separated.
  nlohmann::json record_error(std::string_view phase, const std::exception& error);
  /// The same for an error carried across threads; an exception that is not a
  /// std::exception is recorded as error_type "unknown".
  nlohmann::json record_error(std::string_view phase, std::exception_ptr error);
  /// An error that fails one export of a run that goes on with the others: appended to
  /// statistics()["errors"] like record_error's entries, with "file", but the phase goes on
  /// (its status does not change).
  nlohmann::json record_export_error(std::string_view phase, std::exception_ptr error,
                                     std::string_view file);
  /// The running phase; in parallel mode the most upstream running one.
  std::optional<std::string> current_phase() const;

  /// Where the context logs, or nullptr (the default): nowhere. At info: each phase's start
  /// and end (status, counts, duration), each status change, each recorded error (at info,
  /// not error: a failure also reaches the caller, who reports it once); at debug: the
  /// connection get_db_connection() opens (its password hidden). The library never logs at
  /// warn or above. A program that sets one includes <spdlog/spdlog.h> and links spdlog.
  /// May be called at any time; a message being logged meanwhile goes to either logger.
  void set_logger(std::shared_ptr<spdlog::logger> logger);
  std::shared_ptr<spdlog::logger> logger() const;

  /// Lazily opened connection to db_config(). Not for concurrent use by several threads.
  pqxx::connection& get_db_connection();
  void close_db_connection();

  /// Stores `resource` under `key`, replacing what was there. Components share it: every
  /// get_resource of the key returns this very object (not a copy), so what one component
  /// changes in it another sees. (Synchronising access to the object is up to its type.)
  template <typename T>
  void set_resource(const std::string& key, std::shared_ptr<T> resource) {
    store_resource(
        key, std::shared_ptr<void>(resource, const_cast<std::remove_cv_t<T>*>(resource.get())),
        typeid(std::remove_cv_t<T>));
  }
  /// Stores a copy of `value` as a new shared object of type T.
  template <typename T>
  void set_resource(const std::string& key, T value) {
    set_resource(key, std::make_shared<T>(std::move(value)));
  }
  /// The object stored under `key`, or `default_value` when nothing is. Throws
  /// std::invalid_argument when the object stored is not a T.
  template <typename T>
  std::shared_ptr<T> get_resource(const std::string& key,
                                  std::shared_ptr<T> default_value = nullptr) const {
    std::shared_ptr<void> found = find_resource(key, typeid(std::remove_cv_t<T>));
    if (!found) return default_value;
    return std::shared_ptr<T>(found, static_cast<T*>(found.get()));
  }
  bool has_resource(const std::string& key) const;
  /// Forgets `key`; holders of the object keep it. Returns whether there was one.
  bool remove_resource(const std::string& key);

  /// {"phases": {...}, "total": {...}, "errors": [...], "memory": {...}, plus anything
  /// added with add_statistics()}. total.start_time is the context's construction time;
  /// total.end_time the latest phase end; total.{conversations,messages}_processed the
  /// counts of the most downstream phase that has ended (what went through every phase
  /// run: phases count the same messages, so adding them up would count each twice or
  /// three times).
  nlohmann::json statistics() const;
  /// Merges `values` into statistics()[key] (objects are merged, numbers added).
  void add_statistics(const std::string& key, const nlohmann::json& values);

  ProgressTracker& progress_tracker(Phase phase) noexcept;
  const ProgressTracker& progress_tracker(Phase phase) const noexcept;
  MemoryMonitor& memory_monitor() noexcept { return m_memory; }
  const MemoryMonitor& memory_monitor() const noexcept { return m_memory; }

 private:
  void store_resource(const std::string& key, std::shared_ptr<void> resource,
                      const std::type_info& type);
  std::shared_ptr<void> find_resource(const std::string& key, const std::type_info& type) const;
  /// The index of the only phase in progress; throws std::invalid_argument("<action>: ...")
  /// when none or several are.
  int only_phase_in_progress(const char* action) const;
  /// Counts an update in phase `index` if it is in progress; false (nothing counted) if not.
  bool try_update(int index, std::uint64_t conversations, std::uint64_t messages) noexcept;
  /// Sets the status bits of phase `index` (m_mutex held), keeping its updater count.
  /// Returns the word it replaced.
  std::uint64_t store_status(int index, std::uint64_t status_bits) noexcept;
  /// Ends phase `index` (m_mutex held): status, statistics, totals.
  nlohmann::json end_phase_locked(int index, const std::optional<nlohmann::json>& result);
  /// Appends an entry to statistics()["errors"] (with "file" when given); marks the phase
  /// failed when `fails_phase`.
  nlohmann::json record_error_entry(std::string_view phase, std::string type, std::string message,
                                    bool fails_phase = true, std::string_view file = {});

  DbConfig m_db_config;
  std::shared_ptr<spdlog::logger> m_logger;  // std::atomic_load/store only
  std::size_t m_batch_size;
  bool m_parallel;
  std::optional<std::filesystem::path> m_output_dir;
  MemoryMonitor m_memory;
  std::array<ProgressTracker, 3> m_trackers{ProgressTracker(Phase::extract),
                                            ProgressTracker(Phase::transform),
                                            ProgressTracker(Phase::load)};
  /// Per phase: bits 0-1 the status (0 pending, 1 running, 2 completed, 3 failed); bit 2
  /// (value 4): in progress (started, not yet ended; a failed phase stays in progress until
  /// end_phase); bits 3 and up: how many update_progress calls ever looked at the phase
  /// (each adds 8, accepted or not). Status bits change under m_mutex, by compare-and-swap.
  std::array<std::atomic<std::uint64_t>, 3> m_status{};
  /// Per phase: accepted update_progress calls that have finished counting.
  std::array<std::atomic<std::uint64_t>, 3> m_updates_done{};

  mutable std::mutex m_mutex;  // guards everything below
  nlohmann::json m_statistics;
  struct Resource {
    std::shared_ptr<void> object;
    std::type_index type{typeid(void)};
  };
  std::map<std::string, Resource> m_resources;
  std::int64_t m_created_us = 0;
  /// Per phase: the look count of m_status when the phase last started, and the accepted
  /// updates of every start-to-end so far (what m_updates_done reaches once they finish).
  std::array<std::uint64_t, 3> m_looks_at_start{};
  std::array<std::uint64_t, 3> m_updates_accepted{};
  /// Latest phase end (system_clock us) for statistics()["total"].
  std::int64_t m_total_end_us = 0;

  /// Separate from m_mutex so that a slow connect does not block statistics().
  std::mutex m_db_mutex;  // guards m_connection
  std::unique_ptr<pqxx::connection> m_connection;
};

}  // namespace skype_etl
