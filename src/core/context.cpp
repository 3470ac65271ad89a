// ETLContext: phase state machine, statistics, resources and the lazy database connection.
//
// Concurrency: phase transitions, statistics, errors and resources are guarded by m_mutex
// (rare paths). The phase status words (m_status) are atomics written under m_mutex and
// read lock-free by update_progress, which only touches atomics (the hot path).
#include "skype_etl/context.hpp"

#include <cxxabi.h>
#include <execinfo.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <libpq-fe.h>

#include "core/local_db.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl {
namespace detail {
// Defined in progress_tracker.cpp.
std::int64_t now_us() noexcept;
std::string format_utc_us(std::int64_t us);
}  // namespace detail

namespace {

constexpr int k_pending = 0;
constexpr int k_running = 1;
constexpr int k_completed = 2;
constexpr int k_failed = 3;
constexpr int k_status_mask = 3;
constexpr int k_in_progress = 4;

constexpr std::array<std::string_view, 4> k_status_names{"pending", "running", "completed",
                                                         "failed"};

int index_of(Phase phase) noexcept {
  return static_cast<int>(phase);
}

int parse_status(std::string_view status) {
  for (std::size_t i = 0; i < k_status_names.size(); ++i) {
    if (k_status_names[i] == status) return static_cast<int>(i);
  }
  throw std::invalid_argument("Invalid status: " + std::string(status) +
                              ". Valid statuses are: pending, running, completed, failed");
}

std::string phase_string(int index) {
  return std::string(phase_name(static_cast<Phase>(index)));
}

// "extract, transform" for the phases whose status word has the in-progress bit.
std::string in_progress_list(const std::array<std::atomic<int>, 3>& status) {
  std::string list;
  for (int i = 0; i < 3; ++i) {
    if (status[i].load(std::memory_order_acquire) & k_in_progress) {
      if (!list.empty()) list += ", ";
      list += phase_string(i);
    }
  }
  return list;
}

std::string demangle(const char* name) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || demangled == nullptr) return name;
  std::string result(demangled);
  std::free(demangled);
  return result;
}

// Best-effort stack trace of the calling thread, one frame per line, C++ names demangled
// where the symbol is exported ("module(symbol+0x1f) [0x...]").
std::string stack_trace() {
  void* frames[64];
  const int count = ::backtrace(frames, 64);
  if (count <= 0) return {};
  char** symbols = ::backtrace_symbols(frames, count);
  if (symbols == nullptr) return {};
  std::string trace;
  for (int i = 1; i < count; ++i) {  // frame 0 is stack_trace itself
    std::string line(symbols[i]);
    const std::size_t open = line.find('(');
    const std::size_t plus = line.find('+', open == std::string::npos ? 0 : open);
    if (open != std::string::npos && plus != std::string::npos && plus > open + 1) {
      const std::string mangled = line.substr(open + 1, plus - open - 1);
      line = line.substr(0, open + 1) + demangle(mangled.c_str()) + line.substr(plus);
    }
    trace += line;
    trace += '\n';
  }
  std::free(symbols);
  return trace;
}

/// The password a connection string carries (key=value or URI form), or "" when it has
/// none or libpq cannot parse it.
std::string password_of(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (error) PQfreemem(error);
  std::string password;
  for (PQconninfoOption* o = options; o && o->keyword; ++o)
    if (std::string_view(o->keyword) == "password" && o->val) password = o->val;
  if (options) PQconninfoFree(options);
  return password;
}

// Replaces every occurrence of the (non-trivial) secrets in `text` with "***".
std::string scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    if (secret.size() < 4) continue;  // too short to scrub without mangling the message
    for (std::size_t pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos + 3)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  return text;
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) {
    text.pop_back();
  }
  return text;
}

// add_statistics: objects merged recursively, numbers added, anything else replaced.
void merge_into(nlohmann::json& target, const nlohmann::json& values) {
  if (target.is_object() && values.is_object()) {
    for (auto it = values.begin(); it != values.end(); ++it) {
      auto found = target.find(it.key());
      if (found == target.end()) {
        target[it.key()] = it.value();
      } else {
        merge_into(*found, it.value());
      }
    }
  } else if (target.is_number() && values.is_number()) {
    if (target.is_number_unsigned() && values.is_number_unsigned()) {
      target = target.get<std::uint64_t>() + values.get<std::uint64_t>();
    } else if (target.is_number_integer() && values.is_number_integer()) {
      target = target.get<std::int64_t>() + values.get<std::int64_t>();
    } else {
      target = target.get<double>() + values.get<double>();
    }
  } else {
    target = values;
  }
}

}  // namespace

