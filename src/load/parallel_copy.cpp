#include "load/parallel_copy.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <utility>

#include "core/clock.hpp"
#include "load/pg_connection.hpp"

namespace skype_etl::detail {

ParallelCopy::ParallelCopy(const std::string& conninfo, std::size_t streams,
                           const std::string& session_sql, const std::string& copy_sql)
    : ParallelCopy(conninfo, session_sql,
                   std::vector<CopyTarget>(std::max<std::size_t>(streams, 1), {"", copy_sql})) {}

ParallelCopy::ParallelCopy(const std::string& conninfo, const std::string& session_sql,
                           const std::vector<CopyTarget>& targets) {
  try {
    for (const CopyTarget& target : targets) {
      auto stream = std::make_unique<Stream>();
      stream->conn = std::make_unique<PgConnection>(conninfo);
      if (!session_sql.empty()) stream->conn->exec(session_sql);
      if (!target.setup.empty()) {
        stream->conn->exec("BEGIN");
        stream->in_transaction = true;
        stream->conn->exec(target.setup);
      }
      stream->conn->copy_in(target.copy);
      stream->conn->put_copy_data(binary_copy_header());
      m_streams.push_back(std::move(stream));
    }
    for (auto& stream : m_streams) {
      Stream& s = *stream;
      s.thread = std::thread([this, &s] { stream_main(s); });
    }
  } catch (...) {
    cancel();
    throw;
  }
}

ParallelCopy::~ParallelCopy() {
  cancel();
}

void ParallelCopy::stream_main(Stream& s) {
  for (;;) {
    CopyBuffer buffer;
    {
      std::unique_lock<std::mutex> lock(m_mutex);
      m_work.wait(lock, [&] { return m_cancelled || m_ending || !s.queue.empty(); });
      if (m_cancelled || s.queue.empty()) return;
      buffer = std::move(s.queue.front());
      s.queue.pop_front();
      s.busy = true;
    }
    m_drained.notify_all();  // a place in the queue is free
    try {
      s.conn->put_copy_data(buffer.view());
    } catch (...) {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (!m_failure) m_failure = std::current_exception();
      s.busy = false;
      m_drained.notify_all();
      return;
    }
    buffer.reset();  // the loader counted what it removed before sending it
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      s.busy = false;
      m_free.push_back(std::move(buffer));
    }
    m_drained.notify_all();
  }
}

void ParallelCopy::rethrow_failure() {
  if (m_failure) std::rethrow_exception(m_failure);
}

void ParallelCopy::send(CopyBuffer& buffer) {
  if (buffer.empty()) return;
  std::unique_lock<std::mutex> lock(m_mutex);
  Stream* target = nullptr;
  m_drained.wait(lock, [&] {
    if (m_failure) return true;
    target = nullptr;
    for (auto& stream : m_streams)
      if (stream->queue.size() < queue_depth &&
          (!target || stream->queue.size() + stream->busy < target->queue.size() + target->busy))
        target = stream.get();
    return target != nullptr;
  });
  rethrow_failure();
  enqueue(*target, buffer, lock);
}

void ParallelCopy::send_to(std::size_t stream, CopyBuffer& buffer) {
  if (buffer.empty()) return;
  Stream& target = *m_streams.at(stream);
  std::unique_lock<std::mutex> lock(m_mutex);
  m_drained.wait(lock, [&] { return m_failure || target.queue.size() < queue_depth; });
  rethrow_failure();
  enqueue(target, buffer, lock);
}

void ParallelCopy::enqueue(Stream& target, CopyBuffer& buffer, std::unique_lock<std::mutex>& lock) {
  target.queue.push_back(std::move(buffer));
  if (m_free.empty()) {
    buffer = CopyBuffer(CopyFormat::binary);
  } else {
    buffer = std::move(m_free.back());
    m_free.pop_back();
  }
  lock.unlock();
  m_work.notify_all();
}

void ParallelCopy::stop_threads() noexcept {
  m_work.notify_all();
  for (auto& stream : m_streams)
    if (stream->thread.joinable()) stream->thread.join();
}

void ParallelCopy::finish() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_ending = true;
  }
  stop_threads();
  rethrow_failure();
  // Each COPY ends when its backend has stored everything it was sent; they work on at
  // the same time, so ending them one after another waits about as long as the slowest.
  // A commit after a setup may write the whole table (wal_level=minimal): those at once.
  on_each_stream([this](std::size_t k) {
    Stream& stream = *m_streams[k];
    stream.conn->put_copy_data(binary_copy_trailer());
    stream.conn->end_copy();
    if (stream.in_transaction) {
      stream.conn->exec("COMMIT");
      stream.in_transaction = false;
    }
  });
  m_finished = true;
  m_free.clear();
}

void ParallelCopy::cancel() noexcept {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_cancelled = true;
  }
  stop_threads();
  for (auto& stream : m_streams) {
    stream->queue.clear();
    if (stream->conn) stream->conn->cancel_copy();
  }
  m_free.clear();
}

void ParallelCopy::on_each_stream(const std::function<void(std::size_t)>& work) {
  if (m_streams.size() == 1) return work(0);
  std::mutex failure_mutex;
  std::exception_ptr failure;
  std::vector<std::thread> threads;
  threads.reserve(m_streams.size());
  for (std::size_t k = 0; k < m_streams.size(); ++k)
    threads.emplace_back([&, k] {
      try {
        work(k);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    });
  for (std::thread& thread : threads) thread.join();
  if (failure) std::rethrow_exception(failure);
}

std::vector<StatementTiming> ParallelCopy::run_statements(
    const std::vector<std::string>& statements) {
  if (!m_finished) throw std::logic_error("ParallelCopy::run_statements before finish()");
  std::vector<StatementTiming> timings(statements.size());  // each slot written by one thread
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};  // a statement failed: the others take no more
  on_each_stream([&](std::size_t k) {
    PgConnection& conn = *m_streams[k]->conn;
    while (!stop.load()) {
      const std::size_t i = next.fetch_add(1);
      if (i >= statements.size()) return;
      timings[i].stream = k;
      timings[i].start_us = now_us();
      try {
        conn.exec(statements[i]);
      } catch (...) {
        stop.store(true);
        throw;
      }
      timings[i].end_us = now_us();
    }
  });
  return timings;
}

}  // namespace skype_etl::detail
