// The steps of one export's load (opening its transaction, the COPY of its batches, each
// statement of the merge, the index builds on the streams' connections, the commit), each
// with its start and end on the clock of the phases (core/clock.hpp): the run's report draws
// them under the phases, and a progress display shows which one runs now.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "load/parallel_copy.hpp"

namespace skype_etl::detail {

/// Called on the load thread when a step of the loader's own connection begins, with its
/// name: a string literal, valid for the life of the program (a display may keep it). Must
/// be cheap and must not throw.
using LoadStepObserver = std::function<void(const char* step)>;

/// Not thread-safe: the loader's thread records (what ran on other connections is added
/// by it once their statements have returned).
class LoadSteps {
 public:
  void set_observer(LoadStepObserver observer) { m_observer = std::move(observer); }
  /// Ends the step running on the loader's connection, if any, and begins `name` (a string
  /// literal) there; tells the observer.
  void begin(const char* name);
  /// Ends the step running on the loader's connection, if any.
  void end();
  /// Steps that ran on the streams' connections (connection = stream + 1): the statement
  /// timings of ParallelCopy::run_statements, named `name`, each with its `details[i]` when
  /// there is one (an index's name).
  void add_streams(const char* name, const std::vector<StatementTiming>& timings,
                   const std::vector<std::string>& details = {});
  /// Forgets every step (a new export).
  void clear();

  /// [{"step", "connection", "start_us", "end_us"[, "detail"]}, ...] in the order recorded:
  /// connection 0 is the loader's own, 1 and up the streams'; times are now_us(). A step
  /// still running ends at now_us().
  nlohmann::json to_json() const;
  /// {name: seconds} over the steps of the loader's own connection that began at or after
  /// `since_us`, those of one name added up (a running one counted to now).
  nlohmann::json seconds_since(std::int64_t since_us) const;

 private:
  struct Step {
    const char* name;
    std::string detail;
    std::size_t connection;
    std::int64_t start_us;
    std::int64_t end_us;  // 0 while running
  };
  std::vector<Step> m_steps;
  bool m_running = false;           // a step runs on the loader's connection:
  std::size_t m_running_index = 0;  // m_steps[m_running_index]
  LoadStepObserver m_observer;
};

}  // namespace skype_etl::detail
