#define BOOST_TEST_MODULE pipeline_tests
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "generator/generator.hpp"
#include "run_sampler.hpp"
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
                   bool parallel = true, std::size_t batch_size = 100, se::Options options = {}) {
  se::ETLContext context(se::DbConfig{db.conninfo()}, batch_size, std::nullopt, parallel);
  return se::run_etl_pipeline(files, options, context);
}

/// Rows in skype.<table>; 0 when the schema was never created.
long long count(st::TestDatabase& db, const std::string& table) {
  if (db.text("SELECT to_regclass('skype." + table + "')::text").empty()) return 0;
  return db.scalar("SELECT count(*) FROM skype." + table);
}

/// A message object: `from` and `display_name` as JSON values written verbatim ("null",
/// "\"Bob\""), `content` the inside of a JSON string (already escaped). `n` orders them:
/// sent at 2024-01-01 00:00:n.
std::string message(int n, const std::string& from, const std::string& display_name,
                    const std::string& content, const std::string& type = "RichText") {
  const std::string second = (n < 10 ? "0" : "") + std::to_string(n);
  return "{\"id\":\"" + std::to_string(1000 + n) + "\",\"displayName\":" + display_name +
         ",\"originalarrivaltime\":\"2024-01-01T00:00:" + second + ".000Z\",\"messagetype\":\"" +
         type + "\",\"version\":" + std::to_string(1000 + n) + ".0,\"content\":\"" + content +
         "\",\"from\":" + from + "}";
}

/// Rows of `sql` (every column as text, '|' between them), one per line.
std::string rows(st::TestDatabase& db, const std::string& sql) {
  return db.text(
      "SELECT coalesce(string_agg(concat_ws('|', VARIADIC ARRAY(SELECT x FROM "
      "json_each_text(row_to_json(r)) AS j(k, x))), E'\\n'), '') FROM (" +
      sql + ") r");
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
  BOOST_TEST(db.text("SELECT account_id FROM skype.accounts") == "8:live:.cid.sample0wner");
  BOOST_TEST(db.text("SELECT string_agg(conversation_id, ',' ORDER BY conversation_id) FROM "
                     "skype.participants WHERE is_owner") ==
             "19:a1b2c3d4e5f6@thread.skype,8:anna.k");
  // "mikko" wrote without his prefix; the event names him with it: one person, named.
  BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_type = "
                     "'ThreadActivity/AddMember'") == "Anna added Mikko");
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

