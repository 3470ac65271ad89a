#define BOOST_TEST_MODULE context_tests
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "skype_etl/context.hpp"
#include "skype_etl/errors.hpp"

using nlohmann::json;
using skype_etl::ETLContext;
using skype_etl::Phase;

namespace {

// Runs `action`, requires std::invalid_argument with exactly `message`.
void require_invalid(const std::function<void()>& action, const std::string& message) {
  try {
    action();
  } catch (const std::invalid_argument& error) {
    BOOST_TEST(std::string(error.what()) == message);
    return;
  }
  BOOST_ERROR("expected std::invalid_argument: " + message);
}

bool is_iso_utc_us(const json& value) {
  if (!value.is_string()) return false;
  const std::string s = value.get<std::string>();
  const std::string shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (s.size() != shape.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) return false;
  }
  return true;
}

void* volatile g_escape = nullptr;

class LocalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

const char* const k_tracker_keys[] = {"phase",
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

BOOST_AUTO_TEST_SUITE(context_tests)

// ---- configuration and names ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(constructor_keeps_configuration) {
  // The defaults are Options' (the command's): one default for each knob.
  ETLContext defaults;
  BOOST_TEST(defaults.db_config().conninfo.empty());
  BOOST_TEST(defaults.batch_size() == 1000u);
  BOOST_TEST(defaults.batch_size() == skype_etl::Options{}.batch_size);
  BOOST_TEST(!defaults.memory_limit_mb().has_value());
  BOOST_TEST(defaults.parallel_processing() == skype_etl::Options{}.parallel_processing);
  BOOST_TEST(!defaults.output_dir().has_value());
  skype_etl::Options options;
  options.db.conninfo = "dbname=y";
  options.batch_size = 7;
  options.memory_limit_mb = 64;
  options.parallel_processing = false;
  options.output_dir = "/tmp/media";
  ETLContext from_options(options);
  BOOST_TEST(from_options.db_config().conninfo == "dbname=y");
  BOOST_TEST(from_options.batch_size() == 7u);
  BOOST_TEST(from_options.memory_limit_mb().value_or(0) == 64u);
  BOOST_TEST(!from_options.parallel_processing());
  BOOST_TEST(from_options.output_dir().value_or("") == "/tmp/media");

  ETLContext custom(skype_etl::DbConfig{"dbname=x"}, 250, 512, true, "/tmp/out");
  BOOST_TEST(custom.db_config().conninfo == "dbname=x");
  BOOST_TEST(custom.batch_size() == 250u);
  BOOST_TEST(custom.memory_limit_mb().value_or(0) == 512u);
  BOOST_TEST(custom.memory_monitor().limit_mb().value_or(0) == 512u);
  BOOST_TEST(custom.parallel_processing());
  BOOST_TEST(custom.output_dir()->string() == "/tmp/out");
}

BOOST_AUTO_TEST_CASE(phase_names_round_trip) {
  for (Phase phase : skype_etl::all_phases) {
    BOOST_TEST((skype_etl::parse_phase(skype_etl::phase_name(phase)) == phase));
  }
  BOOST_TEST(skype_etl::phase_name(Phase::extract) == "extract");
  BOOST_TEST(skype_etl::phase_name(Phase::transform) == "transform");
  BOOST_TEST(skype_etl::phase_name(Phase::load) == "load");
  require_invalid([] { skype_etl::parse_phase("foo"); },
                  "Invalid phase name: foo. Valid phases are: extract, transform, load");
}

BOOST_AUTO_TEST_CASE(progress_tracker_accessor_returns_each_phase_tracker) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, true);
  context.start_phase("transform");
  context.update_progress("transform", 2, 5);
  const ETLContext& view = context;
  BOOST_TEST(view.progress_tracker(Phase::transform).processed_messages() == 5u);
  BOOST_TEST(context.progress_tracker(Phase::transform).statistics()["phase"] == "transform");
  BOOST_TEST(context.progress_tracker(Phase::extract).processed_messages() == 0u);
}

BOOST_AUTO_TEST_CASE(initial_state_is_pending_everywhere) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  for (const char* phase : {"extract", "transform", "load"}) {
    BOOST_TEST(context.get_phase_status(phase) == "pending");
  }
  BOOST_TEST(!context.current_phase().has_value());
  const json stats = context.statistics();
  BOOST_TEST(stats["phases"] == json::object());
  BOOST_TEST(stats["errors"] == json::array());
  BOOST_TEST(stats["total"]["conversations_processed"] == 0);
  BOOST_TEST(stats["total"]["messages_processed"] == 0);
  // The run's clock starts with the context (as the seed documents).
  BOOST_TEST(is_iso_utc_us(stats["total"]["start_time"]), stats["total"]["start_time"].dump());
  BOOST_TEST(stats["total"]["end_time"].is_null());
  BOOST_TEST(stats.contains("memory"));
}

BOOST_AUTO_TEST_CASE(invalid_phase_names_are_rejected_everywhere) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, true);
  const std::string message = "Invalid phase name: foo. Valid phases are: extract, transform, load";
  require_invalid([&] { context.start_phase("foo"); }, message);
  require_invalid([&] { context.get_phase_status("foo"); }, message);
  require_invalid([&] { context.set_phase_status("foo", "failed"); }, message);
  require_invalid([&] { context.record_error("foo", std::runtime_error("x")); }, message);
  require_invalid([&] { context.end_phase("foo", json::object()); }, message);
  require_invalid([&] { context.update_progress("foo", 1, 1); }, message);
  require_invalid([&] { context.set_totals("foo", 1, 1); }, message);
  require_invalid([&] { context.start_phase("Extract"); },
                  "Invalid phase name: Extract. Valid phases are: extract, transform, load");
  BOOST_TEST(!context.current_phase().has_value());
}

