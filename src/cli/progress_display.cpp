#include "cli/progress_display.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "core/clock.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::cli {
namespace {

/// Rates are taken over this much of the recent past: steady, yet they follow a change.
constexpr std::int64_t k_rate_window_us = 3'000'000;
constexpr std::chrono::milliseconds k_tick(100);  // at most 10 redraws a second

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

std::string megabytes(std::uint64_t bytes) {
  return format("%.1f MB", static_cast<double>(bytes) / 1e6);
}

std::string duration(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buffer[32];
  if (s >= 3600)
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", s / 3600, s / 60 % 60);
  else if (s >= 60)
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buffer, sizeof buffer, "%llds", s);
  return buffer;
}

/// The last component of the path, escaped for a terminal and cut: a line has room for
/// little else.
std::string short_name(const std::string& file) {
  const std::size_t slash = file.find_last_of('/');
  std::string name =
      slash == std::string::npos || slash + 1 == file.size() ? file : file.substr(slash + 1);
  return skype_etl::printable(name, 40);
}

/// `text` cut to `width` columns (UTF-8: a character is not split; each is taken as one
/// column).
std::string fit(const std::string& text, std::size_t width) {
  std::size_t columns = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0U) == 0x80U) continue;
    if (++columns > width) return text.substr(0, i);
  }
  return text;
}

std::size_t terminal_width() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    const long n = std::strtol(columns, nullptr, 10);
    if (n > 0) return static_cast<std::size_t>(n);
  }
  return 80;
}

void write_all(const std::string& text) {
  const char* data = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr is gone: progress is not worth failing the run
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

/// Put first among the default logger's sinks while a bar is drawn: a log line is written
/// below the live lines' place, not across them.
class ClearLinesSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ClearLinesSink(ProgressMonitor& monitor) : m_monitor(monitor) {}

 protected:
  void sink_it_(const spdlog::details::log_msg&) override { m_monitor.clear_lines(); }
  void flush_() override {}

 private:
  ProgressMonitor& m_monitor;
};

bool running(const RunProgress::Export& e) {
  return e.activity != "waiting" && e.activity != "done" && e.activity != "failed";
}

}  // namespace

ProgressMode choose_progress_mode(const std::string& requested, bool quiet, bool stderr_is_terminal,
                                  const char* term) {
  ProgressMode mode;
  const bool can_draw = stderr_is_terminal && term && *term && std::strcmp(term, "dumb") != 0;
  if (requested.empty())
    mode = can_draw ? ProgressMode::bar : ProgressMode::none;
  else if (requested == "none")
    mode = ProgressMode::none;
  else if (requested == "bar")
    mode = can_draw ? ProgressMode::bar : ProgressMode::none;
  else if (requested == "plain")
    mode = ProgressMode::plain;
  else
    throw std::invalid_argument("--progress must be none, bar or plain, not " +
                                skype_etl::quoted(requested));
  return quiet ? ProgressMode::none : mode;
}

std::string progress_line(const RunProgress::Export& e, const ProgressFigures& f,
                          std::size_t width) {
  // Each field with its rank: on a narrow terminal the highest ranks go first, so that
  // what matters most stays on the line, in the same order.
  struct Field {
    std::string text;
    int rank;
  };
  std::vector<Field> fields{{short_name(e.file), 0}, {e.activity, 0}};
  if (e.bytes_total > 0) {
    const double percent =
        100.0 * static_cast<double>(e.bytes_done) / static_cast<double>(e.bytes_total);
    fields.push_back({format("%.0f%%", std::min(percent, 100.0)), 1});
    fields.push_back({"of " + megabytes(e.bytes_total), 5});
    if (e.bytes_done < e.bytes_total && f.eta_seconds)
      fields.push_back({"ETA " + duration(*f.eta_seconds), 2});
  }
  fields.push_back(
      {std::to_string(e.messages_read) + " read, " + std::to_string(e.messages_loaded) + " stored",
       1});
  fields.push_back({format("%.0f msg/s", f.messages_per_second), 2});
  fields.push_back({format("%.1f MB/s", f.bytes_per_second / 1e6), 3});
  fields.push_back({"peak mem " + format("%.1f MB", f.peak_mb), 4});
  auto joined = [&fields](int max_rank) {
    std::string line;
    for (const Field& field : fields) {
      if (field.rank > max_rank) continue;
      // "86%" and "of 37.8 MB" read as one.
      const bool glued = field.text.compare(0, 3, "of ") == 0;
      if (!line.empty()) line += glued ? " " : "  ";
      line += field.text;
    }
    return line;
  };
  std::string line;
  for (int rank = 5; rank >= 0; --rank) {
    line = joined(rank);
    if (line.size() <= width) break;
  }
  return fit(line, width);
}