// Issue 14: one identity per person, whatever form the export writes an id in.
BOOST_AUTO_TEST_CASE(one_identity_per_person_whatever_form_the_export_writes) {
  st::TestDatabase db;
  st::TempDir dir;
  // Members as strings with and without their prefix, as an object, as a contacts URL, and
  // the thread itself.
  const std::string team = st::conversation_json(
      "19:team@thread.skype",
      {message(9, "\"19:team@thread.skype\"", "\"Team\"",
               "<topicupdate><initiator>bob</initiator><value>Plans</value></topicupdate>",
               "ThreadActivity/TopicUpdate"),
       message(8, "\"https://host/v1/users/ME/contacts/8:bob\"", "\"Bob\"", "via url"),
       message(7, "\"bob\"", "\"Bob\"", "bare"), message(6, "\"8:bob\"", "\"Bob\"", "prefixed"),
       message(5, "\"live:.cid.0123\"", "null", "mine, bare"),
       message(4, "\" 8:live:.cid.0123\"", "null", "mine, spaced"),
       message(3, "\"8:live:.cid.0123\"", "null",
               "<at id=\\\"carol\\\">Carol</at> <quote author=\\\"bob\\\">q</quote>hi")},
      R"("threadProperties":{"membercount":5,"members":"[\"8:live:.cid.0123\",\"bob\",)"
      R"({\"MemberMri\":\"8:carol\"},\"https://host/v1/users/ME/contacts/8:dave\",)"
      R"(\"19:team@thread.skype\"]","topic":"Team"})");
  const std::string one_to_one =
      st::conversation_json("8:bob", {message(2, "\"bob\"", "\"Bob B\"", "hello"),
                                      message(1, "\"8:live:.cid.0123\"", "null", "hi bob")});
  st::write_file(dir / "a.json", st::export_json({team, one_to_one}, "8:live:.cid.0123"));
  se::Options options;
  options.user_display_name = "Me";
  auto a = run(db, {dir / "a.json"}, true, 2, options);
  BOOST_TEST_INFO(a.dump(2).substr(0, 2000));
  BOOST_REQUIRE(a["success"].get<bool>());

  BOOST_TEST(rows(db, "SELECT account_id FROM skype.accounts") == "8:live:.cid.0123");
  BOOST_TEST(rows(db, "SELECT DISTINCT account_id FROM skype.conversations") == "8:live:.cid.0123");
  // Who talks most: each person once; the thread's own message keeps its sender.
  const std::string talkers =
      "SELECT sender_id, count(*) FROM skype.messages GROUP BY 1 ORDER BY 2 DESC, 1";
  BOOST_TEST(rows(db, talkers) == "8:bob|4\n8:live:.cid.0123|4\n19:team@thread.skype|1");
  // Members in every form, senders, each once; the thread is none; the owner is marked.
  BOOST_TEST(rows(db,
                  "SELECT participant_id, is_owner, coalesce(display_name, '') FROM "
                  "skype.participants WHERE conversation_id = '19:team@thread.skype' "
                  "ORDER BY 1") ==
             "8:bob|false|Bob\n8:carol|false|\n8:dave|false|\n8:live:.cid.0123|true|Me");
  BOOST_TEST(rows(db,
                  "SELECT participant_id, is_owner FROM skype.participants WHERE "
                  "conversation_id = '8:bob' ORDER BY 1") == "8:bob|false\n8:live:.cid.0123|true");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.participants WHERE participant_id LIKE "
                       "'19:%'") == 0);
  // Ids inside details join with participants.
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages m JOIN skype.participants p ON "
                       "p.account_id = m.account_id AND p.conversation_id = m.conversation_id "
                       "AND p.participant_id IN (m.details->'mentions'->0->>'id', "
                       "m.details->'quote'->>'author_id') WHERE m.message_id = '1003'") == 2);
  BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1009'") ==
             "Bob changed the topic to: Plans");
  // The form the file wrote, where it was another; the userId as written.
  BOOST_TEST(rows(db,
                  "SELECT message_id, sender_raw FROM skype.messages WHERE sender_raw IS "
                  "NOT NULL ORDER BY 1") ==
             "1002|bob\n1004| 8:live:.cid.0123\n1005|live:.cid.0123\n1007|bob\n"
             "1008|https://host/v1/users/ME/contacts/8:bob");
  BOOST_TEST(db.text("SELECT user_id FROM skype.accounts") == "8:live:.cid.0123");

  // A later export of the same account whose userId lacks the prefix: the same account.
  std::string later = st::export_json(
      {st::conversation_json("8:bob", {message(10, "\"bob\"", "\"Bob B\"", "again")})},
      "live:.cid.0123");
  later.replace(later.find("2025-04-30T10:13"), 16, "2025-05-30T10:13");
  st::write_file(dir / "b.json", later);
  auto b = run(db, {dir / "b.json"}, true, 2, options);
  BOOST_REQUIRE(b["success"].get<bool>());
  BOOST_TEST(rows(db, "SELECT account_id FROM skype.accounts") == "8:live:.cid.0123");
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                       "'skype.messages'::regclass") == 1);
  BOOST_TEST(rows(db, talkers) == "8:bob|5\n8:live:.cid.0123|4\n19:team@thread.skype|1");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.participants WHERE is_owner") == 2);
  // The userId as the newest export wrote it.
  BOOST_TEST(db.text("SELECT user_id FROM skype.accounts") == "live:.cid.0123");
}