std::string_view phase_name(Phase phase) noexcept {
  switch (phase) {
    case Phase::extract:
      return "extract";
    case Phase::transform:
      return "transform";
    case Phase::load:
      return "load";
  }
  return "unknown";
}

Phase parse_phase(std::string_view name) {
  for (Phase phase : all_phases) {
    if (phase_name(phase) == name) return phase;
  }
  throw std::invalid_argument("Invalid phase name: " + std::string(name) +
                              ". Valid phases are: extract, transform, load");
}

ETLContext::ETLContext(DbConfig db_config, std::size_t batch_size,
                       std::optional<std::size_t> memory_limit_mb, bool parallel_processing,
                       std::optional<std::filesystem::path> output_dir)
    : m_db_config(std::move(db_config)),
      m_batch_size(batch_size),
      m_parallel(parallel_processing),
      m_output_dir(std::move(output_dir)),
      m_memory(memory_limit_mb) {
  for (auto& status : m_status) status.store(k_pending, std::memory_order_relaxed);
  m_statistics = nlohmann::json::object();
  m_statistics["phases"] = nlohmann::json::object();
  m_statistics["total"] = {{"start_time", nullptr},
                           {"end_time", nullptr},
                           {"duration_seconds", 0.0},
                           {"conversations_processed", 0},
                           {"messages_processed", 0}};
  m_statistics["errors"] = nlohmann::json::array();
}

ETLContext::~ETLContext() {
  close_db_connection();
}

void ETLContext::start_phase(std::string_view phase, std::uint64_t total_conversations,
                             std::uint64_t total_messages) {
  const int index = index_of(parse_phase(phase));
  std::lock_guard lock(m_mutex);
  if (m_parallel) {
    if (m_status[index].load(std::memory_order_relaxed) & k_in_progress) {
      throw std::invalid_argument("Cannot start phase '" + std::string(phase) + "': Phase '" +
                                  std::string(phase) + "' is already in progress");
    }
  } else {
    for (int i = 0; i < 3; ++i) {
      if (m_status[i].load(std::memory_order_relaxed) & k_in_progress) {
        throw std::invalid_argument("Cannot start phase '" + std::string(phase) + "': Phase '" +
                                    phase_string(i) + "' is already in progress");
      }
    }
  }
  m_trackers[index].start(total_conversations, total_messages);
  // Release: update_progress that sees the phase in progress also sees the reset tracker.
  m_status[index].store(k_running | k_in_progress, std::memory_order_release);
}

nlohmann::json ETLContext::end_phase(std::optional<nlohmann::json> result) {
  std::lock_guard lock(m_mutex);
  int index = -1;
  int count = 0;
  for (int i = 0; i < 3; ++i) {
    if (m_status[i].load(std::memory_order_relaxed) & k_in_progress) {
      if (index < 0) index = i;
      ++count;
    }
  }
  if (count == 0) {
    throw std::invalid_argument("Cannot end phase: No phase is currently in progress");
  }
  if (count > 1) {
    throw std::invalid_argument("Cannot end phase: more than one phase is in progress (" +
                                in_progress_list(m_status) + "); name the phase");
  }
  return end_phase_locked(index, result);
}

nlohmann::json ETLContext::end_phase(std::string_view phase, std::optional<nlohmann::json> result) {
  const int index = index_of(parse_phase(phase));
  std::lock_guard lock(m_mutex);
  if (!(m_status[index].load(std::memory_order_relaxed) & k_in_progress)) {
    throw std::invalid_argument("Cannot end phase '" + std::string(phase) + "': Phase '" +
                                std::string(phase) + "' is not in progress");
  }
  return end_phase_locked(index, result);
}

