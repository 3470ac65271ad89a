#define BOOST_TEST_MODULE pipeline_tests
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "generator/generator.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/graph.hpp"
#include "skype_etl/pipeline.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"
#include "support/test_database.hpp"

namespace se = skype_etl;
namespace st = skype_etl::test;

namespace {

const std::filesystem::path sample =
    std::filesystem::path(SKYPE_ETL_SOURCE_DIR) / "examples" / "sample_export" / "messages.json";

nlohmann::json run(st::TestDatabase& db, const std::vector<std::filesystem::path>& files,
                   bool parallel = true, std::size_t batch_size = 100,
                   se::PipelineOptions options = {}) {
  se::ETLContext context(se::DbConfig{db.conninfo()}, batch_size, std::nullopt, parallel);
  return se::run_etl_pipeline(files, options, context);
}

/// Rows in skype.<table>; 0 when the schema was never created.
long long count(st::TestDatabase& db, const std::string& table) {
  if (db.text("SELECT to_regclass('skype." + table + "')::text").empty()) return 0;
  return db.scalar("SELECT count(*) FROM skype." + table);
}

/// Everything a user would read back, as one digest, to compare two loads.
std::string content_digest(st::TestDatabase& db) {
  return db.text(
      "SELECT md5(string_agg(concat_ws('|', account_id, conversation_id, message_id, version, "
      "sent_at, sender_id, sender_name, message_type, content_raw, content_text, is_edited, "
      "edited_at, is_deleted, deleted_at, details::text), E'\\n' ORDER BY account_id, "
      "conversation_id, message_id)) FROM skype.messages");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pipeline_tests)

BOOST_AUTO_TEST_CASE(sample_export_loads_with_exact_counts_and_phase_statistics) {
  st::TestDatabase db;
  se::ETLContext context(se::DbConfig{db.conninfo()}, 3, std::nullopt, true);
  const auto result = se::run_etl_pipeline(sample, "Sample Owner", context);
  BOOST_TEST_INFO(result.dump(2));
  BOOST_TEST(result["success"].get<bool>());
  BOOST_TEST(result["export_id"].is_number());
  for (const char* phase : {"extract", "transform", "load"}) {
    BOOST_TEST_CONTEXT(phase) {
      const auto& stats = result["phases"][phase];
      BOOST_TEST(stats["status"] == "completed");
      BOOST_TEST(stats["messages_processed"] == 8);
      // Extract passes what it read on: every phase ends at 100%.
      BOOST_TEST(stats["total_messages"] == 8);
      BOOST_TEST(stats["message_percent"].get<double>() == 100.0);
      BOOST_TEST(stats["total_conversations"] == 3);
      BOOST_TEST(stats["conversation_percent"].get<double>() == 100.0);
    }
  }
  // Each message once, not once per phase.
  BOOST_TEST(result["statistics"]["total"]["messages_processed"] == 8);
  BOOST_TEST(result["statistics"]["total"]["conversations_processed"] == 3);
  // What skype.exports stores is the export's final state, the same as the run returns.
  const auto stored = nlohmann::json::parse(db.text("SELECT statistics FROM skype.exports"));
  BOOST_TEST(stored["status"] == "loaded");
  BOOST_TEST(stored["messages"] == result["exports"][0]["messages"]);
  BOOST_TEST(stored["messages"]["read"] == 8);
  BOOST_TEST(stored["messages"]["new"] == 8);
  for (const char* phase : {"extract", "transform", "load"}) {
    BOOST_TEST(stored["phases"][phase]["status"] == "completed", phase);
    BOOST_TEST(stored["phases"][phase]["end_time"].is_string(), phase);
    BOOST_TEST(stored["phases"][phase]["messages_processed"] == 8, phase);
  }
  BOOST_TEST(count(db, "exports") == 1);
  BOOST_TEST(count(db, "conversations") == 3);
  BOOST_TEST(count(db, "messages") == 8);
  BOOST_TEST(db.text("SELECT account_id FROM skype.accounts") == "live:.cid.sample0wner");
  // The owner's messages carry the display name given on the command line.
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE sender_name = 'Sample Owner'") ==
             3);
  BOOST_TEST(
      db.text("SELECT content_text FROM skype.messages WHERE message_id = '1714469980000'") ==
      "Bring the map & water \u2014 it's 20 km");
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations WHERE conversation_id = "
                       "'19:a1b2c3d4e5f6@thread.skype'") == 4);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE is_deleted") == 1);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.attachments") == 1);
}