// Issue 14: membership messages name people by the names the export gives them anywhere,
// whichever batch brought them.
BOOST_AUTO_TEST_CASE(membership_text_names_people_known_from_other_batches) {
  st::TempDir dir;
  const std::string club = st::conversation_json(
      "19:club@thread.skype",
      {message(9, "\"19:club@thread.skype\"", "null", "<addmember/>", "ThreadActivity/AddMember"),
       message(8, "\"live:.cid.d0d1\"", "\"Dan\"",
               "<deletemember><initiator>live:.cid.d0d1</initiator><target>8:live:.cid.d0d1"
               "</target></deletemember>",
               "ThreadActivity/DeleteMember"),
       message(7, "\"8:live:.cid.0123\"", "null",
               "<addmember><eventtime>1704067207000</eventtime><initiator>8:live:.cid.0123"
               "</initiator><target>8:live:.cid.d0d1</target><target>erin</target><target>"
               "frank</target></addmember>",
               "ThreadActivity/AddMember"),
       message(3, "\"live:.cid.d0d1\"", "\"Dan\"", "hello all"),
       message(2, "\"live:.cid.0123\"", "null", "welcome")});
  // Frank is named only in another conversation; Dan has another name there, seen later.
  const std::string other = st::conversation_json(
      "19:other@thread.skype", {message(12, "\"8:live:.cid.d0d1\"", "\"Daniel\"", "x"),
                                message(1, "\"frank\"", "\"Frank\"", "y")});
  st::write_file(dir / "m.json", st::export_json({club, other}, "live:.cid.0123"));
  se::Options options;
  options.user_display_name = "Me";
  const std::string events =
      "SELECT message_id, content_text, details->'membership' FROM skype.messages WHERE "
      "details ? 'membership' ORDER BY 1";
  std::string texts_of_one_message_batches;
  for (const std::size_t batch_size : {1, 2, 100}) {
    BOOST_TEST_CONTEXT("batch size " << batch_size) {
      st::TestDatabase db;
      auto r = run(db, {dir / "m.json"}, true, batch_size, options);
      BOOST_REQUIRE(r["success"].get<bool>());
      BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1007'") ==
                 "Me added Dan, 8:erin, Frank");
      BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1008'") ==
                 "Dan left");
      BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1009'") ==
                 "Membership change with no details in the export");
      // Ids stay canonical in details; the names used are beside them.
      const auto added = nlohmann::json::parse(
          db.text("SELECT details->'membership' FROM skype.messages WHERE message_id = '1007'"));
      BOOST_TEST(added["initiator"] == "8:live:.cid.0123");
      BOOST_TEST(added["targets"] ==
                 nlohmann::json::parse(R"(["8:live:.cid.d0d1", "8:erin", "8:frank"])"));
      BOOST_TEST(added["names"] == nlohmann::json::parse(
                                       R"({"8:live:.cid.0123": "Me", "8:live:.cid.d0d1": "Dan",
                                           "8:frank": "Frank"})"));
      const auto empty = nlohmann::json::parse(
          db.text("SELECT details->'membership' FROM skype.messages WHERE message_id = '1009'"));
      BOOST_TEST(!empty.contains("initiator"));
      BOOST_TEST(!empty.contains("names"));
      // The same text whatever the batches were.
      if (texts_of_one_message_batches.empty())
        texts_of_one_message_batches = rows(db, events);
      else
        BOOST_TEST(rows(db, events) == texts_of_one_message_batches);
    }
  }
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
  se::Options options;
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

// Issue 15: what PostgreSQL refused (exit 4: a lone surrogate in properties, an id longer
// than an index entry holds) is refused by the reader now, after good batches, with exit 3
// and nothing stored.
BOOST_AUTO_TEST_CASE(input_the_database_would_refuse_fails_in_extract_and_stores_nothing) {
  st::TestDatabase db;
  st::TempDir dir;
  const std::vector<std::string> bad_messages{
      st::message_json("2", "x", R"("properties":{"a":"\udc00"})"),
      st::message_json(std::string(3000, '7'), "x"),
      st::message_json("2", "x", R"("from":")" + std::string(3000, 'f') + "\""),
  };
  for (const std::string& bad : bad_messages) {
    const std::string json =
        st::export_json({st::numbered_conversation("19:big@thread.skype", 60),
                         st::conversation_json("8:b", {st::message_json("1", "ok"), bad})});
    st::write_file(dir / "m.json", json);
    auto result = run(db, {dir / "m.json"}, true, 5);
    BOOST_TEST(!result["success"].get<bool>());
    BOOST_TEST(result["exit_code"] == 3, result["error"]);
    BOOST_TEST(result["statistics"]["errors"][0]["error_type"] == "skype_etl::InputError");
    BOOST_TEST(count(db, "messages") == 0);
    BOOST_TEST(count(db, "exports") == 0);
  }
}

