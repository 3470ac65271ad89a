// Samples of a run over time, for the report's charts (messages per phase, batches in
// flight, private memory, bytes read) and the data a live progress display shows.
//
// Run-scoped: one RunSampler per EtlGraph run, owned by whoever runs the graph. take() is
// meant for one sampler thread (every 100-250 ms); it reads only atomics (the context's
// phase trackers, EtlGraph::progress()) and RssAnon from /proc, so the nodes never wait on
// it. to_json() may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "skype_etl/context.hpp"
#include "skype_etl/graph.hpp"

namespace skype_etl::detail {

struct RunSample {
  std::int64_t time_us = 0;               ///< system_clock, as the phases' times
  std::uint64_t messages[3] = {0, 0, 0};  ///< processed so far, per Phase (cumulative)
  std::int64_t batches_in_flight = 0;     ///< admitted by the limiter, not yet loaded
  std::uint64_t bytes_read = 0;           ///< over every input (cumulative)
  std::size_t rss_anon_bytes = 0;         ///< private memory now
};

class RunSampler {
 public:
  /// Keeps at most `max_samples`: past that, every other one is dropped and the interval
  /// between kept samples doubles, so a run of hours stays a few hundred KB of report.
  RunSampler(const EtlGraph& graph, ETLContext& context,
             std::chrono::milliseconds interval = std::chrono::milliseconds(200),
             std::size_t max_samples = 2000);

  /// Where the run is now (for a display), keeping a sample of it when at least the
  /// interval has passed since the last kept one. Also samples the memory monitor, so its
  /// peak is current. Cheap: no lock the nodes take.
  RunProgress take(bool keep_always = false);

  /// {"interval_ms", "batches_in_flight_limit", "memory_limit_mb", "samples": [{"time_us",
  /// "extract", "transform", "load" (messages processed so far), "batches_in_flight",
  /// "bytes_read", "rss_anon_mb"}, ...]}, oldest first.
  nlohmann::json to_json() const;

 private:
  const EtlGraph& m_graph;
  ETLContext& m_context;
  std::size_t m_max_samples;
  mutable std::mutex m_mutex;  // guards what follows (take() and to_json() may race)
  std::chrono::milliseconds m_interval;
  std::size_t m_in_flight_limit = 0;
  std::vector<RunSample> m_samples;
};

}  // namespace skype_etl::detail