BOOST_AUTO_TEST_CASE(several_files_in_one_run_and_reloading_changes_nothing) {
  st::TestDatabase db;
  st::TempDir dir;
  const std::string other = st::export_json(
      {st::numbered_conversation("19:x@thread.skype", 25), st::numbered_conversation("8:bob", 7)},
      "8:live:other");
  st::write_file(dir / "other.tar",
                 st::make_tar({{"endpoints.json", "{}"}, {"messages.json", other}}));

  auto first = run(db, {sample, dir / "other.tar"}, true, 10);
  BOOST_TEST_INFO(first.dump(2));
  BOOST_REQUIRE(first["success"].get<bool>());
  BOOST_TEST(first["exports"].size() == 2U);
  BOOST_TEST(count(db, "accounts") == 2);
  BOOST_TEST(count(db, "messages") == 8 + 32);
  const std::string digest = content_digest(db);

  auto again = run(db, {dir / "other.tar", sample}, true, 10);
  BOOST_REQUIRE(again["success"].get<bool>());
  for (const auto& e : again["exports"]) BOOST_TEST(e["status"] == "already loaded");
  BOOST_TEST(count(db, "exports") == 2);
  BOOST_TEST(count(db, "messages") == 40);
  BOOST_TEST(content_digest(db) == digest);
}

BOOST_AUTO_TEST_CASE(a_failure_mid_load_leaves_nothing_and_the_rerun_completes) {
  st::TestDatabase db;
  st::TempDir dir;
  st::write_file(dir / "m.json",
                 st::export_json({st::numbered_conversation("19:big@thread.skype", 95),
                                  st::numbered_conversation("8:b", 5)}));
  se::PipelineOptions options;
  options.fail_after_batches = 4;
  auto failed = run(db, {dir / "m.json"}, true, 10, options);
  BOOST_TEST(!failed["success"].get<bool>());
  BOOST_TEST(failed["error"].get<std::string>().find("test hook") != std::string::npos);
  BOOST_TEST(failed["statistics"]["errors"].size() == 1U);
  BOOST_TEST(failed["statistics"]["errors"][0]["phase"] == "load");
  BOOST_TEST(failed["phases"]["load"]["status"] == "failed");
  // The failed phase ended (as the seed's best practice says), and so did every phase the
  // failure cut short: nothing is left in progress.
  for (const char* phase : {"extract", "transform", "load"})
    BOOST_TEST(failed["phases"][phase]["end_time"].is_string(), phase);
  BOOST_TEST(count(db, "exports") == 0);
  BOOST_TEST(count(db, "messages") == 0);
  BOOST_TEST(count(db, "conversations") == 0);

  auto rerun = run(db, {dir / "m.json"}, true, 10);
  BOOST_REQUIRE(rerun["success"].get<bool>());
  BOOST_TEST(count(db, "messages") == 100);
  BOOST_TEST(count(db, "conversations") == 2);
}