BOOST_AUTO_TEST_CASE(statuses_are_validated_and_stored) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  require_invalid([&] { context.set_phase_status("load", "bogus"); },
                  "Invalid status: bogus. Valid statuses are: pending, running, completed, failed");
  BOOST_TEST(context.get_phase_status("load") == "pending");
  for (const char* status : {"running", "completed", "failed", "pending"}) {
    context.set_phase_status("load", status);
    BOOST_TEST(context.get_phase_status("load") == status);
  }
  // Setting a status does not start the phase.
  context.set_phase_status("extract", "running");
  BOOST_TEST(!context.current_phase().has_value());
}

// ---- sequential mode (the seed's rules) -------------------------------------------------

BOOST_AUTO_TEST_CASE(sequential_mode_allows_one_phase_at_a_time) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("extract");
  BOOST_TEST(context.get_phase_status("extract") == "running");
  BOOST_TEST(context.current_phase().value_or("none") == "extract");
  require_invalid([&] { context.start_phase("transform"); },
                  "Cannot start phase 'transform': Phase 'extract' is already in progress");
  require_invalid([&] { context.start_phase("extract"); },
                  "Cannot start phase 'extract': Phase 'extract' is already in progress");
  BOOST_TEST(context.get_phase_status("transform") == "pending");
  context.end_phase();
  BOOST_TEST(context.get_phase_status("extract") == "completed");
  BOOST_TEST(!context.current_phase().has_value());
  context.start_phase("transform");
  BOOST_TEST(context.current_phase().value_or("none") == "transform");
  context.end_phase();
  context.start_phase("load");
  context.end_phase();
  for (const char* phase : {"extract", "transform", "load"}) {
    BOOST_TEST(context.get_phase_status(phase) == "completed");
  }
}

BOOST_AUTO_TEST_CASE(end_and_update_without_a_running_phase_throw) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  require_invalid([&] { context.end_phase(); },
                  "Cannot end phase: No phase is currently in progress");
  require_invalid([&] { context.update_progress(1, 1); },
                  "Cannot update progress: No phase is currently in progress");
  context.start_phase("extract");
  context.end_phase();
  require_invalid([&] { context.end_phase(json::object()); },
                  "Cannot end phase: No phase is currently in progress");
  require_invalid([&] { context.update_progress(); },
                  "Cannot update progress: No phase is currently in progress");
}

BOOST_AUTO_TEST_CASE(named_forms_require_that_phase_to_be_in_progress) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("extract");
  require_invalid([&] { context.update_progress("load", 1, 1); },
                  "Cannot update progress: Phase 'load' is not in progress");
  require_invalid([&] { context.end_phase("load", {}); },
                  "Cannot end phase 'load': Phase 'load' is not in progress");
  context.update_progress("extract", 2, 3);
  const json stats = context.end_phase("extract", {});
  BOOST_TEST(stats["processed_messages"] == 3);
}

BOOST_AUTO_TEST_CASE(non_object_results_are_rejected_and_the_phase_keeps_running) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("transform");
  for (const json& bad : {json::array({1, 2}), json(42), json("completed"), json(true)}) {
    require_invalid([&] { context.end_phase(bad); }, "Result must be a JSON object or null");
  }
  BOOST_TEST(context.get_phase_status("transform") == "running");
  BOOST_TEST(context.current_phase().value_or("none") == "transform");
  // null and an absent result are fine.
  const json stats = context.end_phase(json(nullptr));
  BOOST_TEST(stats["status"] == "completed");
}

BOOST_AUTO_TEST_CASE(end_phase_returns_tracker_statistics_merged_with_the_result) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("extract", 10, 100);
  context.update_progress(3, 30);
  context.update_progress(1, 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const json result = {
      {"file_path", "/x/messages.json"}, {"processed_messages", 999}, {"nested", {{"a", 1}}}};
  const json stats = context.end_phase(result);

  for (const char* key : k_tracker_keys) BOOST_TEST(stats.contains(key), key);
  BOOST_TEST(stats["phase"] == "extract");
  BOOST_TEST(stats["status"] == "completed");
  BOOST_TEST(stats["total_conversations"] == 10);
  BOOST_TEST(stats["processed_conversations"] == 4);
  BOOST_TEST(stats["total_messages"] == 100);
  BOOST_TEST(stats["conversations_processed"] == 4);
  BOOST_TEST(stats["messages_processed"] == 40);
  BOOST_TEST(stats["conversation_percent"].get<double>() == 40.0);
  BOOST_TEST(stats["message_percent"].get<double>() == 40.0);
  BOOST_TEST(stats["duration_seconds"].get<double>() >= 0.004);
  BOOST_TEST(
      stats["messages_per_second"].get<double>() == 40.0 / stats["duration_seconds"].get<double>(),
      boost::test_tools::tolerance(1e-9));
  BOOST_TEST(is_iso_utc_us(stats["start_time"]), stats["start_time"].dump());
  BOOST_TEST(is_iso_utc_us(stats["end_time"]), stats["end_time"].dump());
  // The caller's keys win.
  BOOST_TEST(stats["file_path"] == "/x/messages.json");
  BOOST_TEST(stats["processed_messages"] == 999);
  BOOST_TEST(stats["nested"]["a"] == 1);

  const json all = context.statistics();
  BOOST_TEST(all["phases"]["extract"] == stats);
  // Totals count the tracker's figures, not the caller's override.
  BOOST_TEST(all["total"]["conversations_processed"] == 4);
  BOOST_TEST(all["total"]["messages_processed"] == 40);
  // From the context's creation to the phase's end.
  BOOST_TEST(all["total"]["start_time"].get<std::string>() <=
             stats["start_time"].get<std::string>());
  BOOST_TEST(all["total"]["end_time"] == stats["end_time"]);
}

