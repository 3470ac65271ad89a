#include "run_sampler.hpp"

#include <cmath>

#include "core/clock.hpp"

namespace skype_etl::detail {

RunSampler::RunSampler(const EtlGraph& graph, ETLContext& context,
                       std::chrono::milliseconds interval, std::size_t max_samples)
    : m_graph(graph),
      m_context(context),
      m_max_samples(max_samples < 2 ? 2 : max_samples),
      m_interval(interval) {}

RunProgress RunSampler::take(bool keep_always) {
  RunProgress progress = m_graph.progress();
  RunSample sample;
  sample.time_us = now_us();
  for (const Phase phase : all_phases)
    sample.messages[static_cast<int>(phase)] =
        m_context.progress_tracker(phase).processed_messages();
  sample.batches_in_flight = progress.batches_in_flight;
  for (const auto& e : progress.exports)
    if (e.activity != "inflating") sample.bytes_read += e.bytes_done;
  sample.rss_anon_bytes = m_context.memory_monitor().sample();

  std::lock_guard<std::mutex> lock(m_mutex);
  m_in_flight_limit = progress.batches_in_flight_limit;
  const std::int64_t interval_us = static_cast<std::int64_t>(m_interval.count()) * 1000;
  // A sample is kept when the interval has passed, less a tenth for the sleeps' jitter.
  if (keep_always || m_samples.empty() ||
      sample.time_us - m_samples.back().time_us >= interval_us - interval_us / 10) {
    m_samples.push_back(sample);
    if (m_samples.size() > m_max_samples) {
      // Every other one goes (the first and the newest stay), and the interval doubles.
      std::size_t kept = 0;
      for (std::size_t i = 0; i < m_samples.size(); i += 2) m_samples[kept++] = m_samples[i];
      if ((m_samples.size() - 1) % 2 != 0) m_samples[kept++] = m_samples.back();
      m_samples.resize(kept);
      m_interval *= 2;
    }
  }
  return progress;
}

nlohmann::json RunSampler::to_json() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  nlohmann::json samples = nlohmann::json::array();
  for (const RunSample& s : m_samples) {
    samples.push_back(nlohmann::json{
        {"time_us", s.time_us},
        {"extract", s.messages[0]},
        {"transform", s.messages[1]},
        {"load", s.messages[2]},
        {"batches_in_flight", s.batches_in_flight},
        {"bytes_read", s.bytes_read},
        {"rss_anon_mb",
         std::round(static_cast<double>(s.rss_anon_bytes) / (1024.0 * 1024.0) * 10) / 10}});
  }
  const auto limit = m_context.memory_limit_mb();
  return nlohmann::json{
      {"interval_ms", m_interval.count()},
      {"batches_in_flight_limit", m_in_flight_limit},
      {"memory_limit_mb", limit && *limit > 0 ? nlohmann::json(*limit) : nlohmann::json()},
      {"samples", std::move(samples)}};
}

}  // namespace skype_etl::detail