// Issue 15: keys skype-etl does not model are kept as the export has them, at every level
// (the top level's after the conversations array too), and a message id written as a number
// is stored as its digits.
BOOST_AUTO_TEST_CASE(unknown_keys_reach_extra_at_every_level) {
  st::TestDatabase db;
  st::TempDir dir;
  const std::string json =
      R"({"userId":"8:me","before":{"a":[1,2]},"exportDate":"2025-01-01T00:00","conversations":[)"
      R"({"id":"19:x@thread.skype","displayName":null,"future":"v\u0000w","properties":[1],)"
      R"("MessageList":[)" +
      st::message_json("1", "a", R"("mystery":{"x":null},"amsreferences":"doc")") + "," +
      st::message_json("2", "b") + "," + R"({"id":1630565395224,"content":"c","from":"8:a"})" +
      R"(]}],"after":true})";
  st::write_file(dir / "m.json", json);
  const auto result = run(db, {dir / "m.json"}, true, 2);
  BOOST_TEST_INFO(result.dump(2).substr(0, 2000));
  BOOST_REQUIRE(result["success"].get<bool>());
  BOOST_TEST(rows(db, "SELECT message_id, extra FROM skype.messages ORDER BY message_id") ==
             "1|{\"mystery\": {\"x\": null}, \"amsreferences\": \"doc\"}\n1630565395224\n2");
  // The NUL PostgreSQL cannot store is removed and counted, as elsewhere.
  BOOST_TEST(db.text("SELECT extra::text FROM skype.conversations") ==
             R"({"future": "vw", "properties": [1]})");
  BOOST_TEST(db.text("SELECT extra::text FROM skype.exports") ==
             R"({"after": true, "before": {"a": [1, 2]}})");
  BOOST_TEST(result["statistics"]["transform"]["nul_characters_removed"] == 1);
}

// A first load fills skype.attachments (and conversations, participants) from empty: it
// analyzes them, or queries joining them (skype-etl export) scan them whole until
// autovacuum comes by.
BOOST_AUTO_TEST_CASE(a_first_load_analyzes_the_tables_it_filled) {
  st::TestDatabase db;
  st::TempDir dir;
  se::gen::GeneratorOptions g;
  g.seed = 11;
  g.messages = 60000;
  g.format = se::gen::GeneratorOptions::Format::tar;
  se::gen::generate_export(g, dir / "gen.tar");
  auto r = run(db, {dir / "gen.tar"}, true, 1000);
  BOOST_REQUIRE(r["success"].get<bool>());
  const long long attachments = count(db, "attachments");
  BOOST_REQUIRE(attachments > 1000);  // enough to matter (a few rows change no plan)
  // analyze_count: ANALYZE statements (autovacuum's are autoanalyze_count).
  BOOST_TEST(db.scalar("SELECT analyze_count FROM pg_stat_user_tables WHERE relid = "
                       "'skype.attachments'::regclass") >= 1);
  BOOST_TEST(db.scalar("SELECT reltuples::bigint FROM pg_class WHERE oid = "
                       "'skype.attachments'::regclass") == attachments);
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
  se::Options options;
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

// Issue 15: every message naming a media/<docid>.json used to get a copy of the metadata's
// text, parsed again per message: a 2 MB tar took 2 GB. The metadata is now read once per
// export and shared, so many messages naming a large (accepted) metadata file cost nothing
// more than any other messages.
BOOST_AUTO_TEST_CASE(media_metadata_named_by_many_messages_is_read_once) {
  st::TestDatabase db;
  st::TempDir dir;
  const std::string metadata =
      R"({"filename":"the \"route\" map.pdf","contents":{"1":{"type":"application/pdf"}},)"
      R"("padding":")" +
      std::string(60 * 1024, 'x') + "\"}";
  BOOST_REQUIRE(metadata.size() < 64 * 1024);
  constexpr int k_messages = 6000;
  std::vector<std::string> messages;
  for (int i = 0; i < k_messages; ++i)
    messages.push_back(st::message_json(
        std::to_string(i), "file",
        R"("messagetype":"RichText/Media_GenericFile","amsreferences":["0-big"])"));
  st::write_file(
      dir / "e.tar",
      st::make_tar({{"messages.json", st::export_json({st::conversation_json("8:x", messages)})},
                    {"media/0-big.json", metadata},
                    {"media/0-big.1.pdf", std::string(77, 'x')}}));
  se::ETLContext context(se::DbConfig{db.conninfo()}, 2000, std::nullopt, true);
  se::Options options;
  options.with_media = true;
  const std::size_t before = se::MemoryMonitor::read_rss_anon_bytes();
  const auto result = se::run_etl_pipeline({dir / "e.tar"}, options, context);
  BOOST_TEST_INFO(result.dump(2).substr(0, 3000));
  BOOST_REQUIRE(result["success"].get<bool>());
  // 6,000 copies of 60 KiB would be 360 MB; three batches of them at once, 120 MB each.
  const double grown_mb =
      (static_cast<double>(context.memory_monitor().peak_bytes()) - static_cast<double>(before)) /
      (1 << 20);
  BOOST_TEST(grown_mb < 40.0);
  BOOST_TEST(count(db, "attachments") == k_messages);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.attachments WHERE name = 'the \"route\" "
                       "map.pdf' AND content_type = 'application/pdf' AND size = 77") ==
             k_messages);
  BOOST_TEST(result["exports"][0]["media"]["metadata_ignored"] == 0);
}