BOOST_AUTO_TEST_CASE(totals_span_the_run_and_count_the_most_downstream_phase) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  context.start_phase("extract");
  context.update_progress(2, 20);
  const json extract = context.end_phase();
  BOOST_TEST(context.statistics()["total"]["messages_processed"] == 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  context.start_phase("transform", 2, 20);
  context.update_progress(2, 19);
  const json transform = context.end_phase();
  const json total = context.statistics()["total"];
  // Each phase counts the same messages: the total is what got through the last one, not
  // the sum (which would count every message once per phase).
  BOOST_TEST(total["conversations_processed"] == 2);
  BOOST_TEST(total["messages_processed"] == 19);
  // The clock started with the context, before the first phase.
  BOOST_TEST(total["start_time"].get<std::string>() < extract["start_time"].get<std::string>());
  BOOST_TEST(total["end_time"] == transform["end_time"]);
  BOOST_TEST(is_iso_utc_us(total["start_time"]));
  const double duration = total["duration_seconds"].get<double>();
  BOOST_TEST(duration >= extract["duration_seconds"].get<double>() +
                             transform["duration_seconds"].get<double>() + 0.014);
  BOOST_TEST(context.statistics()["phases"].size() == 2u);
}

BOOST_AUTO_TEST_CASE(statistics_show_running_phases_live) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("load", 4, 8);
  context.update_progress(1, 2);
  const json stats = context.statistics();
  const json& load = stats["phases"]["load"];
  BOOST_TEST(load["status"] == "running");
  BOOST_TEST(load["processed_conversations"] == 1);
  BOOST_TEST(load["messages_processed"] == 2);
  BOOST_TEST(load["message_percent"].get<double>() == 25.0);
  BOOST_TEST(load["end_time"].is_null());
  BOOST_TEST(is_iso_utc_us(load["start_time"]));
  BOOST_TEST(stats["total"]["messages_processed"] == 0);  // not ended yet
  context.end_phase();
  BOOST_TEST(context.statistics()["phases"]["load"]["status"] == "completed");
}

// ---- errors and failure ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(record_error_appends_an_entry_and_marks_the_phase_failed) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("extract");
  const skype_etl::InputError error("x.tar", "not a tar archive", 512);
  const json entry = context.record_error("extract", error);
  // No "traceback": the recording thread's stack (bare addresses, far from the throw site)
  // told nothing.
  BOOST_TEST(entry.size() == 4u);
  BOOST_TEST(entry["error_type"] == "skype_etl::InputError");
  BOOST_TEST(entry["error_message"] == std::string(error.what()));
  BOOST_TEST(entry["phase"] == "extract");
  BOOST_TEST(is_iso_utc_us(entry["timestamp"]), entry["timestamp"].dump());
  BOOST_TEST(context.get_phase_status("extract") == "failed");
  // Still the current phase until ended, as in the seed; updates are still accepted.
  BOOST_TEST(context.current_phase().value_or("none") == "extract");
  context.update_progress(1, 1);

  const json errors = context.statistics()["errors"];
  BOOST_TEST(errors.size() == 1u);
  BOOST_TEST(errors[0] == entry);

  // end_phase on a failed phase records it failed, whatever the result says.
  const json stats = context.end_phase(json{{"note", "gave up"}});
  BOOST_TEST(stats["status"] == "failed");
  BOOST_TEST(stats["note"] == "gave up");
  BOOST_TEST(context.get_phase_status("extract") == "failed");
  BOOST_TEST(context.statistics()["phases"]["extract"]["status"] == "failed");
  BOOST_TEST(!context.current_phase().has_value());
}

BOOST_AUTO_TEST_CASE(error_type_is_the_dynamic_type_name) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  const std::runtime_error runtime("boom");
  BOOST_TEST(context.record_error("load", runtime)["error_type"] == "std::runtime_error");
  const skype_etl::DatabaseError database("connection lost", "08006");
  const std::exception& as_base = database;
  BOOST_TEST(context.record_error("load", as_base)["error_type"] == "skype_etl::DatabaseError");
  const std::string local = context.record_error("transform", LocalError("x"))["error_type"];
  BOOST_TEST(local.find("LocalError") != std::string::npos, local);
  BOOST_TEST(context.statistics()["errors"].size() == 3u);
  BOOST_TEST(context.get_phase_status("transform") == "failed");
  BOOST_TEST(context.get_phase_status("extract") == "pending");
}

BOOST_AUTO_TEST_CASE(set_phase_status_failed_makes_end_phase_record_failed) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("transform");
  context.set_phase_status("transform", "failed");
  BOOST_TEST(context.current_phase().value_or("none") == "transform");
  BOOST_TEST(context.end_phase()["status"] == "failed");
  BOOST_TEST(context.get_phase_status("transform") == "failed");
}

