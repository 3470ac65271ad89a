// Live progress of `skype-etl run` on stderr, and the sampler thread that drives it and
// records the run's samples for the report (README: "Progress").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "run_sampler.hpp"
#include "skype_etl/graph.hpp"

namespace spdlog::sinks {
class sink;
}

namespace skype_etl::cli {

enum class ProgressMode { none, bar, plain };

/// What --progress asks for (`requested`: "none", "bar", "plain", or empty when not given)
/// given where stderr goes: a bar needs a terminal (`stderr_is_terminal`, and a TERM other
/// than "dumb"), so it is the default there and becomes none elsewhere (a pipe, a file); -q
/// (`quiet`) turns any progress off. Throws std::invalid_argument for another word.
ProgressMode choose_progress_mode(const std::string& requested, bool quiet, bool stderr_is_terminal,
                                  const char* term);

/// A progress line's figures for one export, as the display computes them.
struct ProgressFigures {
  double messages_per_second = 0;
  double bytes_per_second = 0;
  std::optional<double> eta_seconds;  ///< unknown until a rate is seen
  double peak_mb = 0;
};

/// One export's status line, cut to `width` columns (no newline): file name, activity,
/// bytes read of the size as a percentage with an ETA, messages read / stored, messages/s,
/// MB/s, peak private memory.
std::string progress_line(const RunProgress::Export& e, const ProgressFigures& figures,
                          std::size_t width);

/// From construction to stop(): a thread that samples the run every 100 ms (keeping one
/// sample every 200 ms in `sampler`), and with ProgressMode::bar redraws one line per
/// running export on stderr (at most 10 times a second), with ProgressMode::plain prints
/// those lines every `plain_interval`. stop() (or the destructor) ends the thread and
/// clears the live lines, so that what is printed next starts on a clean line.
///
/// With a bar, what spdlog's default logger writes meanwhile (`-v`: phases starting and
/// ending, ...) is written between frames: a sink put first in that logger's sinks, from
/// construction to stop(), clears the live lines before the logger's own sinks write, and
/// the next frame draws them again below. (Nothing else may change that logger's sinks
/// while the monitor runs.)
class ProgressMonitor {
 public:
  ProgressMonitor(detail::RunSampler& sampler, ETLContext& context, ProgressMode mode,
                  std::chrono::milliseconds plain_interval);
  ~ProgressMonitor();
  ProgressMonitor(const ProgressMonitor&) = delete;
  ProgressMonitor& operator=(const ProgressMonitor&) = delete;

  void stop();
  /// Clears the live lines, if any: what is written to the terminal next starts on a clean
  /// line. Any thread.
  void clear_lines();

 private:
  struct Point {
    std::int64_t time_us;
    std::uint64_t bytes;
    std::uint64_t messages;
  };
  void loop();
  void tick(bool last);
  ProgressFigures figures_of(const RunProgress::Export& e, std::int64_t now);
  void draw(const std::vector<std::string>& lines);
  void draw_locked(const std::vector<std::string>& lines);

  detail::RunSampler& m_sampler;
  ETLContext& m_context;
  ProgressMode m_mode;
  std::chrono::milliseconds m_plain_interval;
  std::int64_t m_next_plain_us = 0;
  std::mutex m_draw_mutex;  // guards m_lines_drawn and the writes of frames
  std::size_t m_lines_drawn = 0;
  std::shared_ptr<spdlog::sinks::sink>
      m_log_sink;  // the sink that calls clear_lines(), while it is in place
  std::map<std::size_t, std::vector<Point>> m_history;  // per export: the last few seconds

  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_stopping = false;
  std::thread m_thread;
};

}  // namespace skype_etl::cli