BOOST_AUTO_TEST_CASE(bad_input_after_good_batches_reaches_nothing) {
  st::TestDatabase db;
  st::TempDir dir;
  // The bad message sits after several full batches have been read and loaded.
  const std::string json = st::export_json(
      {st::numbered_conversation("19:big@thread.skype", 60),
       st::conversation_json("8:b", {st::message_json("1", "ok"), "{\"id\":\"2\",}"})});
  st::write_file(dir / "m.json", json);
  auto result = run(db, {dir / "m.json"}, true, 5);
  BOOST_TEST(!result["success"].get<bool>());
  BOOST_TEST(result["exit_code"] == 3);
  BOOST_TEST(result["statistics"]["errors"][0]["phase"] == "extract");
  BOOST_TEST(result["statistics"]["errors"][0]["error_type"] == "skype_etl::InputError");
  BOOST_TEST(count(db, "messages") == 0);
  BOOST_TEST(count(db, "exports") == 0);
}

BOOST_AUTO_TEST_CASE(parallel_and_sequential_load_the_same_rows) {
  st::TestDatabase parallel_db;
  st::TestDatabase sequential_db;
  st::TempDir dir;
  se::gen::GeneratorOptions g;
  g.seed = 7;
  g.messages = 20000;
  g.format = se::gen::GeneratorOptions::Format::tar;
  const auto summary = se::gen::generate_export(g, dir / "gen.tar");

  auto p = run(parallel_db, {dir / "gen.tar"}, true, 500);
  BOOST_TEST_INFO(p.dump(2).substr(0, 2000));
  BOOST_REQUIRE(p["success"].get<bool>());
  auto s = run(sequential_db, {dir / "gen.tar"}, false, 500);
  BOOST_REQUIRE(s["success"].get<bool>());

  BOOST_TEST(count(parallel_db, "messages") == static_cast<long long>(summary.distinct_messages));
  BOOST_TEST(count(parallel_db, "conversations") == static_cast<long long>(summary.conversations));
  BOOST_TEST(p["phases"]["extract"]["processed_messages"] == summary.messages);
  BOOST_TEST(content_digest(parallel_db) == content_digest(sequential_db));
  BOOST_TEST(count(sequential_db, "messages") == count(parallel_db, "messages"));

  // The limiter bounds the batches between it and the end of the load, and in parallel
  // mode several are.
  const auto& graph = p["statistics"]["graph"];
  BOOST_TEST(graph["batches_in_flight_max"].get<long long>() <=
             graph["batches_in_flight_limit"].get<long long>());
  BOOST_TEST(graph["batches_in_flight_max"].get<long long>() >= 2);
  // Sequential mode holds every batch between phases (documented): the count shows it.
  BOOST_TEST(s["statistics"]["graph"]["batches_in_flight_max"].get<long long>() >= 40);
  // Parallel phases overlap: transform and load start before extract ends.
  const auto& phases = p["phases"];
  BOOST_TEST(phases["load"]["start_time"].get<std::string>() <
             phases["extract"]["end_time"].get<std::string>());
  // Sequential phases do not.
  BOOST_TEST(s["phases"]["load"]["start_time"].get<std::string>() >=
             s["phases"]["transform"]["end_time"].get<std::string>());
  BOOST_TEST(s["phases"]["transform"]["start_time"].get<std::string>() >=
             s["phases"]["extract"]["end_time"].get<std::string>());
}

BOOST_AUTO_TEST_CASE(shared_samples_load_with_exact_counts) {
  const auto samples = st::shared_sample_exports();
  if (!samples) {
    BOOST_TEST_MESSAGE("../shared/samples absent: skipped");
    return;
  }
  int loaded = 0;
  for (const auto& path : *samples) {
    const std::string name = path.filename().string();
    BOOST_TEST_CONTEXT(name) {
      std::ifstream in(path);
      const auto expected = nlohmann::json::parse(in);
      std::set<std::pair<std::string, std::string>> distinct;
      for (const auto& c : expected["conversations"])
        for (const auto& m : c["MessageList"])
          distinct.emplace(c["id"].get<std::string>(), m["id"].get<std::string>());
      st::TestDatabase db;
      auto result = run(db, {path}, true, 4);
      BOOST_TEST_INFO(result.dump(2).substr(0, 1500));
      BOOST_REQUIRE(result["success"].get<bool>());
      BOOST_TEST(count(db, "conversations") ==
                 static_cast<long long>(expected["conversations"].size()));
      BOOST_TEST(count(db, "messages") == static_cast<long long>(distinct.size()));
      ++loaded;
    }
  }
  BOOST_TEST(loaded >= 1);
}

