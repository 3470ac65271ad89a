// COPY into one table over several connections at once, so that several server backends
// parse, compute generated columns and store rows side by side (one backend is the
// bottleneck of a large load: it spends half its time computing the full-text tsvector).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "load/copy_writer.hpp"

namespace skype_etl::detail {

class PgConnection;

/// When one statement of ParallelCopy::run_statements ran, and on which connection.
struct StatementTiming {
  std::size_t stream = 0;     ///< the connection, from 0 (the streams' order)
  std::int64_t start_us = 0;  ///< now_us() (core/clock.hpp) when it was sent
  std::int64_t end_us = 0;    ///< now_us() when it had finished
  double seconds() const noexcept { return static_cast<double>(end_us - start_us) / 1e6; }
};

/// What one stream of a ParallelCopy runs on its connection.
struct CopyTarget {
  /// Statements that open the COPY's transaction, before `copy` (for example a TRUNCATE
  /// of the table it fills, so that with wal_level=minimal its rows skip WAL); empty: the
  /// COPY is a transaction of its own.
  std::string setup;
  /// A COPY ... FROM STDIN in binary format.
  std::string copy;
};

/// Owns `streams` connections, each with a thread that feeds its COPY. Each COPY is a
/// transaction of its own (with its target's setup): rows are visible to others only
/// after finish(), and cancel() (or a failure, or the process dying) rolls them back.
///
/// Thread-safety: send(), finish(), cancel() and run_statements() are called by one thread
/// (the loader's); the stream threads touch only their own connection and the queues,
/// under the mutex.
class ParallelCopy {
 public:
  /// Connects `streams` times with `conninfo`, runs `session_sql` on each, then starts
  /// `copy_sql` (a COPY ... FROM STDIN in binary format) on each.
  ParallelCopy(const std::string& conninfo, std::size_t streams, const std::string& session_sql,
               const std::string& copy_sql);
  /// One stream per target, each running its own; the rest as above.
  ParallelCopy(const std::string& conninfo, const std::string& session_sql,
               const std::vector<CopyTarget>& targets);
  /// Cancels whatever is still running. Never throws.
  ~ParallelCopy();
  ParallelCopy(const ParallelCopy&) = delete;
  ParallelCopy& operator=(const ParallelCopy&) = delete;

  /// Hands the rows of `buffer` (binary format, whole rows) to the stream with the least
  /// queued; `buffer` comes back empty, holding a recycled buffer's storage, its counters
  /// at zero (read them before sending). Blocks while
  /// every stream has `queue_depth` buffers waiting (so memory stays bounded). Rethrows the
  /// first failure of a stream.
  void send(CopyBuffer& buffer);
  /// The same, to stream `stream` (from 0, the targets' order) only: blocks while it has
  /// `queue_depth` buffers waiting.
  void send_to(std::size_t stream, CopyBuffer& buffer);
  /// Ends every COPY, which commits it (the streams' commits at once: with a setup each may
  /// write its whole table to disk), and waits for that. Rethrows a stream's failure
  /// (then nothing of it is committed on that stream; the others may be).
  void finish();
  /// Rolls back every COPY still running and stops the threads. Never throws.
  void cancel() noexcept;
  /// After finish(): runs `statements` on the connections, as many at once as there are
  /// connections, each in its own transaction, taking them in the given order. Waits for
  /// all; rethrows the first failure (after the others have stopped). Returns when and
  /// where each statement ran, in the order of `statements`.
  std::vector<StatementTiming> run_statements(const std::vector<std::string>& statements);

  std::size_t streams() const noexcept { return m_streams.size(); }

  /// Buffers waiting per stream besides the one it is sending: one keeps each backend fed
  /// (filling a buffer takes a tenth of the time a backend takes to store it).
  static constexpr std::size_t queue_depth = 1;

 private:
  struct Stream {
    std::unique_ptr<PgConnection> conn;
    bool in_transaction = false;  // its target has a setup: finish() commits
    std::thread thread;
    std::deque<CopyBuffer> queue;  // filled buffers waiting for this stream
    bool busy = false;             // its thread is sending a buffer
  };
  void stream_main(Stream& stream);
  void rethrow_failure();
  void enqueue(Stream& target, CopyBuffer& buffer, std::unique_lock<std::mutex>& lock);
  // Runs `work(k)` for each stream k at once, on threads of its own (on this one when there
  // is one stream); waits for all, then rethrows the first failure.
  void on_each_stream(const std::function<void(std::size_t)>& work);
  void stop_threads() noexcept;

  std::vector<std::unique_ptr<Stream>> m_streams;
  std::mutex m_mutex;
  std::condition_variable m_work;     // a stream has a buffer, or the streams must stop
  std::condition_variable m_drained;  // a stream took a buffer, or failed
  std::vector<CopyBuffer> m_free;     // sent buffers, ready for reuse
  bool m_ending = false;              // streams stop once their queue is empty
  bool m_cancelled = false;           // streams stop at once
  bool m_finished = false;
  std::exception_ptr m_failure;
};

}  // namespace skype_etl::detail