BOOST_AUTO_TEST_CASE(status_key_always_matches_the_recorded_status) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("extract");
  context.record_error("extract", std::runtime_error("x"));
  const json stats = context.end_phase(json{{"status", "completed"}, {"other", 1}});
  BOOST_TEST(stats["status"] == "failed");
  BOOST_TEST(stats["other"] == 1);
  BOOST_TEST(context.get_phase_status("extract") == "failed");
  BOOST_TEST(context.statistics()["phases"]["extract"]["status"] == "failed");
  context.start_phase("transform");
  BOOST_TEST(context.end_phase(json{{"status", "pending"}})["status"] == "completed");
}

BOOST_AUTO_TEST_CASE(result_status_failed_ends_the_phase_failed) {
  // The seed's idiom: record_error(...) then end_phase({"status": "failed"}).
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("load");
  const json stats = context.end_phase(json{{"status", "failed"}});
  BOOST_TEST(stats["status"] == "failed");
  BOOST_TEST(context.get_phase_status("load") == "failed");
}

BOOST_AUTO_TEST_CASE(a_phase_can_be_restarted_after_it_ended) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("extract", 1, 1);
  context.update_progress(1, 1);
  context.record_error("extract", std::runtime_error("first try"));
  context.end_phase();
  context.start_phase("extract", 5, 5);
  BOOST_TEST(context.get_phase_status("extract") == "running");
  BOOST_TEST(context.statistics()["phases"]["extract"]["processed_messages"] == 0);
  context.update_progress(5, 5);
  BOOST_TEST(context.end_phase()["status"] == "completed");
  // The second pass replaced the first.
  BOOST_TEST(context.statistics()["total"]["messages_processed"] == 5);
}

// ---- parallel mode -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(parallel_mode_runs_phases_at_the_same_time) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, true);
  context.start_phase("transform");
  BOOST_TEST(context.current_phase().value_or("none") == "transform");
  context.start_phase("extract");
  context.start_phase("load");
  // The most upstream running phase.
  BOOST_TEST(context.current_phase().value_or("none") == "extract");
  require_invalid([&] { context.start_phase("extract"); },
                  "Cannot start phase 'extract': Phase 'extract' is already in progress");
  require_invalid([&] { context.start_phase("load"); },
                  "Cannot start phase 'load': Phase 'load' is already in progress");
  require_invalid([&] { context.end_phase(); },
                  "Cannot end phase: more than one phase is in progress (extract, transform, "
                  "load); name the phase");
  require_invalid([&] { context.update_progress(1, 1); },
                  "Cannot update progress: more than one phase is in progress (extract, "
                  "transform, load); name the phase");

  context.update_progress("extract", 1, 10);
  context.update_progress("transform", 2, 20);
  context.update_progress("load", 3, 30);
  context.set_totals("load", 6, 60);

  const json live = context.statistics()["phases"];
  BOOST_TEST(live.size() == 3u);
  BOOST_TEST(live["transform"]["status"] == "running");
  BOOST_TEST(live["load"]["message_percent"].get<double>() == 50.0);

  BOOST_TEST(context.end_phase("extract", {})["processed_messages"] == 10);
  require_invalid([&] { context.end_phase(); },
                  "Cannot end phase: more than one phase is in progress (transform, load); "
                  "name the phase");
  BOOST_TEST(context.current_phase().value_or("none") == "transform");
  BOOST_TEST(context.end_phase("transform", json{{"k", 1}})["processed_messages"] == 20);
  // One phase left: the phase-less forms work again.
  context.update_progress(1, 1);
  const json load = context.end_phase();
  BOOST_TEST(load["phase"] == "load");
  BOOST_TEST(load["processed_messages"] == 31);
  BOOST_TEST(load["total_messages"] == 60);
  BOOST_TEST(context.statistics()["total"]["messages_processed"] == 31);
  BOOST_TEST(!context.current_phase().has_value());
}

BOOST_AUTO_TEST_CASE(downstream_cannot_complete_while_upstream_runs_or_failed) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, true);
  context.start_phase("extract");
  context.start_phase("transform");
  context.start_phase("load");
  require_invalid([&] { context.end_phase("load", {}); },
                  "Cannot complete phase 'load': upstream phase 'transform' is running");
  require_invalid([&] { context.end_phase("transform", {}); },
                  "Cannot complete phase 'transform': upstream phase 'extract' is running");
  BOOST_TEST(context.get_phase_status("load") == "running");  // nothing changed

  context.record_error("extract", std::runtime_error("bad input"));
  require_invalid([&] { context.end_phase("transform", {}); },
                  "Cannot complete phase 'transform': upstream phase 'extract' has failed");
  BOOST_TEST(context.end_phase("extract", {})["status"] == "failed");
  require_invalid([&] { context.end_phase("transform", json::object()); },
                  "Cannot complete phase 'transform': upstream phase 'extract' has failed");

  // A downstream phase that is itself failed ends failed without throwing.
  context.record_error("transform", std::runtime_error("cancelled"));
  BOOST_TEST(context.end_phase("transform", {})["status"] == "failed");
  context.set_phase_status("load", "failed");
  BOOST_TEST(context.end_phase("load", {})["status"] == "failed");
  BOOST_TEST(context.statistics()["errors"].size() == 2u);
}

BOOST_AUTO_TEST_CASE(downstream_completes_after_upstream_completed) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, true);
  context.start_phase("extract");
  context.start_phase("load");
  // transform never started (pending) and extract still running: load waits for extract.
  require_invalid([&] { context.end_phase("load", {}); },
                  "Cannot complete phase 'load': upstream phase 'extract' is running");
  context.end_phase("extract", {});
  BOOST_TEST(context.end_phase("load", {})["status"] == "completed");
}