BOOST_AUTO_TEST_CASE(media_metadata_reaches_attachments_and_files_the_output_dir) {
  st::TestDatabase db;
  st::TempDir dir;
  const std::string uri_object =
      R"(<URIObject type=\"File.1\" uri=\"https://api.asm.skype.com/v1/objects/0-weu-d1-abc\" )"
      R"(doc_id=\"0-weu-d1-abc\">To view this file, go to: x</URIObject>)";
  const std::string json = st::export_json({st::conversation_json(
      "8:x",
      {st::message_json(
          "1", uri_object,
          R"("messagetype":"RichText/Media_GenericFile","amsreferences":["0-weu-d1-abc"])")})});
  st::write_file(
      dir / "e.tar",
      st::make_tar({{"messages.json", json},
                    {"media/0-weu-d1-abc.json",
                     R"({"filename":"route.pdf","contents":{"1":{"type":"application/pdf"}}})"},
                    {"media/0-weu-d1-abc.1.pdf", std::string(1234, 'x')}}));
  se::ETLContext context(se::DbConfig{db.conninfo()}, 100, std::nullopt, true, dir / "out");
  se::PipelineOptions options;
  options.with_media = true;
  const auto result = se::run_etl_pipeline({dir / "e.tar"}, options, context);
  BOOST_TEST_INFO(result.dump(2).substr(0, 3000));
  BOOST_REQUIRE(result["success"].get<bool>());
  BOOST_TEST(db.text("SELECT name FROM skype.attachments") == "route.pdf");
  BOOST_TEST(db.text("SELECT content_type FROM skype.attachments") == "application/pdf");
  BOOST_TEST(db.scalar("SELECT size FROM skype.attachments") == 1234);
  BOOST_TEST(std::filesystem::file_size(dir / "out" / "e" / "media" / "0-weu-d1-abc.1.pdf") ==
             1234U);
}

