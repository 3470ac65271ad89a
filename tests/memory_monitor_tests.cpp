#define BOOST_TEST_MODULE memory_monitor_tests
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "skype_etl/context.hpp"
#include "skype_etl/errors.hpp"

using skype_etl::MemoryLimitExceeded;
using skype_etl::MemoryMonitor;

namespace {

constexpr std::size_t k_mib = 1024 * 1024;
void* volatile g_escape = nullptr;

// Private (anonymous) memory that is really resident: every page is written.
struct TouchedBlock {
  explicit TouchedBlock(std::size_t bytes) : size(bytes), data(new char[bytes]) {
    std::memset(data.get(), 0x5a, bytes);
    g_escape = data.get();  // the compiler must assume the bytes are read: no elision
  }
  std::size_t size;
  std::unique_ptr<char[]> data;
};

// RssAnon in bytes, read independently of the code under test (iostreams are fine here).
std::size_t rss_anon_from_proc() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "RssAnon:") {
      std::size_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    std::getline(status, key);
  }
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(memory_monitor_tests)

BOOST_AUTO_TEST_CASE(reads_rss_anon_from_proc) {
  const std::size_t ours = MemoryMonitor::read_rss_anon_bytes();
  const std::size_t reference = rss_anon_from_proc();
  BOOST_TEST(ours > 0u);
  BOOST_TEST(reference > 0u);
  // Both are the same kernel figure, read moments apart.
  const std::size_t diff = ours > reference ? ours - reference : reference - ours;
  BOOST_TEST(diff < 16 * k_mib);
}

BOOST_AUTO_TEST_CASE(sample_reads_now_and_records_last_and_peak) {
  MemoryMonitor monitor({}, std::chrono::hours(1));
  BOOST_TEST(monitor.last_bytes() == 0u);
  const std::size_t bytes = monitor.sample();
  BOOST_TEST(bytes > 0u);
  BOOST_TEST(monitor.last_bytes() == bytes);
  BOOST_TEST(monitor.peak_bytes() >= bytes);
  // sample() ignores the rate limit.
  TouchedBlock block(64 * k_mib);
  BOOST_TEST(monitor.sample() > bytes + 48 * k_mib);
}

BOOST_AUTO_TEST_CASE(limit_of_one_megabyte_throws_with_the_exact_message) {
  TouchedBlock block(8 * k_mib);  // a small process may hold less than 1 MB of RssAnon
  MemoryMonitor monitor(1, std::chrono::milliseconds(0));
  BOOST_TEST(monitor.limit_mb().value_or(0) == 1u);
  bool thrown = false;
  try {
    monitor.check_memory();
  } catch (const MemoryLimitExceeded& error) {
    thrown = true;
    BOOST_TEST(error.limit_mb() == 1u);
    BOOST_TEST(error.usage_mb() > 1u);
    BOOST_TEST(error.usage_mb() * k_mib >= monitor.last_bytes());
    BOOST_TEST(std::string(error.what()) ==
               "Memory usage (" + std::to_string(error.usage_mb()) + " MB) exceeds limit (1 MB)");
    // It is a std::runtime_error, as the issue requires.
    const std::runtime_error& base = error;
    BOOST_TEST(std::string(base.what()).find("exceeds limit (1 MB)") != std::string::npos);
  }
  BOOST_TEST(thrown);
  // Rate-limited calls keep reporting the excess from the last sample.
  MemoryMonitor slow(1, std::chrono::hours(1));
  BOOST_CHECK_THROW(slow.check_memory(), MemoryLimitExceeded);
  BOOST_CHECK_THROW(slow.check_memory(), MemoryLimitExceeded);
}

BOOST_AUTO_TEST_CASE(no_limit_or_high_limit_does_not_throw) {
  MemoryMonitor unlimited({}, std::chrono::milliseconds(0));
  BOOST_CHECK_NO_THROW(unlimited.check_memory());
  BOOST_TEST(unlimited.last_bytes() > 0u);  // it still samples, for the peak
  MemoryMonitor high(1024 * 1024, std::chrono::milliseconds(0));
  BOOST_CHECK_NO_THROW(high.check_memory());
}