// Issue 15: metadata that cannot be used was ignored silently, and a file name with a '"'
// lost its attachment's metadata (pasted unescaped into JSON). Names are kept as they are;
// what is ignored is counted and named.
BOOST_AUTO_TEST_CASE(unusable_media_metadata_is_counted_and_quoted_names_are_kept) {
  st::TestDatabase db;
  st::TempDir dir;
  std::vector<std::string> messages;
  int n = 0;
  for (const char* doc : {"0-bad", "0-big", "0-array", "0-ok"})
    messages.push_back(st::message_json(
        std::to_string(++n), "file",
        std::string(R"("messagetype":"RichText/Media_GenericFile","amsreferences":[")") + doc +
            "\"]"));
  st::write_file(
      dir / "e.tar",
      st::make_tar({{"messages.json", st::export_json({st::conversation_json("8:x", messages)})},
                    {"media/0-bad.json", R"({"filename": "broken.png",)"},
                    {"media/0-bad.1.png", "PNG"},
                    {"media/0-big.json",
                     R"({"filename":"big.png","pad":")" + std::string(2 << 20, 'x') + "\"}"},
                    {"media/0-array.json", R"(["not", "an", "object"])"},
                    {"media/0-ok.json",
                     R"({"filename":"say \"cheese\".jpg","contents":{"1":{"type":"image/jpeg"}}})"},
                    {"media/0-ok.1.jpg", "JPEG!"}}));
  se::ETLContext context(se::DbConfig{db.conninfo()}, 100, std::nullopt, true);
  se::Options options;
  options.with_media = true;
  const auto result = se::run_etl_pipeline({dir / "e.tar"}, options, context);
  BOOST_TEST_INFO(result.dump(2).substr(0, 3000));
  BOOST_REQUIRE(result["success"].get<bool>());
  BOOST_TEST(rows(db,
                  "SELECT doc_id, coalesce(name, '-'), coalesce(content_type, '-'), "
                  "coalesce(size::text, '-') FROM skype.attachments ORDER BY doc_id") ==
             "0-array|-|-|-\n0-bad|-|-|3\n0-big|-|-|-\n0-ok|say \"cheese\".jpg|image/jpeg|5");
  const auto& media = result["exports"][0]["media"];
  BOOST_TEST(media["metadata_ignored"] == 3);
  BOOST_TEST(media["first_ignored"]["entry"] == "media/0-array.json");
  BOOST_TEST(media["first_ignored"]["reason"] == "not a JSON object, but array");
  BOOST_TEST(result["statistics"]["extract"]["media_metadata_ignored"] == 3);
  const auto stored = nlohmann::json::parse(db.text("SELECT statistics FROM skype.exports"));
  BOOST_TEST(stored["media"] == media);
}