// Issue 14: quirks of real exports, each record right in the database.
BOOST_AUTO_TEST_CASE(records_of_real_export_quirks_reach_the_database_right) {
  st::TestDatabase db;
  st::TempDir dir;
  const std::string emotions =
      R"([{"key":"like","users":[{"mri":"8:bob","time":1600000000000,"value":"1600000000000"}]}])";
  auto message = [](const std::string& id, const std::string& rest) {
    return R"({"id":")" + id + R"(","version":1.0,"from":"8:bob",)" + rest + "}";
  };
  const std::string time = R"("originalarrivaltime":"2024-01-02T03:04:05Z",)";
  const std::vector<std::string> messages{
      message("1", time + R"("displayName":"","messagetype":"RichText","content":"empty name")"),
      message("2", time + R"("displayName":null,"messagetype":"RichText","content":"null name")"),
      message("3", time + R"("displayName":"Bob","messagetype":"RichText","content":"array",)" +
                       R"("properties":{"emotions":)" + emotions + "}"),
      message("4", time + R"("displayName":"Bob","messagetype":"RichText","content":"string",)" +
                       R"("properties":{"emotions":)" + nlohmann::json(emotions).dump() + "}"),
      message("5", time + R"("displayName":"Bob","messagetype":"Poll","content":)" +
                       R"("<URIObject type=\"Poll\" question=\"Where shall we meet?\" )" +
                       R"(optionsEncoded=\"Fri|Sat\"></URIObject>")"),
      message("6", time + R"("displayName":"Bob","messagetype":"ThreadActivity/MemberJoined",)" +
                       R"("content":"{\"eventtime\":1704164645000,\"initiator\":\"8:bob\",)" +
                       R"(\"members\":[{\"id\":\"8:carol\",\"friendlyname\":\"Carol\"}]}")"),
      message("7", R"("originalarrivaltime":"yesterday","displayName":"Bob",)"
                   R"("messagetype":"RichText","content":"when?")")};
  // The conversation's displayName is "" (conversation_json writes null: replace it).
  std::string json = st::export_json({st::conversation_json("19:quirks@thread.skype", messages)});
  json.replace(json.find(R"("displayName":null,"version":1.0,"MessageList")"), 18,
               R"("displayName":"")");
  st::write_file(dir / "m.json", json);

  const auto result = run(db, {dir / "m.json"}, true, 3);
  BOOST_TEST_INFO(result.dump(2).substr(0, 3000));
  BOOST_REQUIRE(result["success"].get<bool>());
  BOOST_TEST(count(db, "messages") == 7);
  auto value = [&](const std::string& column, const std::string& id) {
    return db.text("SELECT coalesce((SELECT (" + column +
                   ")::text FROM skype.messages WHERE message_id = '" + id + "'), '<null>')");
  };
  // Display names: "" is a name, null is none.
  BOOST_TEST(value("sender_name", "1") == "");
  BOOST_TEST(value("sender_name", "2") == "<null>");
  BOOST_TEST(db.text("SELECT coalesce(display_name, '<null>') FROM skype.conversations") == "");
  BOOST_TEST(db.text("SELECT coalesce(display_name, '<null>') FROM skype.participants WHERE "
                     "participant_id = '8:bob'") == "Bob");
  // Reactions in either form.
  BOOST_TEST(nlohmann::json::parse(value("details->'reactions'", "3")) ==
             nlohmann::json::parse(emotions));
  BOOST_TEST(value("details->'reactions'", "4") == value("details->'reactions'", "3"));
  // Polls.
  BOOST_TEST(value("content_text", "5") == "Poll: Where shall we meet? (Fri, Sat)");
  BOOST_TEST(value("details->'poll'->>'question'", "5") == "Where shall we meet?");
  BOOST_TEST(value("details->'poll'->'options'->>1", "5") == "Sat");
  BOOST_TEST(count(db, "attachments") == 0);
  // JSON bodies.
  BOOST_TEST(value("content_text", "6") == "8:carol joined");
  BOOST_TEST(value("details->'membership'->>'kind'", "6") == "member_joined");
  BOOST_TEST(value("details->'membership'->'targets'->>0", "6") == "8:carol");
  BOOST_TEST(value("details->'body'->'members'->0->>'friendlyname'", "6") == "Carol");
  // An unparsable time: kept, NULL sent_at, the value as found, counted.
  BOOST_TEST(value("sent_at", "7") == "<null>");
  BOOST_TEST(value("details->>'original_arrival_time'", "7") == "yesterday");
  BOOST_TEST(result["statistics"]["transform"]["invalid_timestamps"] == 1);
}

BOOST_AUTO_TEST_CASE(memory_limit_stops_the_run_cleanly) {
  st::TestDatabase db;
  se::ETLContext context(se::DbConfig{db.conninfo()}, 2, std::size_t{1}, true);
  const auto result = se::run_etl_pipeline(sample, "", context);
  BOOST_TEST(!result["success"].get<bool>());
  BOOST_TEST(result["exit_code"] == 5);
  BOOST_TEST(result["error_type"] == "skype_etl::MemoryLimitExceeded");
  BOOST_TEST(result["statistics"]["errors"][0]["error_type"] == "skype_etl::MemoryLimitExceeded");
  BOOST_TEST(count(db, "messages") == 0);
}

BOOST_AUTO_TEST_CASE(a_context_with_a_phase_in_progress_is_refused_untouched) {
  // Used to crash (SIGSEGV): start_phase threw after the graph's edges were made, and the
  // graph's destructor ran a task on nodes already destroyed.
  for (const bool parallel : {true, false}) {
    BOOST_TEST_CONTEXT((parallel ? "parallel" : "sequential")) {
      st::TestDatabase db;
      se::ETLContext context(se::DbConfig{db.conninfo()}, 3, std::nullopt, parallel);
      context.start_phase("extract");
      context.update_progress("extract", 1, 1);
      const auto refused = se::run_etl_pipeline(sample, "", context);
      BOOST_TEST(!refused["success"].get<bool>());
      BOOST_TEST(refused["error"].get<std::string>().find(
                     "phase 'extract' is already in progress") != std::string::npos,
                 refused["error"]);
      // The caller's phase is as it was.
      BOOST_TEST(context.is_in_progress("extract"));
      BOOST_TEST(context.progress_tracker(se::Phase::extract).processed_messages() == 1U);
      BOOST_TEST(count(db, "messages") == 0);
      context.end_phase("extract", nlohmann::json::object());
      const auto loaded = se::run_etl_pipeline(sample, "", context);
      BOOST_TEST(loaded["success"].get<bool>(), loaded.dump());
      BOOST_TEST(count(db, "messages") == 8);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_context_runs_again_after_a_failed_run) {
  for (const bool parallel : {true, false}) {
    BOOST_TEST_CONTEXT((parallel ? "parallel" : "sequential")) {
      st::TestDatabase db;
      st::TempDir dir;
      se::ETLContext context(se::DbConfig{db.conninfo()}, 3, std::nullopt, parallel);
      const auto failed = se::run_etl_pipeline(dir / "missing.tar", "", context);
      BOOST_TEST(!failed["success"].get<bool>());
      BOOST_TEST(failed["exit_code"] == 3);
      // Every phase the run started has ended: the failing one failed, with an end time.
      BOOST_TEST(!context.current_phase().has_value());
      BOOST_TEST(context.get_phase_status("extract") == "failed");
      BOOST_TEST(failed["phases"]["extract"]["end_time"].is_string());
      for (const char* phase : {"extract", "transform", "load"})
        BOOST_TEST(!context.is_in_progress(phase), phase);

      const auto loaded = se::run_etl_pipeline(sample, "", context);
      BOOST_TEST_INFO(loaded.dump(2).substr(0, 3000));
      BOOST_TEST(loaded["success"].get<bool>());
      for (const char* phase : {"extract", "transform", "load"})
        BOOST_TEST(loaded["phases"][phase]["status"] == "completed", phase);
      BOOST_TEST(loaded["statistics"]["total"]["messages_processed"] == 8);
      BOOST_TEST(count(db, "messages") == 8);
    }
  }
}

BOOST_AUTO_TEST_CASE(every_run_ends_its_transform_phase) {
  // The transform phase ends when both reading is over and the last batch is transformed,
  // whichever comes last; a run that ended neither loaded and then failed ending the load.
  st::TestDatabase db;
  st::TempDir dir;
  st::write_file(dir / "m.json", st::export_json({st::numbered_conversation("19:a@thread.skype", 7),
                                                  st::numbered_conversation("8:b", 2)}));
  for (int i = 0; i < 25; ++i) {
    st::TestDatabase fresh;
    se::ETLContext context(se::DbConfig{fresh.conninfo()}, 1, std::nullopt, true);
    se::PipelineOptions options;
    options.batches_in_flight = 1 + i % 4;
    const auto result = se::run_etl_pipeline({dir / "m.json"}, options, context);
    BOOST_REQUIRE_MESSAGE(result["success"].get<bool>(), result.dump());
    BOOST_TEST(result["phases"]["transform"]["status"] == "completed");
    BOOST_TEST(result["phases"]["transform"]["messages_processed"] == 9);
    BOOST_TEST(result["statistics"]["graph"]["batches_in_flight_max"].get<long long>() <=
               static_cast<long long>(options.batches_in_flight));
  }
}

BOOST_AUTO_TEST_SUITE_END()