BOOST_AUTO_TEST_CASE(sequential_mode_has_no_upstream_rule) {
  // The seed lets a later phase run after an earlier one failed (sequential mode).
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("extract");
  context.record_error("extract", std::runtime_error("x"));
  context.end_phase();
  context.start_phase("transform");
  BOOST_TEST(context.end_phase()["status"] == "completed");
}

// ---- add_statistics and resources -------------------------------------------------------

BOOST_AUTO_TEST_CASE(add_statistics_merges_objects_adds_numbers_replaces_the_rest) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.add_statistics("load", json{{"rows", 10},
                                      {"seconds", 1.5},
                                      {"tables", {{"messages", 7}, {"conversations", 1}}},
                                      {"mode", "copy"},
                                      {"list", {1, 2}}});
  context.add_statistics("load", json{{"rows", 5},
                                      {"seconds", 0.25},
                                      {"tables", {{"messages", 3}, {"exports", 1}}},
                                      {"mode", "insert"},
                                      {"list", {3}},
                                      {"new", true}});
  const json load = context.statistics()["load"];
  BOOST_TEST(load["rows"] == 15);
  BOOST_TEST(load["seconds"].get<double>() == 1.75);
  BOOST_TEST(load["tables"]["messages"] == 10);
  BOOST_TEST(load["tables"]["conversations"] == 1);
  BOOST_TEST(load["tables"]["exports"] == 1);
  BOOST_TEST(load["mode"] == "insert");
  BOOST_TEST(load["list"] == json({3}));
  BOOST_TEST(load["new"] == true);
  context.add_statistics("count", json(2));
  context.add_statistics("count", json(-5));
  BOOST_TEST(context.statistics()["count"] == -3);
  // The standard keys are still there.
  BOOST_TEST(context.statistics().contains("phases"));
  BOOST_TEST(context.statistics().contains("memory"));
}

BOOST_AUTO_TEST_CASE(statistics_include_memory) {
  ETLContext context(skype_etl::DbConfig{}, 100, 100000);
  context.memory_monitor().sample();
  const json memory = context.statistics()["memory"];
  BOOST_TEST(memory["limit_mb"] == 100000);
  BOOST_TEST(memory["current_mb"].get<double>() > 0.0);
  BOOST_TEST(memory["peak_mb"].get<double>() >= memory["current_mb"].get<double>());
}

BOOST_AUTO_TEST_CASE(update_progress_checks_the_memory_limit) {
  std::vector<char> touched(8 * 1024 * 1024, 'x');  // RssAnon is now above 1 MB
  g_escape = touched.data();  // keeps the compiler from eliding the allocation
  ETLContext context(skype_etl::DbConfig{}, 100, 1);
  context.start_phase("extract");
  BOOST_CHECK_THROW(context.update_progress(1, 1), skype_etl::MemoryLimitExceeded);
  // The progress was counted before the check.
  BOOST_TEST(context.progress_tracker(Phase::extract).processed_messages() == 1u);
}

BOOST_AUTO_TEST_CASE(resources_are_shared_handles_stored_by_key) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  BOOST_TEST(!context.has_resource("missing"));
  BOOST_TEST(context.get_resource<int>("missing") == nullptr);
  // The seed's get_resource(key, default).
  auto fallback = std::make_shared<int>(9);
  BOOST_TEST(context.get_resource<int>("missing", fallback) == fallback);

  context.set_resource("batch", 42);
  context.set_resource("name", std::string("alice"));
  BOOST_TEST(*context.get_resource<int>("batch") == 42);
  BOOST_TEST(*context.get_resource<std::string>("name") == "alice");
  context.set_resource("batch", 7.5);
  BOOST_TEST(*context.get_resource<double>("batch") == 7.5);

  // One component stores an object; another gets that very object, not a copy, and sees
  // what the first changes in it.
  struct Counter {
    std::atomic<int> hits{0};
  };
  auto counter = std::make_shared<Counter>();
  context.set_resource("counter", counter);
  auto seen_by_other = context.get_resource<Counter>("counter");
  BOOST_TEST(seen_by_other.get() == counter.get());
  counter->hits += 3;
  BOOST_TEST(context.get_resource<Counter>("counter")->hits.load() == 3);
  seen_by_other->hits += 1;
  BOOST_TEST(counter->hits.load() == 4);
  // Values stored by value are shared objects too.
  *context.get_resource<std::string>("name") += " liddell";
  BOOST_TEST(*context.get_resource<std::string>("name") == "alice liddell");

  require_invalid([&] { context.get_resource<int>("name"); },
                  "Resource 'name' holds a std::__cxx11::basic_string<char, "
                  "std::char_traits<char>, std::allocator<char> >, not a int");
  BOOST_TEST(context.remove_resource("counter"));
  BOOST_TEST(!context.remove_resource("counter"));
  BOOST_TEST(context.get_resource<Counter>("counter") == nullptr);
  BOOST_TEST(counter->hits.load() == 4);  // holders keep it
}