nlohmann::json ETLContext::end_phase_locked(int index,
                                            const std::optional<nlohmann::json>& result) {
  if (result && !result->is_object() && !result->is_null()) {
    throw std::invalid_argument("Result must be a JSON object or null");
  }
  const bool has_result = result && result->is_object();
  const int current = m_status[index].load(std::memory_order_relaxed) & k_status_mask;
  // As in the seed, a result {"status": "failed"} ends the phase failed; a phase already
  // marked failed (record_error, set_phase_status) stays failed whatever the result says.
  bool failed = current == k_failed;
  if (has_result) {
    const auto status = result->find("status");
    if (status != result->end() && status->is_string() && *status == "failed") failed = true;
  }
  if (!failed && m_parallel) {
    for (int up = index - 1; up >= 0; --up) {
      const int up_status = m_status[up].load(std::memory_order_relaxed) & k_status_mask;
      if (up_status == k_running || up_status == k_failed) {
        throw std::invalid_argument("Cannot complete phase '" + phase_string(index) +
                                    "': upstream phase '" + phase_string(up) + "' " +
                                    (up_status == k_running ? "is running" : "has failed"));
      }
    }
  }

  ProgressTracker& tracker = m_trackers[index];
  tracker.finish();
  nlohmann::json stats = tracker.statistics();
  stats["conversations_processed"] = tracker.processed_conversations();
  stats["messages_processed"] = tracker.processed_messages();
  if (has_result) {
    for (auto it = result->begin(); it != result->end(); ++it) stats[it.key()] = it.value();
  }
  // The caller's keys win, except that "status" always says what was recorded, so that
  // statistics() and get_phase_status() agree.
  stats["status"] = failed ? "failed" : "completed";
  m_status[index].store(failed ? k_failed : k_completed, std::memory_order_release);

  const std::string name = phase_string(index);
  m_statistics["phases"][name] = stats;

  // Totals span the run: earliest phase start to latest phase end (phases may overlap).
  const std::int64_t start_us = tracker.start_time_us();
  const std::int64_t end_us = tracker.end_time_us();
  if (m_total_start_us == 0 || (start_us != 0 && start_us < m_total_start_us)) {
    m_total_start_us = start_us;
  }
  if (end_us > m_total_end_us) m_total_end_us = end_us;
  nlohmann::json& total = m_statistics["total"];
  total["start_time"] = detail::format_utc_us(m_total_start_us);
  total["end_time"] = detail::format_utc_us(m_total_end_us);
  total["duration_seconds"] = m_total_end_us > m_total_start_us
                                  ? static_cast<double>(m_total_end_us - m_total_start_us) / 1e6
                                  : 0.0;
  total["conversations_processed"] =
      total["conversations_processed"].get<std::uint64_t>() + tracker.processed_conversations();
  total["messages_processed"] =
      total["messages_processed"].get<std::uint64_t>() + tracker.processed_messages();
  return stats;
}

void ETLContext::update_progress(std::uint64_t conversations, std::uint64_t messages) {
  // Hot path: no lock, no allocation unless it throws.
  int index = -1;
  int count = 0;
  for (int i = 0; i < 3; ++i) {
    if (m_status[i].load(std::memory_order_acquire) & k_in_progress) {
      if (index < 0) index = i;
      ++count;
    }
  }
  if (count == 0) {
    throw std::invalid_argument("Cannot update progress: No phase is currently in progress");
  }
  if (count > 1) {
    throw std::invalid_argument("Cannot update progress: more than one phase is in progress (" +
                                in_progress_list(m_status) + "); name the phase");
  }
  m_trackers[index].update(conversations, messages);
  // As in the seed; rate-limited, so this is usually one clock read.
  m_memory.check_memory();
}

void ETLContext::update_progress(std::string_view phase, std::uint64_t conversations,
                                 std::uint64_t messages) {
  const int index = index_of(parse_phase(phase));
  if (!(m_status[index].load(std::memory_order_acquire) & k_in_progress)) {
    throw std::invalid_argument("Cannot update progress: Phase '" + std::string(phase) +
                                "' is not in progress");
  }
  m_trackers[index].update(conversations, messages);
  m_memory.check_memory();
}

void ETLContext::set_totals(std::string_view phase, std::uint64_t conversations,
                            std::uint64_t messages) {
  // Totals set before start_phase are reset by it.
  m_trackers[index_of(parse_phase(phase))].set_totals(conversations, messages);
}