// Issue 15: media files were written before messages.json was read, and again for an export
// already loaded, so a rejected export left them behind. They now appear in the output
// directory only once the export is committed.
BOOST_AUTO_TEST_CASE(media_are_written_only_for_an_export_that_is_committed) {
  st::TestDatabase db;
  st::TempDir dir;
  const auto entries = [](const std::string& json, const std::string& file) {
    return std::vector<st::TarEntry>{{"messages.json", json},
                                     {"media/0-abc.json", R"({"filename":")" + file + "\"}"},
                                     {"media/0-abc.1.png", file}};
  };
  const std::string good = st::export_json({st::numbered_conversation("8:x", 30)});
  // Files (and staging directories) anywhere below `out`.
  const auto entries_below = [&dir] {
    std::vector<std::string> found;
    if (!std::filesystem::exists(dir / "out")) return found;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir / "out"))
      found.push_back(std::filesystem::relative(e.path(), dir / "out").string());
    std::sort(found.begin(), found.end());
    return found;
  };
  const auto load = [&](const std::string& name, se::Options options = {}) {
    se::ETLContext context(se::DbConfig{db.conninfo()}, 10, std::nullopt, true, dir / "out");
    options.with_media = true;
    try {
      return se::run_etl_pipeline({dir / name}, options, context);
    } catch (const std::exception& error) {
      return nlohmann::json{{"success", false}, {"error", error.what()}};
    }
  };

  // Invalid JSON in the last conversation: nothing loaded, nothing written.
  std::string broken = good;
  broken.insert(broken.rfind(']'), ",{\"id\":}");
  st::write_file(dir / "bad.tar", st::make_tar(entries(broken, "bad.png")));
  BOOST_TEST(load("bad.tar")["success"] == false);
  BOOST_TEST(entries_below().empty());

  // A failure in the load, after batches were stored in the export's transaction.
  st::write_file(dir / "e.tar", st::make_tar(entries(good, "a.png")));
  se::Options failing;
  failing.fail_after_batches = 2;
  BOOST_TEST(load("e.tar", failing)["success"] == false);
  BOOST_TEST(entries_below().empty());
  BOOST_TEST(count(db, "messages") == 0);

  // Committed: published, and nothing staged is left.
  auto result = load("e.tar");
  BOOST_REQUIRE(result["success"].get<bool>());
  const std::vector<std::string> published{"e", "e/media", "e/media/0-abc.1.png",
                                           "e/media/0-abc.json"};
  BOOST_TEST(entries_below() == published, boost::test_tools::per_element());
  BOOST_TEST(result["exports"][0]["media"]["files_written"] == 2);
  BOOST_TEST(result["exports"][0]["media"]["directory"] == (dir / "out" / "e").string());

  // Already loaded: nothing written, even where the earlier media were removed.
  std::filesystem::remove_all(dir / "out");
  result = load("e.tar");
  BOOST_TEST(result["exports"][0]["status"] == "already loaded");
  BOOST_TEST(entries_below().empty());

  // A later export of the same name replaces the earlier one's directory whole.
  st::write_file(
      dir / "e.tar",
      st::make_tar({{"messages.json", st::export_json({st::numbered_conversation("8:y", 3)})},
                    {"media/0-new.1.jpg", "JPEG"}}));
  std::filesystem::create_directories(dir / "out" / "e" / "media");
  st::write_file(dir / "out" / "e" / "media" / "0-abc.1.png", "earlier");
  result = load("e.tar");
  BOOST_REQUIRE(result["success"].get<bool>());
  const std::vector<std::string> replaced{"e", "e/media", "e/media/0-new.1.jpg"};
  BOOST_TEST(entries_below() == replaced, boost::test_tools::per_element());
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

BOOST_AUTO_TEST_CASE(a_text_too_long_for_a_search_vector_loads_and_is_found_by_its_beginning) {
  // 200,000 distinct words (1.6 MB of lexemes): PostgreSQL's tsvector holds at most 1 MB,
  // and such a message used to fail its whole export (54000, exit 4).
  st::TestDatabase db;
  st::TempDir dir;
  std::string text = "trailhead";
  for (int i = 0; i < 200000; ++i) text += " w" + std::to_string(i * 7919 + 1000003);
  st::write_file(dir / "m.json",
                 st::export_json({st::conversation_json(
                     "8:b", {st::message_json("1", text), st::message_json("2", "short")})}));
  const auto result = run(db, {dir / "m.json"});
  BOOST_TEST_INFO(result.dump().substr(0, 2000));
  BOOST_REQUIRE(result["success"].get<bool>());
  BOOST_TEST(db.scalar("SELECT length(content_text) FROM skype.messages WHERE message_id = '1'") ==
             static_cast<long long>(text.size()));
  BOOST_TEST(db.text("SELECT message_id FROM skype.messages WHERE content_tsv @@ "
                     "to_tsquery('simple', 'trailhead')") == "1");
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
      // --fail-fast: the failure stops the run.
      se::Options fail_fast;
      fail_fast.fail_fast = true;
      const auto failed = se::run_etl_pipeline({dir / "missing.tar"}, fail_fast, context);
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
    se::Options options;
    options.batches_in_flight = 1 + i % 4;
    const auto result = se::run_etl_pipeline({dir / "m.json"}, options, context);
    BOOST_REQUIRE_MESSAGE(result["success"].get<bool>(), result.dump());
    BOOST_TEST(result["phases"]["transform"]["status"] == "completed");
    BOOST_TEST(result["phases"]["transform"]["messages_processed"] == 9);
    BOOST_TEST(result["statistics"]["graph"]["batches_in_flight_max"].get<long long>() <=
               static_cast<long long>(options.batches_in_flight));
  }
}

