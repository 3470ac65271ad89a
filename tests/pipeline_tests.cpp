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
    BOOST_TEST(result["phases"][phase]["status"] == "completed");
    BOOST_TEST(result["phases"][phase]["messages_processed"] == 8);
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

  // The limiter bounds the batches alive at once (plus the one the input_node holds while
  // the limiter is full), and in parallel mode several are.
  const auto& graph = p["statistics"]["graph"];
  BOOST_TEST(graph["batches_in_flight_max"].get<long long>() <=
             graph["batches_in_flight_limit"].get<long long>() + 1);
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

BOOST_AUTO_TEST_SUITE_END()