std::string ETLContext::get_phase_status(std::string_view phase) const {
  const int index = index_of(parse_phase(phase));
  return std::string(
      k_status_names[m_status[index].load(std::memory_order_acquire) & k_status_mask]);
}

void ETLContext::set_phase_status(std::string_view phase, std::string_view status) {
  const int index = index_of(parse_phase(phase));
  const int value = parse_status(status);
  std::lock_guard lock(m_mutex);
  // Only the status changes: whether the phase is in progress is up to start/end_phase.
  const int in_progress = m_status[index].load(std::memory_order_relaxed) & k_in_progress;
  m_status[index].store(in_progress | value, std::memory_order_release);
}

nlohmann::json ETLContext::record_error(std::string_view phase, const std::exception& error) {
  const int index = index_of(parse_phase(phase));
  nlohmann::json entry = nlohmann::json::object();
  entry["error_type"] = demangle(typeid(error).name());
  entry["error_message"] = error.what();
  entry["timestamp"] = detail::format_utc_us(detail::now_us());
  entry["phase"] = phase_string(index);
  // The recording thread's stack (the throw site's is gone once the exception is caught).
  entry["traceback"] = stack_trace();

  std::lock_guard lock(m_mutex);
  m_statistics["errors"].push_back(entry);
  const int in_progress = m_status[index].load(std::memory_order_relaxed) & k_in_progress;
  m_status[index].store(in_progress | k_failed, std::memory_order_release);
  return entry;
}

std::optional<std::string> ETLContext::current_phase() const {
  for (int i = 0; i < 3; ++i) {
    if (m_status[i].load(std::memory_order_acquire) & k_in_progress) return phase_string(i);
  }
  return std::nullopt;
}

pqxx::connection& ETLContext::get_db_connection() {
  std::lock_guard lock(m_db_mutex);
  if (!m_connection) {
    try {
      m_connection = std::make_unique<pqxx::connection>(m_db_config.conninfo);
    } catch (const std::exception& error) {
      // libpq's message never holds the password, but for a malformed string it may
      // quote part of it: scrub the password wherever it appears.
      const std::string target = m_db_config.conninfo.empty()
                                     ? std::string("libpq defaults and PG* environment")
                                     : "'" + detail::redact_conninfo(m_db_config.conninfo) + "'";
      throw DatabaseError("could not connect to PostgreSQL (" + target +
                          "): " + scrub(trim(error.what()), {password_of(m_db_config.conninfo)}));
    }
  }
  return *m_connection;
}

void ETLContext::close_db_connection() {
  std::lock_guard lock(m_db_mutex);
  m_connection.reset();  // the destructor closes the connection
}

void ETLContext::set_resource(const std::string& key, std::any value) {
  std::lock_guard lock(m_mutex);
  m_resources[key] = std::move(value);
}

std::any ETLContext::get_resource(const std::string& key) const {
  std::lock_guard lock(m_mutex);
  const auto found = m_resources.find(key);
  return found != m_resources.end() ? found->second : std::any();
}

nlohmann::json ETLContext::statistics() const {
  std::lock_guard lock(m_mutex);
  nlohmann::json snapshot = m_statistics;
  for (int i = 0; i < 3; ++i) {
    const int status = m_status[i].load(std::memory_order_relaxed);
    if (!(status & k_in_progress)) continue;
    const ProgressTracker& tracker = m_trackers[i];
    nlohmann::json live = tracker.statistics();
    live["status"] = std::string(k_status_names[status & k_status_mask]);
    live["conversations_processed"] = live["processed_conversations"];
    live["messages_processed"] = live["processed_messages"];
    snapshot["phases"][phase_string(i)] = std::move(live);
  }
  snapshot["memory"] = m_memory.statistics();
  return snapshot;
}

void ETLContext::add_statistics(const std::string& key, const nlohmann::json& values) {
  std::lock_guard lock(m_mutex);
  auto found = m_statistics.find(key);
  if (found == m_statistics.end()) {
    m_statistics[key] = values;
  } else {
    merge_into(*found, values);
  }
}

ProgressTracker& ETLContext::progress_tracker(Phase phase) noexcept {
  return m_trackers[index_of(phase)];
}

const ProgressTracker& ETLContext::progress_tracker(Phase phase) const noexcept {
  return m_trackers[index_of(phase)];
}

}  // namespace skype_etl