BOOST_AUTO_TEST_CASE(memory_limit_zero_means_no_limit) {
  std::vector<char> touched(8 * 1024 * 1024, 'x');  // RssAnon is now above 1 MB
  g_escape = touched.data();
  ETLContext context(skype_etl::DbConfig{}, 100, 0);
  BOOST_TEST(!context.memory_limit_mb().has_value());
  BOOST_TEST(context.statistics()["memory"]["limit_mb"].is_null());
  context.start_phase("extract");
  context.update_progress(1, 1);  // no MemoryLimitExceeded
  BOOST_TEST(context.progress_tracker(Phase::extract).processed_messages() == 1u);
  BOOST_TEST(!skype_etl::MemoryMonitor(0).limit_mb().has_value());
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_stored_as_replacement_characters) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("extract");
  const std::string bad_path = "/exports/\xFF\xFEname.tar";
  context.add_statistics("extract", json{{"file", bad_path}});
  context.add_statistics(std::string("key\xC3"), json(1));
  context.record_error("extract", std::runtime_error("cannot open " + bad_path));
  const json stats = context.end_phase(json{{"file_path", bad_path}, {bad_path, 1}});
  BOOST_TEST(stats["file_path"] == "/exports/\xEF\xBF\xBD\xEF\xBF\xBDname.tar");
  // Every later dump works.
  std::string dumped;
  BOOST_CHECK_NO_THROW(dumped = context.statistics().dump());
  BOOST_TEST(dumped.find("\xEF\xBF\xBDname.tar") != std::string::npos);
  BOOST_TEST(context.statistics()["errors"][0]["error_message"] ==
             "cannot open /exports/\xEF\xBF\xBD\xEF\xBF\xBDname.tar");
}

BOOST_AUTO_TEST_CASE(record_error_takes_an_exception_ptr_from_another_thread) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  std::exception_ptr caught;
  std::thread worker([&] {
    try {
      try {
        throw skype_etl::DatabaseError("COPY failed", "53100");
      } catch (...) {
        std::throw_with_nested(std::runtime_error("loading export 'x.tar'"));
      }
    } catch (...) {
      caught = std::current_exception();
    }
  });
  worker.join();
  const json entry = context.record_error("load", caught);
  BOOST_TEST(entry["phase"] == "load");
  BOOST_TEST(entry["error_message"] == "loading export 'x.tar': COPY failed");
  BOOST_TEST(entry["error_type"].get<std::string>().find("runtime_error") != std::string::npos);
  BOOST_TEST(context.get_phase_status("load") == "failed");

  std::exception_ptr odd;
  try {
    throw 42;
  } catch (...) {
    odd = std::current_exception();
  }
  BOOST_TEST(context.record_error("transform", odd)["error_type"] == "unknown");
  BOOST_CHECK_THROW(context.record_error("load", std::exception_ptr()), std::invalid_argument);
  BOOST_TEST(context.statistics()["errors"].size() == 2u);
}

BOOST_AUTO_TEST_CASE(starting_a_phase_again_forgets_the_earlier_pass) {
  // A context reused for a second run: the phases restarted replace the first run's.
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("extract");
  context.update_progress(1, 10);
  context.end_phase();
  context.start_phase("transform");
  context.update_progress(1, 10);
  context.end_phase();
  context.start_phase("extract");
  BOOST_TEST(!context.statistics()["phases"].contains("transform"));
  context.update_progress(1, 4);
  context.end_phase();
  BOOST_TEST(context.statistics()["total"]["messages_processed"] == 4);
}

BOOST_AUTO_TEST_CASE(failed_connection_reports_why_without_the_password) {
  const std::string secret = "Hunter2-Secret";
  const std::vector<std::string> conninfos = {
      "host=/nonexistent-skype-etl-dir port=5 user=nobody password=" + secret + " dbname=x",
      "host=/nonexistent-skype-etl-dir password = '" + secret + " with \\' quote' dbname=x",
      "postgresql://nobody:" + secret + "@/x?host=/nonexistent-skype-etl-dir",
      "postgresql:///x?host=/nonexistent-skype-etl-dir&password=" + secret + "&user=nobody",
      "PASSWORD=" + secret + " host=/nonexistent-skype-etl-dir"};
  for (const std::string& conninfo : conninfos) {
    ETLContext context(skype_etl::DbConfig{conninfo});
    try {
      context.get_db_connection();
      BOOST_ERROR("connected to " + conninfo);
    } catch (const skype_etl::DatabaseError& error) {
      const std::string message = error.what();
      BOOST_TEST(message.find("could not connect") != std::string::npos, message);
      BOOST_TEST(message.find("/nonexistent-skype-etl-dir") != std::string::npos, message);
      BOOST_TEST(message.find(secret) == std::string::npos, message);
      BOOST_TEST(message.find("Hunter2") == std::string::npos, message);
      BOOST_TEST(message.find("quote") == std::string::npos, message);
      BOOST_TEST((skype_etl::exit_code_for(error) == skype_etl::ExitCode::database));
    }
  }
}

BOOST_AUTO_TEST_CASE(failed_connection_says_why) {
  ETLContext context(skype_etl::DbConfig{"host=/nonexistent-skype-etl-dir dbname=x"});
  try {
    context.get_db_connection();
    BOOST_ERROR("connected");
  } catch (const skype_etl::DatabaseError& error) {
    const std::string message = error.what();
    BOOST_TEST(message.find("could not connect to PostgreSQL ('host=/nonexistent-skype-etl-dir "
                            "dbname=x'): ") == 0,
               message);
    BOOST_TEST(message.find("No such file or directory") != std::string::npos, message);
  }
  // A failed connect leaves nothing behind; the next call tries again.
  BOOST_CHECK_THROW(context.get_db_connection(), skype_etl::DatabaseError);
  BOOST_CHECK_NO_THROW(context.close_db_connection());
}

// ---- threads -----------------------------------------------------------------------------

