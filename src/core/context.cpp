// ETLContext: phase state machine, statistics, resources and the lazy database connection.
//
// Concurrency: phase transitions, statistics, errors and resources are guarded by m_mutex
// (rare paths). A phase's status word (m_status) holds its status, whether it is in
// progress, and how many update_progress calls ever looked at it. Status bits change under
// m_mutex (by compare-and-swap, keeping the count); update_progress only touches atomics
// (the hot path).
//
// Why an accepted update is counted exactly once: update_progress adds one look to the
// phase's word and is accepted when the value that addition read has the in-progress bit.
// start_phase sets the bit and end_phase clears it, each with one read-modify-write of the
// same word, so each knows how many looks came before it: the looks between the two are
// the accepted ones (read-modify-writes of one atomic are totally ordered, and each reads
// the latest value). An accepted update counts in the tracker, then adds one to
// m_updates_done (release); end_phase waits (acquire) until m_updates_done has all of them
// before it takes the phase's figures. A look after the clear saw no bit and counted
// nothing (update_progress then throws, or looks for another phase). Refused looks never
// hold end_phase up.
#include "skype_etl/context.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "core/clock.hpp"
#include "core/json_text.hpp"
#include "core/local_db.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl {

namespace {

constexpr std::uint64_t k_pending = 0;
constexpr std::uint64_t k_running = 1;
constexpr std::uint64_t k_completed = 2;
constexpr std::uint64_t k_failed = 3;
constexpr std::uint64_t k_status_mask = 3;
constexpr std::uint64_t k_in_progress = 4;
constexpr std::uint64_t k_flags_mask = 7;
constexpr int k_look_shift = 3;
constexpr std::uint64_t k_look = std::uint64_t{1} << k_look_shift;  // one update_progress
constexpr std::array<std::string_view, 4> k_status_names{"pending", "running", "completed",
                                                         "failed"};

int index_of(Phase phase) noexcept {
  return static_cast<int>(phase);
}

std::uint64_t parse_status(std::string_view status) {
  for (std::size_t i = 0; i < k_status_names.size(); ++i) {
    if (k_status_names[i] == status) return i;
  }
  throw std::invalid_argument("Invalid status: " + std::string(status) +
                              ". Valid statuses are: pending, running, completed, failed");
}

std::string phase_string(int index) {
  return std::string(phase_name(static_cast<Phase>(index)));
}

// "extract, transform" for the phases whose status word has the in-progress bit.
std::string in_progress_list(const std::array<std::atomic<std::uint64_t>, 3>& status) {
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

/// what() of `error`, then those of the exceptions nested in it, ": "-separated.
std::string message_chain(const std::exception& error) {
  std::string text = error.what();
  try {
    std::rethrow_if_nested(error);
  } catch (const std::exception& inner) {
    text += ": " + message_chain(inner);
  } catch (...) {
    text += ": unknown exception";
  }
  return text;
}

/// One line for the log when a phase ends: "phase load completed: 3 conversations, 8 messages
/// in 0.012 s".
void log_phase_end(spdlog::logger* log, int index, const nlohmann::json& stats) {
  if (!log) return;
  const auto count = [&stats](const char* key) {
    const auto found = stats.find(key);
    return found != stats.end() && found->is_number() ? found->get<std::uint64_t>() : 0;
  };
  const auto duration = stats.find("duration_seconds");
  log->info("phase {} {}: {} conversations, {} messages in {:.3f} s", phase_string(index),
            stats.value("status", std::string()), count("conversations_processed"),
            count("messages_processed"),
            duration != stats.end() && duration->is_number() ? duration->get<double>() : 0.0);
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

ETLContext::ETLContext(const Options& options)
    : ETLContext(options.db, options.batch_size, options.memory_limit_mb,
                 options.parallel_processing, options.output_dir) {}

ETLContext::ETLContext(DbConfig db_config, std::size_t batch_size,
                       std::optional<std::size_t> memory_limit_mb, bool parallel_processing,
                       std::optional<std::filesystem::path> output_dir)
    : m_db_config(std::move(db_config)),
      m_batch_size(batch_size),
      m_parallel(parallel_processing),
      m_output_dir(std::move(output_dir)),
      m_memory(memory_limit_mb),
      m_created_us(detail::now_us()) {
  for (auto& status : m_status) status.store(k_pending, std::memory_order_relaxed);
  m_statistics = nlohmann::json::object();
  m_statistics["phases"] = nlohmann::json::object();
  m_statistics["total"] = {{"start_time", detail::format_utc_us(m_created_us)},
                           {"end_time", nullptr},
                           {"duration_seconds", 0.0},
                           {"conversations_processed", 0},
                           {"messages_processed", 0}};
  m_statistics["errors"] = nlohmann::json::array();
}

ETLContext::~ETLContext() {
  close_db_connection();
}

std::uint64_t ETLContext::store_status(int index, std::uint64_t status_bits) noexcept {
  std::uint64_t word = m_status[index].load(std::memory_order_relaxed);
  while (!m_status[index].compare_exchange_weak(word, (word & ~k_flags_mask) | status_bits,
                                                std::memory_order_acq_rel,
                                                std::memory_order_relaxed)) {
  }
  return word;
}

void ETLContext::start_phase(std::string_view phase, std::uint64_t total_conversations,
                             std::uint64_t total_messages) {
  const int index = index_of(parse_phase(phase));
  {
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
    // A phase started again begins a new pass through the pipeline: what it and the phases
    // after it recorded before is stale (a reused context), unless they are running.
    nlohmann::json& phases = m_statistics["phases"];
    for (int i = index; i < 3; ++i) {
      if (i == index || !(m_status[i].load(std::memory_order_relaxed) & k_in_progress))
        phases.erase(phase_string(i));
    }
    m_trackers[index].start(total_conversations, total_messages);
    // Release: update_progress that sees the phase in progress also sees the reset tracker.
    m_looks_at_start[index] = store_status(index, k_running | k_in_progress) >> k_look_shift;
  }
  // Logged outside the lock: a sink of the embedding program may call back into us.
  if (const auto log = logger()) {
    if (total_messages > 0 || total_conversations > 0)
      log->info("phase {} started: {} conversations, {} messages expected", phase_string(index),
                total_conversations, total_messages);
    else
      log->info("phase {} started", phase_string(index));
  }
}

int ETLContext::only_phase_in_progress(const char* action) const {
  int index = -1;
  int count = 0;
  for (int i = 0; i < 3; ++i) {
    if (m_status[i].load(std::memory_order_acquire) & k_in_progress) {
      if (index < 0) index = i;
      ++count;
    }
  }
  if (count == 0) {
    throw std::invalid_argument(std::string(action) + ": No phase is currently in progress");
  }
  if (count > 1) {
    throw std::invalid_argument(std::string(action) + ": more than one phase is in progress (" +
                                in_progress_list(m_status) + "); name the phase");
  }
  return index;
}

nlohmann::json ETLContext::end_phase(std::optional<nlohmann::json> result) {
  int index = 0;
  nlohmann::json stats;
  {
    std::lock_guard lock(m_mutex);
    index = only_phase_in_progress("Cannot end phase");
    stats = end_phase_locked(index, result);
  }
  log_phase_end(logger().get(), index, stats);
  return stats;
}

nlohmann::json ETLContext::end_phase(std::string_view phase, std::optional<nlohmann::json> result) {
  const int index = index_of(parse_phase(phase));
  nlohmann::json stats;
  {
    std::lock_guard lock(m_mutex);
    if (!(m_status[index].load(std::memory_order_relaxed) & k_in_progress)) {
      throw std::invalid_argument("Cannot end phase '" + std::string(phase) + "': Phase '" +
                                  std::string(phase) + "' is not in progress");
    }
    stats = end_phase_locked(index, result);
  }
  log_phase_end(logger().get(), index, stats);
  return stats;
}

nlohmann::json ETLContext::end_phase_locked(int index,
                                            const std::optional<nlohmann::json>& result) {
  if (result && !result->is_object() && !result->is_null()) {
    throw std::invalid_argument("Result must be a JSON object or null");
  }
  const bool has_result = result && result->is_object();
  const std::uint64_t current = m_status[index].load(std::memory_order_relaxed) & k_status_mask;
  // As in the seed, a result {"status": "failed"} ends the phase failed; a phase already
  // marked failed (record_error, set_phase_status) stays failed whatever the result says.
  bool failed = current == k_failed;
  if (has_result) {
    const auto status = result->find("status");
    if (status != result->end() && status->is_string() && *status == "failed") failed = true;
  }
  if (!failed && m_parallel) {
    for (int up = index - 1; up >= 0; --up) {
      const std::uint64_t up_status = m_status[up].load(std::memory_order_relaxed) & k_status_mask;
      if (up_status == k_running || up_status == k_failed) {
        throw std::invalid_argument("Cannot complete phase '" + phase_string(index) +
                                    "': upstream phase '" + phase_string(up) + "' " +
                                    (up_status == k_running ? "is running" : "has failed"));
      }
    }
  }
  // Copied before anything changes: sanitizing may throw (bad_alloc) only here.
  const nlohmann::json caller = has_result ? detail::valid_utf8(*result) : nlohmann::json::object();

  // Refuse updates from now on, then wait for those already accepted (see the top of the
  // file): each of them is counted in the figures taken below.
  const std::uint64_t looks =
      m_status[index].fetch_and(~k_in_progress, std::memory_order_acq_rel) >> k_look_shift;
  m_updates_accepted[index] += looks - m_looks_at_start[index];
  while (m_updates_done[index].load(std::memory_order_acquire) != m_updates_accepted[index])
    std::this_thread::yield();

  ProgressTracker& tracker = m_trackers[index];
  tracker.finish();
  nlohmann::json stats = tracker.statistics();
  stats["conversations_processed"] = tracker.processed_conversations();
  stats["messages_processed"] = tracker.processed_messages();
  for (auto it = caller.begin(); it != caller.end(); ++it) stats[it.key()] = it.value();
  // The caller's keys win, except that "status" always says what was recorded, so that
  // statistics() and get_phase_status() agree.
  stats["status"] = failed ? "failed" : "completed";
  store_status(index, failed ? k_failed : k_completed);

  nlohmann::json& phases = m_statistics["phases"];
  phases[phase_string(index)] = stats;

  // Totals: from the context's creation to the latest phase end; the counts are those of
  // the most downstream phase that has ended, since every phase counts the same messages.
  if (tracker.end_time_us() > m_total_end_us) m_total_end_us = tracker.end_time_us();
  nlohmann::json& total = m_statistics["total"];
  total["end_time"] = detail::format_utc_us(m_total_end_us);
  total["duration_seconds"] = m_total_end_us > m_created_us
                                  ? static_cast<double>(m_total_end_us - m_created_us) / 1e6
                                  : 0.0;
  for (int i = 2; i >= 0; --i) {
    const auto ended = phases.find(phase_string(i));
    if (ended == phases.end()) continue;
    total["conversations_processed"] = ended->value("conversations_processed", nlohmann::json(0));
    total["messages_processed"] = ended->value("messages_processed", nlohmann::json(0));
    break;
  }
  return stats;
}

bool ETLContext::try_update(int index, std::uint64_t conversations,
                            std::uint64_t messages) noexcept {
  if (!(m_status[index].fetch_add(k_look, std::memory_order_acquire) & k_in_progress)) return false;
  m_trackers[index].update(conversations, messages);
  m_updates_done[index].fetch_add(1, std::memory_order_release);
  return true;
}

void ETLContext::update_progress(std::uint64_t conversations, std::uint64_t messages) {
  // Hot path: no lock, no allocation unless it throws.
  while (!try_update(only_phase_in_progress("Cannot update progress"), conversations, messages)) {
    // That phase ended meanwhile: the update belongs to whatever runs now, if anything.
  }
  // As in the seed; rate-limited, so this is usually one clock read.
  m_memory.check_memory();
}

void ETLContext::update_progress(std::string_view phase, std::uint64_t conversations,
                                 std::uint64_t messages) {
  const int index = index_of(parse_phase(phase));
  if (!try_update(index, conversations, messages)) {
    throw std::invalid_argument("Cannot update progress: Phase '" + std::string(phase) +
                                "' is not in progress");
  }
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

bool ETLContext::is_in_progress(std::string_view phase) const {
  const int index = index_of(parse_phase(phase));
  return (m_status[index].load(std::memory_order_acquire) & k_in_progress) != 0;
}

void ETLContext::set_phase_status(std::string_view phase, std::string_view status) {
  const int index = index_of(parse_phase(phase));
  const std::uint64_t value = parse_status(status);
  std::uint64_t before = 0;
  {
    std::lock_guard lock(m_mutex);
    // Only the status changes: whether the phase is in progress is up to start/end_phase.
    const std::uint64_t in_progress =
        m_status[index].load(std::memory_order_relaxed) & k_in_progress;
    before = store_status(index, in_progress | value) & k_status_mask;
  }
  if (const auto log = logger())
    log->info("phase {} status {} -> {}", phase_string(index), k_status_names[before],
              k_status_names[value]);
}

nlohmann::json ETLContext::record_error_entry(std::string_view phase, std::string type,
                                              std::string message, bool fails_phase,
                                              std::string_view file) {
  const int index = index_of(parse_phase(phase));
  nlohmann::json entry = nlohmann::json::object();
  entry["error_type"] = detail::valid_utf8(type);
  entry["error_message"] = detail::valid_utf8(message);
  entry["timestamp"] = detail::format_utc_us(detail::now_us());
  entry["phase"] = phase_string(index);
  if (!file.empty()) entry["file"] = detail::valid_utf8(std::string(file));

  {
    std::lock_guard lock(m_mutex);
    m_statistics["errors"].push_back(entry);
    if (fails_phase) {
      const std::uint64_t in_progress =
          m_status[index].load(std::memory_order_relaxed) & k_in_progress;
      store_status(index, in_progress | k_failed);
    }
  }
  // At info: the error also reaches the caller, who reports it (set_logger in context.hpp).
  if (const auto log = logger()) {
    if (file.empty())
      log->info("phase {} failed: {}: {}", phase_string(index),
                entry["error_type"].get<std::string>(), entry["error_message"].get<std::string>());
    else
      log->info("export {} failed in phase {}: {}: {}", printable(entry["file"].get<std::string>()),
                phase_string(index), entry["error_type"].get<std::string>(),
                entry["error_message"].get<std::string>());
  }
  return entry;
}

nlohmann::json ETLContext::record_export_error(std::string_view phase, std::exception_ptr error,
                                               std::string_view file) {
  if (!error) throw std::invalid_argument("record_export_error: the exception_ptr is empty");
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return record_error_entry(phase, demangle(typeid(e).name()), message_chain(e), false, file);
  } catch (...) {
    return record_error_entry(phase, "unknown", "an exception that is not a std::exception", false,
                              file);
  }
}

nlohmann::json ETLContext::record_error(std::string_view phase, const std::exception& error) {
  return record_error_entry(phase, demangle(typeid(error).name()), message_chain(error));
}

nlohmann::json ETLContext::record_error(std::string_view phase, std::exception_ptr error) {
  if (!error) throw std::invalid_argument("record_error: the exception_ptr is empty");
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return record_error(phase, e);
  } catch (...) {
    return record_error_entry(phase, "unknown", "an exception that is not a std::exception");
  }
}

std::optional<std::string> ETLContext::current_phase() const {
  for (int i = 0; i < 3; ++i) {
    if (m_status[i].load(std::memory_order_acquire) & k_in_progress) return phase_string(i);
  }
  return std::nullopt;
}

void ETLContext::set_logger(std::shared_ptr<spdlog::logger> logger) {
  std::atomic_store(&m_logger, std::move(logger));
}

std::shared_ptr<spdlog::logger> ETLContext::logger() const {
  return std::atomic_load(&m_logger);
}

pqxx::connection& ETLContext::get_db_connection() {
  std::lock_guard lock(m_db_mutex);
  if (!m_connection) {
    if (const auto log = logger())
      log->debug("connecting to PostgreSQL: {}",
                 m_db_config.conninfo.empty() ? std::string("libpq defaults and PG* environment")
                                              : detail::redact_conninfo(m_db_config.conninfo));
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

void ETLContext::store_resource(const std::string& key, std::shared_ptr<void> resource,
                                const std::type_info& type) {
  std::lock_guard lock(m_mutex);
  m_resources[key] = Resource{std::move(resource), std::type_index(type)};
}

std::shared_ptr<void> ETLContext::find_resource(const std::string& key,
                                                const std::type_info& type) const {
  std::lock_guard lock(m_mutex);
  const auto found = m_resources.find(key);
  if (found == m_resources.end()) return nullptr;
  if (found->second.type != std::type_index(type)) {
    throw std::invalid_argument("Resource '" + key + "' holds a " +
                                demangle(found->second.type.name()) + ", not a " +
                                demangle(type.name()));
  }
  return found->second.object;
}

bool ETLContext::has_resource(const std::string& key) const {
  std::lock_guard lock(m_mutex);
  return m_resources.count(key) > 0;
}

bool ETLContext::remove_resource(const std::string& key) {
  std::lock_guard lock(m_mutex);
  return m_resources.erase(key) > 0;
}

nlohmann::json ETLContext::statistics() const {
  std::lock_guard lock(m_mutex);
  nlohmann::json snapshot = m_statistics;
  for (int i = 0; i < 3; ++i) {
    const std::uint64_t status = m_status[i].load(std::memory_order_relaxed);
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
  const nlohmann::json valid = detail::valid_utf8(values);
  const std::string valid_key = detail::valid_utf8(key);
  std::lock_guard lock(m_mutex);
  auto found = m_statistics.find(valid_key);
  if (found == m_statistics.end()) {
    m_statistics[valid_key] = valid;
  } else {
    merge_into(*found, valid);
  }
}

ProgressTracker& ETLContext::progress_tracker(Phase phase) noexcept {
  return m_trackers[index_of(phase)];
}

const ProgressTracker& ETLContext::progress_tracker(Phase phase) const noexcept {
  return m_trackers[index_of(phase)];
}

}  // namespace skype_etl