ProgressMonitor::ProgressMonitor(detail::RunSampler& sampler, ETLContext& context,
                                 ProgressMode mode, std::chrono::milliseconds plain_interval)
    : m_sampler(sampler), m_context(context), m_mode(mode), m_plain_interval(plain_interval) {
  m_sampler.take(true);
  if (m_mode == ProgressMode::bar) {
    auto sink = std::make_shared<ClearLinesSink>(*this);
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.insert(sinks.begin(), sink);
    m_log_sink = sink;
  }
  m_next_plain_us = detail::now_us() + static_cast<std::int64_t>(m_plain_interval.count()) * 1000;
  m_thread = std::thread([this] { loop(); });
}

ProgressMonitor::~ProgressMonitor() {
  stop();
}

void ProgressMonitor::stop() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_stopping) return;
    m_stopping = true;
  }
  m_wake.notify_all();
  m_thread.join();
  tick(true);
  if (m_log_sink) {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), m_log_sink), sinks.end());
    m_log_sink.reset();
  }
}

void ProgressMonitor::clear_lines() {
  draw({});
}

void ProgressMonitor::loop() {
  std::unique_lock<std::mutex> lock(m_mutex);
  while (!m_wake.wait_for(lock, k_tick, [this] { return m_stopping; })) {
    lock.unlock();
    tick(false);
    lock.lock();
  }
}

ProgressFigures ProgressMonitor::figures_of(const RunProgress::Export& e, std::int64_t now) {
  ProgressFigures f;
  f.peak_mb = static_cast<double>(m_context.memory_monitor().peak_bytes()) / (1024.0 * 1024.0);
  // Once the file is read whole, what is left are the load's steps: the rates are the
  // export's own, from its start, rather than zeros.
  const bool read_whole = e.bytes_total > 0 && e.bytes_done >= e.bytes_total;
  if (read_whole && e.start_us > 0 && now > e.start_us) {
    const double seconds = static_cast<double>(now - e.start_us) / 1e6;
    f.messages_per_second = static_cast<double>(e.messages_loaded) / seconds;
    f.bytes_per_second = static_cast<double>(e.bytes_total) / seconds;
    return f;
  }
  const std::uint64_t messages = e.messages_read;
  std::vector<Point>& history = m_history[e.index];
  if (!history.empty() &&
      (history.back().bytes > e.bytes_done || history.back().messages > messages))
    history.clear();  // inflating, then reading: another count
  history.push_back(Point{now, e.bytes_done, messages});
  while (history.size() > 2 && now - history[1].time_us >= k_rate_window_us)
    history.erase(history.begin());
  const Point& first = history.front();
  const double seconds = static_cast<double>(now - first.time_us) / 1e6;
  if (seconds < 0.09) return f;  // a tick at least
  f.messages_per_second = static_cast<double>(messages - first.messages) / seconds;
  f.bytes_per_second = static_cast<double>(e.bytes_done - first.bytes) / seconds;
  if (f.bytes_per_second > 0 && e.bytes_total > e.bytes_done)
    f.eta_seconds = static_cast<double>(e.bytes_total - e.bytes_done) / f.bytes_per_second;
  return f;
}

void ProgressMonitor::tick(bool last) {
  const RunProgress progress = m_sampler.take(last);
  if (m_mode == ProgressMode::none) return;
  const std::int64_t now = detail::now_us();
  if (m_mode == ProgressMode::bar) {
    if (last) {
      draw({});  // the summary lines that follow start on a clean line
      return;
    }
    const std::size_t width = terminal_width();
    std::vector<std::string> lines;
    for (const auto& e : progress.exports)
      if (running(e)) lines.push_back(progress_line(e, figures_of(e, now), width - 1));
    draw(lines);
    return;
  }
  // Plain: a line per running export every interval (rates over the last few seconds).
  std::vector<std::string> lines;
  for (const auto& e : progress.exports)
    if (running(e)) lines.push_back(progress_line(e, figures_of(e, now), 4096));
  if (last || now < m_next_plain_us) return;
  m_next_plain_us = now + static_cast<std::int64_t>(m_plain_interval.count()) * 1000;
  std::string text;
  for (const auto& line : lines) text += "skype-etl: progress: " + line + "\n";
  write_all(text);
}

void ProgressMonitor::draw(const std::vector<std::string>& lines) {
  std::lock_guard<std::mutex> lock(m_draw_mutex);
  draw_locked(lines);
}

void ProgressMonitor::draw_locked(const std::vector<std::string>& lines) {
  // The cursor stays at the end of the last line drawn: back to the first, rewrite each,
  // and clear what is left below (a finished export's line).
  std::string frame;
  if (m_lines_drawn > 1) frame += "\x1b[" + std::to_string(m_lines_drawn - 1) + "A";
  frame += "\r";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    frame += "\x1b[2K" + lines[i];
    if (i + 1 < lines.size()) frame += "\n";
  }
  if (lines.size() < m_lines_drawn || lines.empty()) frame += "\x1b[J";
  if (lines.empty() && m_lines_drawn == 0) return;  // nothing drawn, nothing to clear
  m_lines_drawn = lines.size();
  write_all(frame);
}

}  // namespace skype_etl::cli