namespace {

constexpr int k_threads = 8;
constexpr std::uint64_t k_updates = 100000;

// Reads statistics() in a loop until `done`, checking that counters never go backwards.
void read_statistics_until(const ETLContext& context, const std::atomic<bool>& done,
                           const std::vector<std::string>& phases, std::atomic<int>& reads) {
  std::vector<std::uint64_t> last(phases.size(), 0);
  do {  // at least once, however fast the writers are
    const json stats = context.statistics();
    for (std::size_t i = 0; i < phases.size(); ++i) {
      const json& phase = stats.at("phases").at(phases[i]);
      if (phase.at("status") != "running") BOOST_ERROR("phase not running: " + phases[i]);
      const auto now = phase.at("processed_messages").get<std::uint64_t>();
      if (now < last[i]) BOOST_ERROR("processed_messages went backwards");
      last[i] = now;
    }
    ++reads;
  } while (!done.load());
}

}  // namespace

BOOST_AUTO_TEST_CASE(threads_hammer_phase_less_update_progress) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, false);  // sequential
  context.start_phase("transform", k_threads * k_updates, 2 * k_threads * k_updates);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] { read_statistics_until(context, done, {"transform"}, reads); });
  std::vector<std::thread> writers;
  for (int t = 0; t < k_threads; ++t) {
    writers.emplace_back([&] {
      for (std::uint64_t i = 0; i < k_updates; ++i) context.update_progress(1, 2);
    });
  }
  for (auto& writer : writers) writer.join();
  done = true;
  reader.join();
  BOOST_TEST(reads.load() > 0);
  const json stats = context.end_phase();
  BOOST_TEST(stats["processed_conversations"] == k_threads * k_updates);
  BOOST_TEST(stats["processed_messages"] == 2 * k_threads * k_updates);
  BOOST_TEST(stats["conversation_percent"].get<double>() == 100.0);
  BOOST_TEST(context.statistics()["total"]["messages_processed"] == 2 * k_threads * k_updates);
}

BOOST_AUTO_TEST_CASE(threads_hammer_named_update_progress_in_parallel_mode) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, true);
  const std::vector<std::string> phases = {"extract", "transform", "load"};
  for (const auto& phase : phases) context.start_phase(phase);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] { read_statistics_until(context, done, phases, reads); });
  std::vector<std::thread> writers;
  for (int t = 0; t < k_threads; ++t) {
    writers.emplace_back([&, t] {
      const std::string& phase = phases[t % 3];
      for (std::uint64_t i = 0; i < k_updates; ++i) context.update_progress(phase, 1, 3);
    });
  }
  for (auto& writer : writers) writer.join();
  done = true;
  reader.join();
  BOOST_TEST(reads.load() > 0);
  // Threads 0,3,6 -> extract; 1,4,7 -> transform; 2,5 -> load.
  const std::uint64_t expected[] = {3 * k_updates, 3 * k_updates, 2 * k_updates};
  for (std::size_t i = 0; i < phases.size(); ++i) {
    const json stats = context.end_phase(phases[i], {});
    BOOST_TEST(stats["processed_conversations"] == expected[i]);
    BOOST_TEST(stats["processed_messages"] == 3 * expected[i]);
  }
  // The most downstream phase's count.
  BOOST_TEST(context.statistics()["total"]["conversations_processed"] == expected[2]);
}

BOOST_AUTO_TEST_CASE(threads_hammer_phase_less_form_in_parallel_mode_with_one_phase) {
  // The single running phase is found from the atomic statuses.
  ETLContext context(skype_etl::DbConfig{}, 100, {}, true);
  context.start_phase("load");
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] { read_statistics_until(context, done, {"load"}, reads); });
  std::vector<std::thread> writers;
  for (int t = 0; t < k_threads; ++t) {
    writers.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < k_updates; ++i) {
        if (t % 2 == 0) {
          context.update_progress(0, 1);
        } else {
          context.update_progress("load", 1, 1);
        }
      }
    });
  }
  for (auto& writer : writers) writer.join();
  done = true;
  reader.join();
  const json stats = context.end_phase();
  BOOST_TEST(stats["processed_conversations"] == (k_threads / 2) * k_updates);
  BOOST_TEST(stats["processed_messages"] == k_threads * k_updates);
}

BOOST_AUTO_TEST_CASE(overlapping_phase_lifecycles_on_threads) {
  // Each phase on its own thread, ending only after its upstream ended (as the graph does),
  // while another thread records statistics and resources.
  ETLContext context(skype_etl::DbConfig{}, 100, {}, true);
  const std::vector<std::string> phases = {"extract", "transform", "load"};
  std::atomic<bool> done{false};
  std::thread observer([&] {
    int i = 0;
    do {  // at least once, however fast the workers are
      (void)context.statistics();
      (void)context.current_phase();
      context.set_resource("tick", ++i);
      context.add_statistics("observer", json{{"reads", 1}});
    } while (!done.load());
  });
  std::vector<std::thread> workers;
  for (std::size_t p = 0; p < phases.size(); ++p) {
    workers.emplace_back([&, p] {
      context.start_phase(phases[p], 0, 0);
      for (int i = 0; i < 20000; ++i) context.update_progress(phases[p], 1, 1);
      if (p > 0) {
        while (context.get_phase_status(phases[p - 1]) != "completed") std::this_thread::yield();
      }
      context.end_phase(phases[p], json{{"worker", p}});
    });
  }
  for (auto& worker : workers) worker.join();
  done = true;
  observer.join();
  const json stats = context.statistics();
  for (const auto& phase : phases) {
    BOOST_TEST(stats["phases"][phase]["status"] == "completed");
    BOOST_TEST(stats["phases"][phase]["processed_messages"] == 20000);
  }
  BOOST_TEST(stats["total"]["messages_processed"] == 20000);  // load's: each message once
  BOOST_TEST(stats["observer"]["reads"].get<int>() == *context.get_resource<int>("tick"));
}