BOOST_AUTO_TEST_CASE(check_allocation_refuses_what_would_pass_the_limit_before_it_is_allocated) {
  const std::size_t in_use = MemoryMonitor::read_rss_anon_bytes();
  // A limit 64 MB above what is in use, and a rate limit that would hide a fresh read.
  const std::size_t limit_mb = in_use / k_mib + 64;
  MemoryMonitor monitor(limit_mb, std::chrono::hours(1));
  monitor.check_memory();
  BOOST_CHECK_NO_THROW(monitor.check_allocation(16 * k_mib, "a message"));
  try {
    monitor.check_allocation(96 * k_mib, "conversation 0 (8:bob), message 3 (16 MB)");
    BOOST_FAIL("no MemoryLimitExceeded");
  } catch (const MemoryLimitExceeded& error) {
    const std::string what = error.what();
    BOOST_TEST(what.find("Memory usage would exceed limit (" + std::to_string(limit_mb) +
                         " MB): conversation 0 (8:bob), message 3 (16 MB) needs about 96 MB "
                         "more, ") == 0U,
               what);
    BOOST_TEST(what.find(" MB in use") == what.size() - 10, what);
    BOOST_TEST(error.limit_mb() == limit_mb);
    BOOST_TEST(error.usage_mb() > limit_mb);
  }
  // It reads /proc for a large allocation whatever the rate limit: memory taken since the
  // last sample counts.
  {
    TouchedBlock block(48 * k_mib);
    BOOST_CHECK_THROW(monitor.check_allocation(32 * k_mib, "a value"), MemoryLimitExceeded);
  }
  // Small sizes are left to the sampled check: memory taken since its last read is not seen
  // until the interval has passed. (A fresh monitor: what the block above cost may stay
  // private after it is freed, under ThreadSanitizer for one, and the last sample has it.)
  {
    MemoryMonitor sampled(MemoryMonitor::read_rss_anon_bytes() / k_mib + 16, std::chrono::hours(1));
    sampled.check_memory();
    TouchedBlock block(48 * k_mib);
    BOOST_CHECK_NO_THROW(sampled.check_allocation(MemoryMonitor::large_allocation - 1, "x"));
    BOOST_CHECK_THROW(sampled.check_allocation(MemoryMonitor::large_allocation, "y"),
                      MemoryLimitExceeded);
  }
  // No limit, no refusal.
  MemoryMonitor unlimited({});
  BOOST_CHECK_NO_THROW(unlimited.check_allocation(std::size_t{1} << 40U, "a terabyte"));
}

BOOST_AUTO_TEST_CASE(peak_increases_after_touching_64_mb) {
  MemoryMonitor monitor({}, std::chrono::milliseconds(0));
  monitor.check_memory();
  const std::size_t before = monitor.peak_bytes();
  BOOST_TEST(before > 0u);
  {
    TouchedBlock block(64 * k_mib);
    monitor.check_memory();
    BOOST_TEST(monitor.peak_bytes() >= before + 60 * k_mib);
  }
  const std::size_t peak = monitor.peak_bytes();
  monitor.check_memory();  // the block is freed: the peak does not drop
  // (>=, not ==: freeing can touch memory, e.g. AddressSanitizer poisons the freed block.)
  BOOST_TEST(monitor.peak_bytes() >= peak);
}

BOOST_AUTO_TEST_CASE(check_memory_reads_proc_at_most_once_per_interval) {
  MemoryMonitor monitor({}, std::chrono::minutes(10));
  monitor.check_memory();
  const std::size_t first = monitor.last_bytes();
  BOOST_TEST(first > 0u);
  TouchedBlock block(64 * k_mib);
  monitor.check_memory();  // within the interval: no new read
  BOOST_TEST(monitor.last_bytes() == first);
  BOOST_TEST(monitor.peak_bytes() == first);
  BOOST_TEST(monitor.sample() >= first + 60 * k_mib);
}

BOOST_AUTO_TEST_CASE(check_memory_reads_again_after_the_interval) {
  MemoryMonitor monitor({}, std::chrono::milliseconds(1));
  monitor.check_memory();
  const std::size_t first = monitor.last_bytes();
  TouchedBlock block(64 * k_mib);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  monitor.check_memory();
  BOOST_TEST(monitor.last_bytes() >= first + 60 * k_mib);
}

BOOST_AUTO_TEST_CASE(statistics_reports_megabytes_read_now) {
  MemoryMonitor monitor(4096, std::chrono::hours(1));
  monitor.check_memory();
  const std::size_t sampled = monitor.last_bytes();
  TouchedBlock block(64 * k_mib);  // not sampled by the monitor
  const auto stats = monitor.statistics();
  BOOST_TEST(stats.size() == 3u);
  BOOST_TEST(stats["limit_mb"] == 4096);
  const double current = stats["current_mb"].get<double>();
  const double reference = static_cast<double>(rss_anon_from_proc()) / k_mib;
  BOOST_TEST(current >= static_cast<double>(sampled) / k_mib + 60.0);
  BOOST_TEST(std::abs(current - reference) < 16.0);
  BOOST_TEST(current * 10 == std::round(current * 10));  // one decimal
  BOOST_TEST(stats["peak_mb"].get<double>() >= current);
  BOOST_TEST(monitor.last_bytes() == sampled);  // statistics() does not store its read
  MemoryMonitor unlimited({});
  BOOST_TEST(unlimited.statistics()["limit_mb"].is_null());
  BOOST_TEST(unlimited.statistics()["current_mb"].get<double>() > 0.0);
}

BOOST_AUTO_TEST_CASE(concurrent_checks_are_safe) {
  MemoryMonitor monitor({}, std::chrono::milliseconds(1));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) monitor.check_memory();
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 200; ++i) (void)monitor.statistics();
  });
  for (auto& thread : threads) thread.join();
  BOOST_TEST(monitor.last_bytes() > 0u);
  BOOST_TEST(monitor.peak_bytes() >= monitor.last_bytes());
}

BOOST_AUTO_TEST_SUITE_END()
