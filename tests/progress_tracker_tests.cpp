#define BOOST_TEST_MODULE progress_tracker_tests
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "skype_etl/context.hpp"

using skype_etl::Phase;
using skype_etl::ProgressTracker;

namespace {

// "2025-04-30T10:13:05.123456Z"
bool is_iso_utc_us(const nlohmann::json& value) {
  if (!value.is_string()) return false;
  const std::string s = value.get<std::string>();
  if (s.size() != 27) return false;
  const std::string shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) return false;
  }
  return true;
}

const std::vector<std::string> k_keys{"phase",
                                      "start_time",
                                      "end_time",
                                      "duration_seconds",
                                      "total_conversations",
                                      "processed_conversations",
                                      "conversation_percent",
                                      "total_messages",
                                      "processed_messages",
                                      "message_percent",
                                      "conversations_per_second",
                                      "messages_per_second"};

}  // namespace

BOOST_AUTO_TEST_SUITE(progress_tracker_tests)

BOOST_AUTO_TEST_CASE(statistics_has_exactly_the_seed_keys) {
  ProgressTracker tracker(Phase::transform);
  tracker.start(1, 1);
  tracker.finish();
  const auto stats = tracker.statistics();
  BOOST_TEST(stats.size() == k_keys.size());
  for (const auto& key : k_keys) BOOST_TEST(stats.contains(key), key);
  BOOST_TEST(stats["phase"] == "transform");
}

BOOST_AUTO_TEST_CASE(not_started_tracker_reports_zeros_and_null_times) {
  ProgressTracker tracker(Phase::load);
  const auto stats = tracker.statistics();
  BOOST_TEST(stats["phase"] == "load");
  BOOST_TEST(stats["start_time"].is_null());
  BOOST_TEST(stats["end_time"].is_null());
  BOOST_TEST(stats["duration_seconds"].get<double>() == 0.0);
  BOOST_TEST(stats["conversations_per_second"].get<double>() == 0.0);
  BOOST_TEST(stats["messages_per_second"].get<double>() == 0.0);
  BOOST_TEST(stats["conversation_percent"].get<double>() == 0.0);
}

BOOST_AUTO_TEST_CASE(counts_percentages_and_rates) {
  ProgressTracker tracker(Phase::extract);
  tracker.start(8, 200);
  tracker.update(2, 50);
  tracker.update(0, 0);
  tracker.update(2, 0);
  tracker.update(0, 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  tracker.finish();
  BOOST_TEST(tracker.processed_conversations() == 4u);
  BOOST_TEST(tracker.processed_messages() == 100u);
  const auto stats = tracker.statistics();
  BOOST_TEST(stats["total_conversations"] == 8);
  BOOST_TEST(stats["processed_conversations"] == 4);
  BOOST_TEST(stats["total_messages"] == 200);
  BOOST_TEST(stats["processed_messages"] == 100);
  BOOST_TEST(stats["conversation_percent"].get<double>() == 50.0);
  BOOST_TEST(stats["message_percent"].get<double>() == 50.0);
  const double duration = stats["duration_seconds"].get<double>();
  BOOST_TEST(duration >= 0.019);
  BOOST_TEST(duration < 5.0);
  BOOST_TEST(stats["conversations_per_second"].get<double>() == 4.0 / duration,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(stats["messages_per_second"].get<double>() == 100.0 / duration,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(is_iso_utc_us(stats["start_time"]), stats["start_time"].dump());
  BOOST_TEST(is_iso_utc_us(stats["end_time"]), stats["end_time"].dump());
  BOOST_TEST(stats["start_time"].get<std::string>() <= stats["end_time"].get<std::string>());
  BOOST_TEST(tracker.end_time_us() - tracker.start_time_us() >= 19000);
}

BOOST_AUTO_TEST_CASE(percent_is_zero_when_total_is_zero) {
  ProgressTracker tracker(Phase::extract);
  tracker.start();
  tracker.update(3, 30);
  tracker.finish();
  const auto stats = tracker.statistics();
  BOOST_TEST(stats["conversation_percent"].get<double>() == 0.0);
  BOOST_TEST(stats["message_percent"].get<double>() == 0.0);
  BOOST_TEST(stats["processed_messages"] == 30);
}

BOOST_AUTO_TEST_CASE(duration_is_live_while_running_and_frozen_after_finish) {
  ProgressTracker tracker(Phase::load);
  tracker.start(0, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(15));
  const auto running = tracker.statistics();
  BOOST_TEST(running["end_time"].is_null());
  const double first = running["duration_seconds"].get<double>();
  BOOST_TEST(first >= 0.014);
  std::this_thread::sleep_for(std::chrono::milliseconds(15));
  const double second = tracker.statistics()["duration_seconds"].get<double>();
  BOOST_TEST(second >= first + 0.014);
  tracker.finish();
  const double frozen = tracker.statistics()["duration_seconds"].get<double>();
  std::this_thread::sleep_for(std::chrono::milliseconds(15));
  BOOST_TEST(tracker.statistics()["duration_seconds"].get<double>() == frozen);
}

BOOST_AUTO_TEST_CASE(start_resets_counters_and_set_totals_changes_totals) {
  ProgressTracker tracker(Phase::transform);
  tracker.start(5, 5);
  tracker.update(5, 5);
  tracker.finish();
  tracker.start(10, 100);
  BOOST_TEST(tracker.processed_conversations() == 0u);
  BOOST_TEST(tracker.processed_messages() == 0u);
  BOOST_TEST(tracker.end_time_us() == 0);
  BOOST_TEST(tracker.statistics()["end_time"].is_null());
  tracker.set_totals(20, 400);
  tracker.update(5, 100);
  const auto stats = tracker.statistics();
  BOOST_TEST(stats["total_conversations"] == 20);
  BOOST_TEST(stats["total_messages"] == 400);
  BOOST_TEST(stats["conversation_percent"].get<double>() == 25.0);
  BOOST_TEST(stats["message_percent"].get<double>() == 25.0);
}

BOOST_AUTO_TEST_CASE(concurrent_updates_are_counted_exactly) {
  ProgressTracker tracker(Phase::extract);
  tracker.start();
  constexpr int threads = 8;
  constexpr int per_thread = 50000;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    std::uint64_t last = 0;
    while (!done.load()) {
      const auto now = tracker.statistics()["processed_messages"].get<std::uint64_t>();
      BOOST_REQUIRE(now >= last);  // counters never go backwards
      last = now;
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) tracker.update(1, 2);
    });
  }
  for (auto& writer : writers) writer.join();
  done = true;
  reader.join();
  BOOST_TEST(tracker.processed_conversations() == std::uint64_t(threads) * per_thread);
  BOOST_TEST(tracker.processed_messages() == std::uint64_t(threads) * per_thread * 2);
}

BOOST_AUTO_TEST_SUITE_END()