// ---- the contract under concurrency: nothing lost, nothing counted twice ----------------

namespace {

/// Writers hammer update_progress while a controller starts and ends phases over and over,
/// an error thread records errors, and readers take statistics. Every update that returned
/// normally must be counted in exactly one ended phase; every end_phase must return what
/// the phase's tracker holds from then on.
void hammer_phase_boundaries(bool parallel) {
  ETLContext context(skype_etl::DbConfig{}, 100, {}, parallel);
  const std::vector<std::string> phases = {"extract", "transform", "load"};
  constexpr int k_writers = 4;
  constexpr int k_rounds = 150;
  std::atomic<bool> stop{false};
  std::array<std::atomic<std::uint64_t>, 3> accepted{};  // per phase (parallel mode)
  std::atomic<std::uint64_t> accepted_total{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<int> unexpected{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < k_writers; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const std::size_t p = (t + i) % 3;
        try {
          if (parallel) {
            context.update_progress(phases[p], 1, 1);
            accepted[p].fetch_add(1);
          } else {
            context.update_progress(1, 1);
          }
          accepted_total.fetch_add(1);
        } catch (const std::invalid_argument&) {
          refused.fetch_add(1);  // no phase (or not that one) in progress: counted nowhere
        } catch (...) {
          unexpected.fetch_add(1);
        }
      }
    });
  }
  threads.emplace_back([&] {  // errors at any moment, in any phase
    for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      context.record_error(phases[i % 3], std::runtime_error("injected"));
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        const json stats = context.statistics();
        (void)stats.dump();
        (void)context.current_phase();
        (void)context.get_phase_status("load");
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
  }

  std::array<std::uint64_t, 3> ended{};
  int mismatches = 0;
  auto end = [&](std::size_t p) {
    json stats;
    try {
      stats = context.end_phase(phases[p], json::object());
    } catch (const std::invalid_argument&) {
      // An upstream phase failed (the error thread): end this one failed too.
      stats = context.end_phase(phases[p], json{{"status", "failed"}});
    }
    const auto messages = stats["processed_messages"].get<std::uint64_t>();
    ended[p] += messages;
    // Writers are still at it, but the phase is over: its figures do not move.
    if (context.progress_tracker(skype_etl::parse_phase(phases[p])).processed_messages() !=
            messages ||
        stats["messages_processed"].get<std::uint64_t>() != messages)
      ++mismatches;
  };
  for (int round = 0; round < k_rounds; ++round) {
    if (parallel) {
      for (const auto& phase : phases) context.start_phase(phase);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      for (std::size_t p = 0; p < 3; ++p) end(p);
    } else {
      const std::size_t p = round % 3;
      context.start_phase(phases[p]);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      end(p);
    }
  }
  stop = true;
  for (auto& thread : threads) thread.join();

  BOOST_TEST(unexpected.load() == 0);
  BOOST_TEST(mismatches == 0);
  BOOST_TEST(refused.load() > 0u);  // updates did race the ends
  BOOST_TEST(accepted_total.load() > 0u);
  if (parallel) {
    for (std::size_t p = 0; p < 3; ++p) BOOST_TEST(ended[p] == accepted[p].load(), phases[p]);
  } else {
    BOOST_TEST(ended[0] + ended[1] + ended[2] == accepted_total.load());
  }
  BOOST_TEST(!context.current_phase().has_value());
  BOOST_CHECK_NO_THROW((void)context.statistics().dump());
}

}  // namespace

BOOST_AUTO_TEST_CASE(updates_racing_phase_ends_are_counted_exactly_once_parallel) {
  hammer_phase_boundaries(true);
}

BOOST_AUTO_TEST_CASE(updates_racing_phase_ends_are_counted_exactly_once_sequential) {
  hammer_phase_boundaries(false);
}

// Issue 16: the context logs phase start, end, status changes and every recorded error to
// the logger it is given, and nothing without one.
BOOST_AUTO_TEST_CASE(logs_phases_status_changes_and_errors_to_its_logger) {
  skype_etl::ETLContext silent;
  BOOST_TEST(!silent.logger());
  silent.start_phase("extract");
  silent.end_phase();  // nowhere to log: nothing happens

  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
  logger->set_pattern("%l %v");
  logger->set_level(spdlog::level::info);
  skype_etl::ETLContext context;
  context.set_logger(logger);
  BOOST_TEST(context.logger() == logger);
  context.start_phase("extract", 2, 10);
  context.update_progress(2, 10);
  context.set_phase_status("extract", "completed");
  context.record_error("extract", std::runtime_error("disk on fire"));
  context.end_phase();
  const std::string text = out.str();
  for (const char* line : {"info phase extract started: 2 conversations, 10 messages expected\n",
                           "info phase extract status running -> completed\n",
                           "info phase extract failed: std::runtime_error: disk on fire\n",
                           "info phase extract failed: 2 conversations, 10 messages in "})
    BOOST_TEST(text.find(line) != std::string::npos, line << " in " << text);
  // Below the logger's level: nothing.
  out.str("");
  logger->set_level(spdlog::level::warn);
  context.start_phase("extract");
  context.end_phase();
  BOOST_TEST(out.str().empty(), out.str());
}

BOOST_AUTO_TEST_SUITE_END()