BOOST_AUTO_TEST_CASE(progress_polled_during_a_run_only_moves_forward_and_ends_at_the_counts) {
  st::TestDatabase db;
  st::TempDir dir;
  se::gen::GeneratorOptions g;
  g.messages = 20000;
  g.format = se::gen::GeneratorOptions::Format::tar;
  const auto generated = se::gen::generate_export(g, dir / "a.tar");
  st::write_file(dir / "bad.json", "{\"userId\": \"8:x\", \"conversations\": [tru");
  const std::vector<std::filesystem::path> inputs{dir / "a.tar", dir / "bad.json", sample};

  se::ETLContext context(se::DbConfig{db.conninfo()}, 100, std::nullopt, true);
  se::Options options;
  options.batches_in_flight = 3;
  se::EtlGraph graph(inputs, options, context);
  // A sampler thread polls it as fast as it can while the graph runs: every figure only
  // grows, within its bounds.
  se::detail::RunSampler sampler(graph, context, std::chrono::milliseconds(1), 50);
  std::atomic<bool> running{true};
  std::size_t polls = 0;
  std::vector<std::string> problems;
  std::set<std::string> activities;
  std::thread poller([&] {
    std::vector<se::RunProgress::Export> last(inputs.size());
    while (running.load()) {
      const se::RunProgress p = sampler.take();
      ++polls;
      if (p.exports.size() != inputs.size()) problems.push_back("wrong number of exports");
      if (p.batches_in_flight < 0 || p.batches_in_flight > 3)
        problems.push_back("batches in flight " + std::to_string(p.batches_in_flight));
      for (std::size_t i = 0; i < p.exports.size() && i < last.size(); ++i) {
        const auto& e = p.exports[i];
        activities.insert(e.activity);
        if (e.messages_read < last[i].messages_read || e.messages_loaded < last[i].messages_loaded)
          problems.push_back(e.file + ": a count went back");
        if (e.bytes_total > 0 && e.bytes_done > e.bytes_total)
          problems.push_back(e.file + ": more bytes read than it has");
        last[i] = e;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  se::RunResult result;
  try {
    result = graph.run();
  } catch (...) {
    running = false;
    poller.join();
    throw;
  }
  running = false;
  poller.join();
  BOOST_TEST(problems.empty(), (problems.empty() ? std::string() : problems.front()));
  BOOST_TEST(polls > 10U);
  BOOST_TEST(activities.count("reading") == 1U);

  const se::RunProgress end = graph.progress();
  BOOST_TEST(end.batches_in_flight == 0);
  BOOST_TEST(end.batches_in_flight_limit == 3U);
  BOOST_TEST(end.exports[0].activity == "done");
  BOOST_TEST(end.exports[0].messages_read == generated.messages);
  BOOST_TEST(end.exports[0].messages_loaded == generated.messages);
  BOOST_TEST(end.exports[0].bytes_done == end.exports[0].bytes_total);
  BOOST_TEST(end.exports[0].end_us >= end.exports[0].start_us);
  BOOST_TEST(end.exports[1].activity == "failed");
  BOOST_TEST(end.exports[2].activity == "done");
  BOOST_TEST(end.exports[2].messages_loaded == 8U);

  // The samples kept: at most 50 (halved as they came), in time order, ending at the counts.
  sampler.take(true);
  const nlohmann::json sampled = sampler.to_json();
  const auto& samples = sampled["samples"];
  BOOST_TEST(samples.size() <= 50U);
  BOOST_TEST(samples.size() >= 10U);
  BOOST_TEST(sampled["interval_ms"].get<long long>() >= 2);  // doubled at least once
  for (std::size_t i = 1; i < samples.size(); ++i)
    BOOST_TEST(samples[i]["time_us"].get<long long>() > samples[i - 1]["time_us"].get<long long>());
  BOOST_TEST(samples.back()["load"].get<std::uint64_t>() == generated.messages + 8);
  BOOST_TEST(samples.back()["extract"].get<std::uint64_t>() >= generated.messages + 8);
  BOOST_TEST(result.exports[0].statistics["load"]["steps"].size() >= 3U);
}

BOOST_AUTO_TEST_CASE(run_returns_a_typed_result_and_tells_the_observer_each_batch) {
  st::TestDatabase db;
  st::TempDir dir;
  st::write_file(dir / "bad.json", "{\"userId\": \"8:x\", \"conversations\": [tru");
  se::Options options;
  options.db.conninfo = db.conninfo();
  options.batch_size = 3;
  se::ETLContext context(options);
  se::EtlGraph graph({sample, dir / "bad.json"}, options, context);
  std::vector<se::BatchProgress> seen;
  graph.on_batch_loaded([&seen](const se::BatchProgress& b) { seen.push_back(b); });
  se::RunResult r;
  BOOST_REQUIRE_NO_THROW(r = graph.run());  // a failed export is in the result, not thrown

  BOOST_TEST(!r.success);
  BOOST_TEST(r.exit_code == 3);
  BOOST_TEST(!r.stopped);
  BOOST_TEST(r.error.find("bad.json") != std::string::npos, r.error);
  BOOST_REQUIRE(r.exports.size() == 2U);
  const se::ExportOutcome& good = r.exports[0];
  BOOST_TEST(good.status == "loaded");
  BOOST_TEST(good.export_id.has_value());
  BOOST_TEST(!good.account_id.empty());
  BOOST_TEST(good.conversations == 3U);
  BOOST_TEST(good.messages.read == 8U);
  BOOST_TEST(good.messages.inserted == 8U);
  BOOST_TEST(good.exit_code == 0);
  BOOST_TEST(good.statistics["messages"]["new"] == 8);
  const se::ExportOutcome& bad = r.exports[1];
  BOOST_TEST(bad.status == "failed");
  BOOST_TEST(bad.exit_code == 3);
  BOOST_TEST(!bad.export_id.has_value());
  BOOST_TEST(r.phases.at("load").status == "completed");
  BOOST_TEST(r.phases.at("load").messages >= 8U);

  // The observer saw every batch once, in order, with its export and counts.
  std::uint64_t messages = 0;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    BOOST_TEST(seen[i].sequence == i);
    if (seen[i].export_index == 0) messages += seen[i].messages;
  }
  BOOST_TEST(messages == 8U);
  BOOST_REQUIRE(!seen.empty());
  BOOST_TEST(seen.back().export_index == 1U);
  BOOST_TEST(seen.back().last_of_export);

  // to_json is the documented shape, and from_json reads it back.
  const nlohmann::json json = r.to_json();
  BOOST_TEST(json["success"] == false);
  BOOST_TEST(json["exit_code"] == 3);
  BOOST_TEST(json["exports"][0]["status"] == "loaded");
  BOOST_TEST(json["exports"][0]["messages"]["new"] == 8);
  BOOST_TEST(json["phases"]["load"]["status"] == "completed");
  BOOST_TEST(se::RunResult::from_json(json).to_json() == json);

  // A run that stops (the memory limit) returns too: stopped, with its code.
  se::Options limited = options;
  limited.memory_limit_mb = 1;
  st::TestDatabase db2;
  limited.db.conninfo = db2.conninfo();
  se::ETLContext small(limited);
  se::EtlGraph stopped({sample}, limited, small);
  se::RunResult s;
  BOOST_REQUIRE_NO_THROW(s = stopped.run());
  BOOST_TEST(!s.success);
  BOOST_TEST(s.stopped);
  BOOST_TEST(s.exit_code == 5);
  BOOST_TEST(s.error_type == "skype_etl::MemoryLimitExceeded");
  BOOST_TEST(count(db2, "messages") == 0);
}

BOOST_AUTO_TEST_SUITE_END()
