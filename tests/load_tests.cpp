#define BOOST_TEST_MODULE load_tests
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "load/copy_writer.hpp"
#include "load/loader.hpp"
#include "load/partition_hash.hpp"
#include "load/partitions.hpp"
#include "load/pg_connection.hpp"
#include "load/schema.hpp"
#include "skype_etl/errors.hpp"
#include "support/test_database.hpp"

using skype_etl::Batch;
using skype_etl::BatchPtr;
using skype_etl::DbConfig;
using skype_etl::ExportInfo;
using skype_etl::detail::BeginResult;
using skype_etl::detail::Loader;
using skype_etl::detail::LoaderOptions;
using skype_etl::detail::SideSplit;
using skype_etl::test::TestDatabase;

namespace {

// Builds batches by hand, the way the transform fills them (the transform is not linked).
struct TestMessage {
  std::string id;
  std::int64_t version = 0;
  std::int64_t sent_us = 0;
  bool sent_at_unknown = false;  ///< originalarrivaltime was unparsable: sent_at is NULL
  std::string sender = "8:alice";
  std::optional<std::string> sender_name = "Alice";  ///< nullopt: displayName null or missing
  std::string type = "RichText";
  std::string content;
  std::string properties_json;
  std::string details_json;
  std::vector<skype_etl::Attachment> attachments;
  std::optional<std::int64_t> edited_us;
};

struct TestConversation {
  std::string id;
  std::string type = "group";
  std::optional<std::string> display_name;  ///< nullopt: displayName null or missing
  std::vector<std::string> members;
  std::vector<TestMessage> messages;
};

constexpr std::int64_t base_us = 1630565395104000LL;  // 2021-09-02 06:49:55.104

std::vector<TestMessage> numbered(int from, int to, std::int64_t version_offset = 0,
                                  const std::string& text = "message") {
  std::vector<TestMessage> out;
  for (int i = from; i <= to; ++i) {
    TestMessage m;
    m.id = std::to_string(1000000 + i);
    m.version = 1000000 + i + version_offset;
    m.sent_us = base_us + static_cast<std::int64_t>(i) * 60'000'000LL;
    m.sender = i % 3 == 0 ? "8:bob" : "8:alice";
    m.sender_name = i % 3 == 0 ? "Bob" : "Alice";
    m.content = text + " number " + std::to_string(i);
    out.push_back(std::move(m));
  }
  return out;
}

/// Splits the conversations into batches of at most `per_batch` messages, chunking
/// conversations across batches like the reader does.
std::vector<BatchPtr> make_batches(const std::vector<TestConversation>& conversations,
                                   std::size_t per_batch) {
  std::vector<BatchPtr> batches;
  auto fresh = [&] {
    auto b = std::make_shared<Batch>();
    b->export_sequence = batches.size();
    batches.push_back(b);
    return b;
  };
  BatchPtr batch = fresh();
  for (const TestConversation& tc : conversations) {
    auto meta = std::make_shared<skype_etl::ConversationMeta>();
    meta->id = tc.id;
    meta->display_name = tc.display_name;
    meta->members = tc.members;
    std::size_t next = 0;
    bool first = true;
    do {
      if (batch->messages.size() >= per_batch) batch = fresh();
      skype_etl::ConversationChunk chunk;
      chunk.conversation = meta;
      chunk.first_message = batch->messages.size();
      chunk.starts_conversation = first;
      while (next < tc.messages.size() && batch->messages.size() < per_batch) {
        const TestMessage& t = tc.messages[next++];
        skype_etl::Message m;
        m.message_id = batch->arena.store(t.id);
        m.version = t.version;
        if (!t.sent_at_unknown) m.sent_at_us = t.sent_us;
        m.sender_id = batch->arena.store(t.sender);
        if (t.sender_name) m.sender_name = batch->arena.store(*t.sender_name);
        m.message_type = batch->arena.store(t.type);
        m.content_raw = batch->arena.store(t.content);
        m.content_text = batch->arena.store(t.content);
        m.is_edited = t.edited_us.has_value();
        m.edited_at_us = t.edited_us;
        m.properties_json = batch->arena.store(t.properties_json);
        m.details_json = t.details_json;
        m.attachments = t.attachments;
        batch->messages.push_back(std::move(m));
        batch->raw.emplace_back();
      }
      chunk.message_count = batch->messages.size() - chunk.first_message;
      chunk.ends_conversation = next == tc.messages.size();
      if (first) {
        skype_etl::ConversationRow row;
        row.conversation_id = meta->id;
        row.conversation_type = tc.type;
        row.display_name = tc.display_name;
        row.members = tc.members;
        batch->conversations.push_back(std::move(row));
      }
      batch->chunks.push_back(std::move(chunk));
      first = false;
    } while (next < tc.messages.size());
  }
  batches.back()->last_of_export = true;
  return batches;
}

ExportInfo make_info(const std::string& digest, const std::string& user = "8:live:owner",
                     const std::string& date = "2025-04-30T10:13") {
  ExportInfo info;
  info.file_name = digest + ".tar";
  info.file_size = 12345;
  info.digest = "sha256:" + digest;
  info.user_id = user;
  info.export_date = date;
  return info;
}

/// Loads everything; returns finish_export's result (or null when already loaded).
nlohmann::json load_all(TestDatabase& db, const ExportInfo& info,
                        const std::vector<TestConversation>& conversations,
                        std::size_t per_batch = 40, LoaderOptions options = {}) {
  Loader loader(DbConfig{db.conninfo()}, options);
  loader.ensure_schema();
  if (loader.begin_export(info, "Owner") == BeginResult::already_loaded) return nullptr;
  for (const BatchPtr& b : make_batches(conversations, per_batch)) loader.load_batch(*b);
  return loader.finish_export({{"test", true}});
}

std::vector<TestConversation> three_conversations() {
  std::vector<TestConversation> c(3);
  c[0].id = "19:family@thread.skype";
  c[0].display_name = "Family";
  c[0].members = {"8:live:owner", "8:alice", "8:bob", "8:carol"};
  c[0].messages = numbered(1, 120);
  c[1].id = "8:alice";
  c[1].type = "one_to_one";
  c[1].members = {};
  c[1].messages = numbered(200, 299);
  c[2].id = "19:work@thread.skype";
  c[2].display_name = "Work";
  c[2].members = {"8:live:owner", "8:dave"};
  c[2].messages = numbered(400, 429);
  skype_etl::Attachment a;
  a.kind = "picture";
  a.name = "cat.png";
  a.uri = "https://api.asm.skype.com/v1/objects/0-abc";
  a.doc_id = "0-abc";
  a.size = 4096;
  a.width = 640;
  a.height = 480;
  c[0].messages[5].attachments = {a, a};
  c[2].messages[0].attachments = {a};
  return c;
}

// The two ways an export reaches skype.messages: "staged" (COPY into a temporary table,
// then INSERT ... ON CONFLICT) and "side" (COPY over two connections into a table of
// schema skype_load, indexes built there, then attached as the account's partition of
// skype.messages; only when the account has none at begin_export). The tests that matter
// run in both and expect the same tables.
// A side load split into one table per stream (SideSplit) whatever the server's wal_level.
const char* const modes[] = {"staged", "side", "split"};

LoaderOptions options_for(const std::string& mode) {
  LoaderOptions options;
  options.side_load_min_file_bytes = mode == "staged" ? UINT64_MAX : 0;
  options.side_split = mode == "split" ? SideSplit::always : SideSplit::never;
  return options;
}

/// Tables in schema skype_load: side tables of loads still running or not cleaned up.
long long side_tables(TestDatabase& db) {
  return db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'skype_load'");
}

/// Conversations whose derived columns (message_count, first/last_message_at) disagree with
/// their stored messages.
long long conversations_disagreeing_with_messages(TestDatabase& db) {
  return db.scalar(
      "SELECT count(*) FROM skype.conversations x LEFT JOIN (SELECT account_id, "
      "conversation_id, min(sent_at) AS f, max(sent_at) AS l, count(*) AS n FROM "
      "skype.messages GROUP BY 1, 2) d USING (account_id, conversation_id) WHERE "
      "x.message_count <> coalesce(d.n, 0) OR x.first_message_at IS DISTINCT FROM d.f OR "
      "x.last_message_at IS DISTINCT FROM d.l");
}

long long count(TestDatabase& db, const std::string& table) {
  return db.scalar("SELECT count(*) FROM skype." + table);
}

/// md5 of a skype table's rows, without what differs between two databases loaded alike
/// (export ids, load times).
std::string rows_md5(TestDatabase& db, const std::string& table) {
  const std::string cols =
      table == "conversations"
          ? "account_id, conversation_id, conversation_type, display_name, topic, "
            "properties, thread_properties, first_message_at, last_message_at, message_count"
      : table == "messages"
          ? "account_id, conversation_id, message_id, version, sent_at, sender_id, "
            "sender_name, message_type, content_raw, content_text, is_edited, edited_at, "
            "is_deleted, deleted_at, is_server_generated, properties, details, content_tsv, "
            "source_position"
      : table == "participants" ? "account_id, conversation_id, participant_id, "
                                  "display_name, is_owner, last_seen_at"
                                : "account_id, conversation_id, message_id, "
                                  "ordinal, kind, name, size";
  return db.text("SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM (SELECT " + cols +
                 " FROM skype." + table + ") r");
}

/// What defines a table beyond its rows (skype.messages unless `table` names one of its
/// partitions): columns with types, collations, defaults, generated expressions and
/// comments; indexes and constraints with their names; options.
std::string messages_definition(TestDatabase& db, const std::string& table = "skype.messages") {
  const std::string name = table.substr(table.find('.') + 1);
  return db.text(
      "SELECT string_agg(d, E'\\n' ORDER BY d) FROM ("
      "SELECT concat_ws(' ', a.attname, format_type(a.atttypid, a.atttypmod), co.collname, "
      "a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attgenerated, "
      "col_description(a.attrelid, a.attnum)) AS d FROM pg_attribute a "
      "LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100 "
      "LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
      "WHERE a.attrelid = '" +
      table +
      "'::regclass AND a.attnum > 0 AND NOT a.attisdropped "
      // A partitioned table's indexes read "ON ONLY" (a split load's partition, SideSplit).
      "UNION ALL SELECT replace(indexdef, ' ON ONLY ', ' ON ') FROM pg_indexes WHERE "
      "schemaname = 'skype' AND tablename = '" +
      name +
      "' UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM "
      "pg_constraint WHERE conrelid = '" +
      table +
      "'::regclass UNION ALL SELECT 'options ' || coalesce(reloptions::text, '') || "
      "coalesce(obj_description(oid, 'pg_class'), '') FROM pg_class WHERE oid = '" +
      table + "'::regclass) x");
}

/// The partitions of skype.messages with their bounds, in name order.
std::string partitions(TestDatabase& db) {
  return db.text(
      "SELECT string_agg(c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid), ';' ORDER BY "
      "c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
      "'skype.messages'::regclass");
}

/// How many hash partitions `table` is split into (0: it is not partitioned).
long long hash_parts_of(TestDatabase& db, const std::string& table) {
  return db.scalar(
      "SELECT count(*) FROM pg_inherits i JOIN pg_partitioned_table t ON t.partrelid = "
      "i.inhparent AND t.partstrat = 'h' WHERE i.inhparent = '" +
      table + "'::regclass");
}

/// The partition that holds account `account`'s rows ("skype.<name>"; of a split load's
/// parts, the partitioned table they belong to).
std::string partition_of(TestDatabase& db, const std::string& account) {
  return db.text(
      "SELECT DISTINCT coalesce((SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE "
      "i.inhrelid = m.tableoid AND i.inhparent <> 'skype.messages'::regclass), "
      "m.tableoid::regclass::text) FROM skype.messages m WHERE account_id = '" +
      account + "'");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(load_tests)

BOOST_AUTO_TEST_CASE(message_ids_go_to_the_hash_partition_the_server_puts_them_in) {
  // A split side load routes each row to the part whose bounds the server checks it
  // against: text_hash_partition must agree with it for ids of every length (the hash
  // takes 12 bytes at a time, then 0-11) and any UTF-8, for any number of parts.
  TestDatabase db;
  pqxx::work tx(db.connection());
  const int moduli[] = {2, 3, 5, 8};
  for (int modulus : moduli)
    tx.exec("CREATE TABLE hp" + std::to_string(modulus) +
            " (v text COLLATE \"C\") PARTITION BY HASH (v)");
  const std::vector<std::string> alphabet{"a",
                                          "Z",
                                          "0",
                                          "9",
                                          ":",
                                          "-",
                                          "_",
                                          " ",
                                          ".",
                                          "@",
                                          "\xc3\xa9",
                                          "\xe2\x82\xac",
                                          "\xf0\x9f\x98\x80"};
  std::mt19937 random(20261203);
  std::vector<std::string> ids{"", "1600000000000", "8:live:.cid.0123456789abcdef"};
  for (int i = 0; i < 600; ++i) {
    const std::size_t length = i < 60 ? static_cast<std::size_t>(i % 30) : random() % 300;
    std::string id;
    while (id.size() < length) id += alphabet[random() % alphabet.size()];
    ids.push_back(id);
  }
  std::map<int, std::set<std::size_t>> seen;
  long long disagreeing = 0;
  for (const std::string& id : ids)
    for (int modulus : moduli) {
      const std::size_t part = skype_etl::detail::text_hash_partition(id, modulus);
      seen[modulus].insert(part);
      const pqxx::row r =
          tx.exec_params1("SELECT satisfies_hash_partition($1::regclass, $2, $3, $4::text)",
                          "hp" + std::to_string(modulus), modulus, static_cast<int>(part), id);
      if (!r[0].as<bool>()) ++disagreeing;
    }
  BOOST_TEST(disagreeing == 0);
  for (int modulus : moduli) BOOST_TEST(seen[modulus].size() == static_cast<std::size_t>(modulus));
  // An id as stored: the NUL bytes COPY cannot carry are left out.
  for (int modulus : moduli)
    for (const std::string& id : ids)
      BOOST_TEST(skype_etl::detail::text_hash_partition(id + std::string(1, '\0') + "x", modulus) ==
                 skype_etl::detail::text_hash_partition(id + "x", modulus));
}

BOOST_AUTO_TEST_CASE(a_split_load_where_the_server_hashes_ids_otherwise_is_not_split) {
  // Under a nondeterministic collation the server hashes message_id by its sort key, not
  // its bytes: the loader's probe sees its routing disagree and loads unsplit, rather than
  // having the server refuse rows as outside their part.
  TestDatabase db;
  TestDatabase staged;
  { Loader(DbConfig{db.conninfo()}).ensure_schema(); }
  {
    pqxx::work tx(db.connection());
    tx.exec(
        "CREATE COLLATION skype.ids_ignoring_case (provider = icu, locale = "
        "'und-u-ks-level2', deterministic = false)");
    tx.exec(
        "ALTER TABLE skype.messages ALTER COLUMN message_id TYPE text COLLATE "
        "skype.ids_ignoring_case");
    tx.commit();
  }
  const nlohmann::json r =
      load_all(db, make_info("collation"), three_conversations(), 40, options_for("split"));
  BOOST_TEST(r["status"] == "loaded");
  BOOST_TEST(r["side_table"]["attached"] == true);
  BOOST_TEST(r["side_table"]["parts"] == 1);
  load_all(staged, make_info("collation"), three_conversations(), 40, options_for("staged"));
  BOOST_TEST(rows_md5(db, "messages") == rows_md5(staged, "messages"));
  BOOST_TEST(side_tables(db) == 0);
}

BOOST_DATA_TEST_CASE(message_ids_with_nul_bytes_are_stored_without_them_in_every_mode,
                     boost::unit_test::data::make(modes), mode) {
  // COPY cannot carry a NUL: an id is stored without it, and a split load must route
  // the row by what is stored, or the server refuses it as outside its part.
  TestDatabase db;
  std::vector<TestConversation> c(1);
  c[0].id = "19:nulid@thread.skype";
  c[0].messages = numbered(1, 60);
  for (std::size_t i = 0; i < c[0].messages.size(); i += 3)
    c[0].messages[i].id =
        std::string("id") + std::string(1, '\0') + std::to_string(i) + std::string(1, '\0');
  const nlohmann::json r = load_all(db, make_info("nulid"), c, 7, options_for(mode));
  BOOST_TEST(r["status"] == "loaded");
  BOOST_TEST(count(db, "messages") == 60);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE message_id LIKE 'id%'") == 20);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE message_id = 'id3'") == 1);
}

BOOST_DATA_TEST_CASE(exact_row_counts_after_a_load, boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  nlohmann::json r = load_all(db, make_info("a1"), three_conversations(), 40, options_for(mode));
  BOOST_TEST(r["status"] == "loaded");
  BOOST_TEST(r["index_rebuild"] == (std::string(mode) != "staged"));
  BOOST_TEST(side_tables(db) == 0);
  BOOST_TEST(r["messages"] == 250);
  BOOST_TEST(r["inserted"] == 250);
  BOOST_TEST(r["superseded"] == 0);
  BOOST_TEST(r["conversations"] == 3);
  BOOST_TEST(r["attachments"] == 3);
  BOOST_TEST(count(db, "messages") == 250);
  BOOST_TEST(count(db, "conversations") == 3);
  BOOST_TEST(count(db, "attachments") == 3);
  BOOST_TEST(count(db, "accounts") == 1);
  BOOST_TEST(count(db, "exports") == 1);
  BOOST_TEST(db.text("SELECT account_id FROM skype.accounts") == "8:live:owner");
  BOOST_TEST(db.text("SELECT display_name FROM skype.accounts") == "Owner");
  BOOST_TEST(db.text("SELECT export_date AT TIME ZONE 'UTC' FROM skype.exports") ==
             "2025-04-30 10:13:00");
  BOOST_TEST(db.text("SELECT statistics->>'test' FROM skype.exports") == "true");
  BOOST_TEST(db.scalar("SELECT export_id FROM skype.exports") == r["export_id"].get<long long>());
  // Participants: members plus senders (alice, bob), deduplicated.
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.participants WHERE conversation_id = "
                       "'19:family@thread.skype'") == 4);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.participants WHERE conversation_id = "
                       "'8:alice'") == 2);
  BOOST_TEST(db.text("SELECT display_name FROM skype.participants WHERE conversation_id = "
                     "'19:family@thread.skype' AND participant_id = '8:bob'") == "Bob");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.participants WHERE is_owner") == 2);
  // Derived fields.
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations WHERE conversation_id = "
                       "'19:family@thread.skype'") == 120);
  BOOST_TEST(db.text("SELECT first_message_at AT TIME ZONE 'UTC' FROM skype.conversations "
                     "WHERE conversation_id = '8:alice'") == "2021-09-02 10:09:55.104");
  BOOST_TEST(db.text("SELECT last_message_at AT TIME ZONE 'UTC' FROM skype.conversations "
                     "WHERE conversation_id = '8:alice'") == "2021-09-02 11:48:55.104");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE export_id = " +
                       std::to_string(r["export_id"].get<long long>())) == 250);
  // Where each message was in the export: the batches hold the conversations in order.
  BOOST_TEST(db.scalar("SELECT min(source_position) FROM skype.messages") == 0);
  BOOST_TEST(db.scalar("SELECT max(source_position) FROM skype.messages") == 249);
  BOOST_TEST(db.scalar("SELECT source_position FROM skype.messages WHERE message_id = "
                       "'1000200'") == 120);
  // The indexes and the primary key are all there, whichever way the rows came in.
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'skype' AND "
                       "tablename = 'messages'") == 5);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_constraint WHERE conrelid = "
                       "'skype.messages'::regclass AND contype = 'p'") == 1);
}

BOOST_DATA_TEST_CASE(a_message_without_a_valid_time_loads_with_null_sent_at,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  std::vector<TestConversation> c(1);
  c[0].id = "19:times@thread.skype";
  c[0].messages = numbered(1, 3);
  c[0].messages[1].sent_at_unknown = true;
  c[0].messages[1].details_json = R"({"original_arrival_time":"yesterday at noon"})";
  nlohmann::json r = load_all(db, make_info("t1"), c, 40, options_for(mode));
  BOOST_TEST(r["status"] == "loaded");
  BOOST_TEST(r["messages"] == 3);
  BOOST_TEST(count(db, "messages") == 3);
  BOOST_TEST(db.text("SELECT message_id FROM skype.messages WHERE sent_at IS NULL") == "1000002");
  BOOST_TEST(db.text("SELECT details->>'original_arrival_time' FROM skype.messages WHERE "
                     "sent_at IS NULL") == "yesterday at noon");
  // The conversation counts it; its first and last times come from the others.
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations") == 3);
  BOOST_TEST(conversations_disagreeing_with_messages(db) == 0);
  BOOST_TEST(db.text("SELECT last_message_at AT TIME ZONE 'UTC' FROM skype.conversations") ==
             "2021-09-02 06:52:55.104");
}

// A display name the file gives as "" is a name, stored as ''; null (or none) is NULL.
BOOST_DATA_TEST_CASE(empty_display_names_are_stored_as_empty_and_null_as_null,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  std::vector<TestConversation> c(3);
  c[0].id = "19:names@thread.skype";
  c[0].display_name = "";
  c[0].messages = numbered(1, 6);
  for (auto& m : c[0].messages) m.sender = "bob";
  c[0].messages[0].sender_name = "Bob";
  c[0].messages[1].sender_name = "";  // later: the latest non-null name wins, '' included
  c[0].messages[2].sender = "carol";
  c[0].messages[2].sender_name = std::nullopt;  // never named: NULL
  c[0].messages[3].sender = "dave";
  c[0].messages[3].sender_name = "Dave";
  c[0].messages[4].sender = "dave";
  c[0].messages[4].sender_name = std::nullopt;  // later but null: Dave stays
  c[0].messages[5].sender = "erin";
  c[0].messages[5].sender_name = "";
  c[1].id = "19:unnamed@thread.skype";
  c[1].messages = numbered(10, 11);
  c[2].id = "19:undescribed@thread.skype";  // no ConversationRow: named from its metadata
  c[2].display_name = "";
  c[2].messages = numbered(20, 20);
  auto batches = make_batches(c, 2);
  batches.back()->conversations.clear();  // the last batch holds only c[2]
  Loader loader(DbConfig{db.conninfo()}, options_for(mode));
  loader.ensure_schema();
  BOOST_REQUIRE(loader.begin_export(make_info("names"), "Owner") == BeginResult::started);
  for (const BatchPtr& b : batches) loader.load_batch(*b);
  loader.finish_export({});

  auto name = [&](const std::string& sql) {
    return db.text("SELECT coalesce((" + sql + "), '<null>')");
  };
  BOOST_TEST(name("SELECT sender_name FROM skype.messages WHERE message_id = '1000002'") == "");
  BOOST_TEST(name("SELECT sender_name FROM skype.messages WHERE message_id = '1000003'") ==
             "<null>");
  BOOST_TEST(name("SELECT sender_name FROM skype.messages WHERE message_id = '1000001'") == "Bob");
  auto participant = [&](const std::string& id) {
    return name(
        "SELECT display_name FROM skype.participants WHERE conversation_id = "
        "'19:names@thread.skype' AND participant_id = '" +
        id + "'");
  };
  BOOST_TEST(participant("bob") == "");
  BOOST_TEST(participant("carol") == "<null>");
  BOOST_TEST(participant("dave") == "Dave");
  BOOST_TEST(participant("erin") == "");
  auto conversation = [&](const std::string& id) {
    return name("SELECT display_name FROM skype.conversations WHERE conversation_id = '" + id +
                "'");
  };
  BOOST_TEST(conversation("19:names@thread.skype") == "");
  BOOST_TEST(conversation("19:unnamed@thread.skype") == "<null>");
  BOOST_TEST(conversation("19:undescribed@thread.skype") == "");
}

BOOST_AUTO_TEST_CASE(loading_the_same_digest_again_changes_nothing) {
  TestDatabase db;
  load_all(db, make_info("same"), three_conversations());
  const std::string before = db.text(
      "SELECT md5(string_agg(m::text, ',' ORDER BY conversation_id, message_id)) FROM "
      "skype.messages m");
  Loader loader(DbConfig{db.conninfo()});
  BOOST_TEST((loader.begin_export(make_info("same"), "Owner") == BeginResult::already_loaded));
  // The loader is usable afterwards.
  BOOST_TEST((loader.begin_export(make_info("other", "8:someone"), "") == BeginResult::started));
  loader.abort_export();
  BOOST_TEST(count(db, "messages") == 250);
  BOOST_TEST(count(db, "exports") == 1);
  BOOST_TEST(db.text("SELECT md5(string_agg(m::text, ',' ORDER BY conversation_id, message_id)) "
                     "FROM skype.messages m") == before);
}

BOOST_AUTO_TEST_CASE(a_digest_still_being_computed_is_checked_before_the_merge) {
  TestDatabase db;
  const nlohmann::json first = load_all(db, make_info("pending"), three_conversations());
  BOOST_REQUIRE(first.is_object());
  const long long messages = count(db, "messages");

  // The same file again, its digest not yet known when the export begins.
  ExportInfo info = make_info("pending");
  std::promise<std::string> digest;
  info.digest = skype_etl::Digest(digest.get_future().share());
  Loader loader(DbConfig{db.conninfo()});
  BOOST_TEST((loader.begin_export(info, "Owner") == BeginResult::started));
  for (const BatchPtr& b : make_batches(three_conversations(), 40)) loader.load_batch(*b);
  digest.set_value("sha256:pending");
  const nlohmann::json again = loader.finish_export({});
  BOOST_TEST(again.value("already_loaded", false));
  BOOST_TEST(count(db, "exports") == 1);
  BOOST_TEST(count(db, "messages") == messages);

  // A new file whose digest arrives late loads normally.
  ExportInfo other = make_info("late", "8:live:someone");
  std::promise<std::string> late;
  other.digest = skype_etl::Digest(late.get_future().share());
  Loader second(DbConfig{db.conninfo()});
  BOOST_TEST((second.begin_export(other, "Owner") == BeginResult::started));
  for (const BatchPtr& b : make_batches(three_conversations(), 40)) second.load_batch(*b);
  late.set_value("sha256:late");
  const nlohmann::json loaded = second.finish_export({});
  BOOST_TEST(!loaded.value("already_loaded", false));
  BOOST_TEST(count(db, "exports") == 2);
  BOOST_TEST(db.text("SELECT file_digest FROM skype.exports WHERE export_id = " +
                     loaded["export_id"].dump()) == "sha256:late");
}

BOOST_DATA_TEST_CASE(rows_flushed_mid_export_give_the_same_tables,
                     boost::unit_test::data::make(modes), mode) {
  // Tiny flushes send conversations, participants and attachments while the export is
  // still being read, interleaving the COPY streams; the result must not change, and a
  // side-table load must give what a staged one gives.
  TestDatabase whole;
  TestDatabase flushed;
  load_all(whole, make_info("flush"), three_conversations(), 7, options_for("staged"));
  LoaderOptions tiny = options_for(mode);
  tiny.copy_flush_bytes = 1;
  load_all(flushed, make_info("flush"), three_conversations(), 7, tiny);
  for (const char* table : {"messages", "conversations", "participants", "attachments"}) {
    BOOST_TEST_CONTEXT(table) {
      BOOST_TEST(count(flushed, table) > 0);
      BOOST_TEST(rows_md5(flushed, table) == rows_md5(whole, table));
    }
  }
}

BOOST_AUTO_TEST_CASE(overlapping_exports_merge_and_higher_version_wins) {
  TestDatabase db;
  std::vector<TestConversation> first(1), second(1);
  first[0].id = second[0].id = "19:chat@thread.skype";
  first[0].display_name = "Old name";
  second[0].display_name = "New name";
  first[0].messages = numbered(1, 100, 0, "old");
  second[0].messages = numbered(51, 150, 0, "new");
  for (int i = 0; i < 10; ++i) second[0].messages[i].version += 5;   // 51..60: newer
  for (int i = 10; i < 20; ++i) second[0].messages[i].version -= 5;  // 61..70: older
  skype_etl::Attachment a;
  a.kind = "file";
  a.name = "old.pdf";
  first[0].messages[54].attachments = {a, a};  // message 55 had two attachments
  a.name = "new.pdf";
  second[0].messages[4].attachments = {a};  // its newer version has one

  nlohmann::json r1 = load_all(db, make_info("e1", "8:live:owner", "2025-01-01T00:00"), first);
  BOOST_TEST(r1["inserted"] == 100);
  nlohmann::json r2 = load_all(db, make_info("e2", "live:owner", "2025-04-01T00:00"), second);
  BOOST_TEST(r2["inserted"] == 50);
  BOOST_TEST(r2["updated"] == 10);
  BOOST_TEST(r2["unchanged"] == 40);
  BOOST_TEST(count(db, "messages") == 150);
  BOOST_TEST(count(db, "accounts") == 1);
  BOOST_TEST(count(db, "conversations") == 1);
  BOOST_TEST(count(db, "exports") == 2);
  BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1000055'") ==
             "new number 55");
  BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1000065'") ==
             "old number 65");
  BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1000080'") ==
             "old number 80");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.attachments WHERE message_id = '1000055'") == 1);
  BOOST_TEST(db.text("SELECT name FROM skype.attachments WHERE message_id = '1000055'") ==
             "new.pdf");
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations") == 150);
  BOOST_TEST(db.text("SELECT display_name FROM skype.conversations") == "New name");
  BOOST_TEST(db.text("SELECT first_message_at AT TIME ZONE 'UTC' FROM skype.conversations") ==
             "2021-09-02 06:50:55.104");
  BOOST_TEST(db.text("SELECT last_message_at AT TIME ZONE 'UTC' FROM skype.conversations") ==
             "2021-09-02 09:19:55.104");

  // An older export loaded afterwards adds its messages but does not rename.
  std::vector<TestConversation> older(1);
  older[0].id = "19:chat@thread.skype";
  older[0].display_name = "Ancient name";
  older[0].messages = numbered(0, 0, 0, "older");
  load_all(db, make_info("e0", "8:live:owner", "2024-01-01T00:00"), older);
  BOOST_TEST(db.text("SELECT display_name FROM skype.conversations") == "New name");
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations") == 151);
  BOOST_TEST(db.text("SELECT first_message_at AT TIME ZONE 'UTC' FROM skype.conversations") ==
             "2021-09-02 06:49:55.104");
}

BOOST_DATA_TEST_CASE(derived_columns_follow_added_and_replaced_rows,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  load_all(db, make_info("d1"), three_conversations(), 40, options_for(mode));
  BOOST_TEST(conversations_disagreeing_with_messages(db) == 0);
  // Only additions (earlier and later messages) in one conversation; in another a newer
  // version of its last message, moved earlier than all (its last_message_at must drop,
  // which adding up cannot do), and of a middle one.
  std::vector<TestConversation> next = three_conversations();
  next[0].messages = numbered(-5, 0);
  auto more = numbered(500, 504);
  next[0].messages.insert(next[0].messages.end(), more.begin(), more.end());
  next[1].messages = numbered(250, 250, 1);
  next[1].messages.push_back(numbered(299, 299, 1)[0]);
  next[1].messages.back().sent_us = base_us - 3'600'000'000LL;
  next.pop_back();
  nlohmann::json r = load_all(db, make_info("d2"), next, 4, options_for(mode));
  BOOST_TEST(r["inserted"] == 11);
  BOOST_TEST(r["updated"] == 2);
  BOOST_TEST(conversations_disagreeing_with_messages(db) == 0);
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations WHERE conversation_id = "
                       "'19:family@thread.skype'") == 131);
  BOOST_TEST(db.text("SELECT last_message_at AT TIME ZONE 'UTC' FROM skype.conversations "
                     "WHERE conversation_id = '8:alice'") == "2021-09-02 11:47:55.104");
}

BOOST_DATA_TEST_CASE(derived_columns_of_a_first_load_count_its_repeats,
                     boost::unit_test::data::make(modes), mode) {
  // A first export whose ids repeat, some of them newer versions that move in time or add
  // ids; in a side-table load they are merged after the attach, before the count.
  TestDatabase db;
  std::vector<TestConversation> c = three_conversations();
  TestMessage moved = c[0].messages.back();  // its last message, newer and now the first
  moved.version += 1;
  moved.sent_us = base_us - 3'600'000'000LL;
  TestMessage edited = c[0].messages[3];  // newer, same time
  edited.version += 2;
  edited.content = "edited";
  c[0].messages.push_back(moved);
  c[0].messages.push_back(edited);
  TestMessage stale = c[2].messages[0];  // older and earlier than all: loses
  stale.version -= 1;
  stale.sent_us = base_us - 7'200'000'000LL;
  c[2].messages.push_back(stale);
  TestConversation back = c[1];  // 8:alice again after the others: new ids, later and earlier
  back.messages = numbered(300, 302);
  back.messages.push_back(numbered(150, 150)[0]);
  c.push_back(back);
  nlohmann::json r = load_all(db, make_info("r1"), c, 40, options_for(mode));
  BOOST_TEST(r["messages"] == 254);
  if (mode != "staged") BOOST_TEST(r["side_table"]["attached"] == true);
  if (mode != "staged") BOOST_TEST(r["side_table"]["parts"] == (mode == "split" ? 2 : 1));
  BOOST_TEST(conversations_disagreeing_with_messages(db) == 0);
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations WHERE conversation_id = "
                       "'8:alice'") == 104);
  BOOST_TEST(db.text("SELECT last_message_at AT TIME ZONE 'UTC' FROM skype.conversations WHERE "
                     "conversation_id = '19:family@thread.skype'") == "2021-09-02 08:48:55.104");
  BOOST_TEST(db.text("SELECT first_message_at AT TIME ZONE 'UTC' FROM skype.conversations WHERE "
                     "conversation_id = '19:family@thread.skype'") == "2021-09-02 05:49:55.104");
}

BOOST_DATA_TEST_CASE(duplicate_ids_inside_one_export_are_stored_once,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  std::vector<TestConversation> c(1);
  c[0].id = "19:dup@thread.skype";
  c[0].messages = numbered(1, 30);
  TestMessage copy = c[0].messages[3];
  copy.version += 10;
  copy.content = "edited version";
  copy.edited_us = copy.sent_us + 5'000'000;
  c[0].messages.push_back(copy);  // lands in another batch than the original
  TestMessage older = c[0].messages[7];
  older.version -= 10;
  older.content = "stale version";
  c[0].messages.push_back(older);
  nlohmann::json r = load_all(db, make_info("dup"), c, 10, options_for(mode));
  BOOST_TEST(r["messages_staged"] == 32);
  BOOST_TEST(r["messages"] == 30);
  BOOST_TEST(r["superseded"] == 2);
  BOOST_TEST(count(db, "messages") == 30);
  BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1000004'") ==
             "edited version");
  BOOST_TEST(db.text("SELECT is_edited::text FROM skype.messages WHERE message_id = '1000004'") ==
             "true");
  BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1000008'") ==
             "message number 8");
}

BOOST_AUTO_TEST_CASE(same_conversation_id_in_two_accounts_is_two_conversations) {
  TestDatabase db;
  std::vector<TestConversation> c(1);
  c[0].id = "8:bob";
  c[0].type = "one_to_one";
  c[0].messages = numbered(1, 10);
  load_all(db, make_info("acc1", "8:live:anna"), c);
  load_all(db, make_info("acc2", "live:bert"), c);
  BOOST_TEST(count(db, "accounts") == 2);
  BOOST_TEST(count(db, "conversations") == 2);
  BOOST_TEST(count(db, "messages") == 20);
  BOOST_TEST(db.scalar("SELECT count(DISTINCT account_id) FROM skype.messages") == 2);
  BOOST_TEST(db.scalar("SELECT sum(message_count) FROM skype.conversations") == 20);
}

BOOST_DATA_TEST_CASE(abort_after_some_batches_leaves_nothing_then_full_load_is_exact,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  auto batches = make_batches(three_conversations(), 40);
  BOOST_TEST_REQUIRE(batches.size() > 3u);
  {
    Loader loader(DbConfig{db.conninfo()}, options_for(mode));
    BOOST_TEST((loader.begin_export(make_info("abort"), "Owner") == BeginResult::started));
    loader.load_batch(*batches[0]);
    loader.load_batch(*batches[1]);
    loader.load_batch(*batches[2]);
    loader.abort_export();
    BOOST_TEST(count(db, "messages") == 0);
    // The same loader can start again after an abort.
    BOOST_TEST((loader.begin_export(make_info("abort"), "Owner") == BeginResult::started));
    loader.load_batch(*batches[0]);
    // Destroyed mid-export: rolls back too.
  }
  BOOST_TEST(count(db, "messages") == 0);
  BOOST_TEST(count(db, "attachments") == 0);
  BOOST_TEST(count(db, "conversations") == 0);
  BOOST_TEST(count(db, "participants") == 0);
  BOOST_TEST(count(db, "accounts") == 0);
  BOOST_TEST(count(db, "exports") == 0);
  // skype.messages and its indexes are as before; the side table is gone.
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'skype' AND "
                       "tablename = 'messages'") == 5);
  BOOST_TEST(side_tables(db) == 0);
  nlohmann::json r = load_all(db, make_info("abort"), three_conversations(), 40, options_for(mode));
  BOOST_TEST(r["status"] == "loaded");
  BOOST_TEST(count(db, "messages") == 250);
  BOOST_TEST(count(db, "attachments") == 3);
  BOOST_TEST(count(db, "exports") == 1);
}

BOOST_DATA_TEST_CASE(terminated_backend_mid_export_raises_and_leaves_nothing,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  auto batches = make_batches(three_conversations(), 40);
  {
    Loader loader(DbConfig{db.conninfo()}, options_for(mode));
    loader.ensure_schema();
    BOOST_TEST((loader.begin_export(make_info("killed"), "Owner") == BeginResult::started));
    loader.load_batch(*batches[0]);
    loader.load_batch(*batches[1]);
    const long long killed = db.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
        "current_database() AND application_name = 'skype-etl' AND pid <> pg_backend_pid()");
    // The loader's connection, and in a side-table load its two streams.
    BOOST_TEST(killed == (std::string(mode) == "staged" ? 1 : 3));
    bool raised = false;
    try {
      for (std::size_t i = 2; i < batches.size(); ++i) loader.load_batch(*batches[i]);
      loader.finish_export({});
    } catch (const skype_etl::DatabaseError& e) {
      raised = true;
      BOOST_TEST_MESSAGE("raised: " << e.what());
      BOOST_TEST(std::string(e.what()).find("PostgreSQL") != std::string::npos);
    }
    BOOST_TEST(raised);
  }
  BOOST_TEST(count(db, "messages") == 0);
  BOOST_TEST(count(db, "exports") == 0);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'skype' AND "
                       "tablename = 'messages'") == 5);
  nlohmann::json r =
      load_all(db, make_info("killed"), three_conversations(), 40, options_for(mode));
  BOOST_TEST(r["status"] == "loaded");
  BOOST_TEST(count(db, "messages") == 250);
  // The killed load's side table was left behind; the next loader dropped it.
  BOOST_TEST(side_tables(db) == 0);
}

BOOST_DATA_TEST_CASE(two_loaders_on_different_exports_concurrently_both_succeed,
                     boost::unit_test::data::make(modes), mode) {
  // Side: each account's first export becomes its partition; of live:owner's two, the one
  // that finishes second finds the partition and merges into it.
  TestDatabase db;
  { Loader(DbConfig{db.conninfo()}).ensure_schema(); }
  std::vector<TestConversation> overlap = three_conversations();
  overlap[0].messages = numbered(50, 200);  // same account as "c1", overlapping messages
  auto run = [&](const std::string& digest, const std::string& user,
                 const std::vector<TestConversation>& data) {
    return load_all(db, make_info(digest, user), data, 20, options_for(mode));
  };
  auto f1 = std::async(std::launch::async, run, "c1", "8:live:owner", three_conversations());
  auto f2 = std::async(std::launch::async, run, "c2", "8:live:other", three_conversations());
  auto f3 = std::async(std::launch::async, run, "c3", "8:live:owner", overlap);
  BOOST_TEST(f1.get()["status"] == "loaded");
  BOOST_TEST(f2.get()["status"] == "loaded");
  BOOST_TEST(f3.get()["status"] == "loaded");
  BOOST_TEST(count(db, "exports") == 3);
  // live:other 250; live:owner: 200 (family 1..200) + 100 + 30.
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE account_id = '8:live:other'") ==
             250);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE account_id = '8:live:owner'") ==
             330);
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations WHERE account_id = "
                       "'8:live:owner' AND conversation_id = '19:family@thread.skype'") == 200);
  BOOST_TEST(count(db, "attachments") == 6);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                       "'skype.messages'::regclass") == 2);
  BOOST_TEST(side_tables(db) == 0);
}

BOOST_AUTO_TEST_CASE(readers_and_other_accounts_go_on_while_a_side_load_runs) {
  TestDatabase db;
  load_all(db, make_info("first"), three_conversations(), 40, options_for("staged"));
  Loader side(DbConfig{db.conninfo()}, options_for("side"));
  side.ensure_schema();
  BOOST_REQUIRE(side.begin_export(make_info("second", "8:live:second"), "Second") ==
                BeginResult::started);
  for (const BatchPtr& b : make_batches(three_conversations(), 40)) side.load_batch(*b);
  // Mid-load: readers of skype.messages and a load of a third account wait for nothing
  // (lock_timeout turns a wait into an error).
  skype_etl::detail::PgConnection reader(db.conninfo());
  reader.exec("SET lock_timeout = '2s'");
  BOOST_TEST(reader.exec("SELECT count(*) FROM skype.messages").integer(0, 0) == 250);
  BOOST_TEST(reader
                 .exec("SELECT count(*) FROM skype.messages WHERE content_tsv @@ "
                       "'number'::tsquery")
                 .integer(0, 0) == 250);
  nlohmann::json third = load_all(db, make_info("third", "8:live:third"), three_conversations(), 40,
                                  options_for("staged"));
  BOOST_TEST(third["status"] == "loaded");
  // The side load's rows appear at its commit, all at once.
  BOOST_TEST(reader.exec("SELECT count(*) FROM skype.messages").integer(0, 0) == 500);
  nlohmann::json r = side.finish_export({});
  BOOST_TEST(r["side_table"]["attached"] == true);
  BOOST_TEST(reader.exec("SELECT count(*) FROM skype.messages").integer(0, 0) == 750);
  BOOST_TEST(side_tables(db) == 0);
}

BOOST_DATA_TEST_CASE(two_loaders_on_the_same_digest_one_loads_the_other_is_already_loaded,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  { Loader(DbConfig{db.conninfo()}).ensure_schema(); }
  auto batches = make_batches(three_conversations(), 40);
  std::promise<void> first_began;
  auto first = std::async(std::launch::async, [&] {
    Loader loader(DbConfig{db.conninfo()}, options_for(mode));
    BeginResult b = loader.begin_export(make_info("race"), "Owner");
    first_began.set_value();
    if (b == BeginResult::already_loaded) return std::string("already_loaded");
    for (const BatchPtr& batch : batches) {
      loader.load_batch(*batch);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    loader.finish_export({});
    return std::string("loaded");
  });
  first_began.get_future().wait();
  auto second = std::async(std::launch::async, [&] {
    Loader loader(DbConfig{db.conninfo()}, options_for(mode));
    BeginResult b = loader.begin_export(make_info("race"), "Owner");
    if (b == BeginResult::already_loaded) return std::string("already_loaded");
    for (const BatchPtr& batch : batches) loader.load_batch(*batch);
    loader.finish_export({});
    return std::string("loaded");
  });
  BOOST_TEST(first.get() == "loaded");
  BOOST_TEST(second.get() == "already_loaded");
  BOOST_TEST(count(db, "exports") == 1);
  BOOST_TEST(count(db, "messages") == 250);
}

BOOST_DATA_TEST_CASE(every_character_copy_must_escape_comes_back_byte_for_byte,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  const std::vector<std::string> contents = {
      "tab\there",
      "new\nline",
      "carriage\rreturn\r\n",
      "back\\slash \\\\ double \\N \\t",
      "\\.",
      "line\n\\.\nafter",
      "quotes \" ' `",
      "\\N",
      "",
      "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xe4\xbd\xa0\xe5\xa5\xbd "
      "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
      "emoji "
      "\xf0\x9f\x98\x80\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7",
      "control \x01\x02\x1b[0m \x7f",
      std::string(5000, 'x') + "\t" + std::string(3000, '\\'),
  };
  std::vector<TestConversation> c(1);
  c[0].id = "19:escape\t\\@thread.skype";
  for (std::size_t i = 0; i < contents.size(); ++i) {
    TestMessage m;
    m.id = std::to_string(i);
    m.version = 1;
    m.sent_us = base_us;
    m.content = contents[i];
    m.sender_name = "Na\tme\\";
    m.properties_json = R"({"text":"a\tb\\c\n\"d\"","n":1})";
    c[0].messages.push_back(m);
  }
  load_all(db, make_info("escape"), c, 5, options_for(mode));
  pqxx::nontransaction tx(db.connection());
  pqxx::result r = tx.exec(
      "SELECT message_id::int, content_raw, content_text, sender_name, conversation_id, "
      "properties->>'text' FROM skype.messages ORDER BY message_id::int");
  BOOST_TEST_REQUIRE(r.size() == contents.size());
  for (std::size_t i = 0; i < contents.size(); ++i) {
    BOOST_TEST(r[i][1].as<std::string>() == contents[i]);
    BOOST_TEST(r[i][2].as<std::string>() == contents[i]);
    BOOST_TEST(r[i][3].as<std::string>() == "Na\tme\\");
    BOOST_TEST(r[i][4].as<std::string>() == "19:escape\t\\@thread.skype");
    BOOST_TEST(r[i][5].as<std::string>() == "a\tb\\c\n\"d\"");
  }
}

BOOST_DATA_TEST_CASE(json_with_nul_escape_and_text_with_nul_bytes_load,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  std::vector<TestConversation> c(1);
  c[0].id = "19:nul@thread.skype";
  c[0].messages = numbered(1, 60);
  c[0].messages[0].properties_json = R"({"a":"x\u0000y","b":"\\u0000"})";
  c[0].messages[0].details_json = R"({"quote":{"text":"\u0000"}})";
  for (std::size_t i = 1; i < c[0].messages.size(); ++i)
    c[0].messages[i].content = std::string("nul\0inside", 10);
  // A buffer per row: the side-table streams recycle their buffers many times, and what
  // each removed must be counted once.
  LoaderOptions options = options_for(mode);
  options.copy_flush_bytes = 1;
  nlohmann::json r = load_all(db, make_info("nul"), c, 40, options);
  BOOST_TEST(r["json_nul_escapes_replaced"] == 2);
  BOOST_TEST(r["nul_bytes_removed"] == 2 * 59);  // content_raw and content_text
  BOOST_TEST(db.text("SELECT properties->>'a' FROM skype.messages WHERE message_id = '1000001'") ==
             "x\xef\xbf\xbdy");
  BOOST_TEST(db.text("SELECT properties->>'b' FROM skype.messages WHERE message_id = '1000001'") ==
             "\\u0000");
  BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1000002'") ==
             "nulinside");
}

// The message rows travel in COPY's binary format: the server must store exactly what the
// text format gives for the same values, for every column type of skype.messages.
BOOST_AUTO_TEST_CASE(binary_and_text_copy_store_the_same_message_rows) {
  using skype_etl::detail::binary_copy_header;
  using skype_etl::detail::binary_copy_trailer;
  using skype_etl::detail::CopyBuffer;
  using skype_etl::detail::CopyFormat;
  using skype_etl::detail::PgConnection;
  TestDatabase db;
  PgConnection conn(db.conninfo());
  conn.exec("SET client_encoding = 'UTF8'");
  const std::string columns =
      "(position bigint, conversation_id text, message_id text, version bigint, sent_at "
      "timestamptz, sender_id text, sender_raw text, sender_name text, message_type text, "
      "content_raw text, "
      "content_text text, is_edited boolean, edited_at timestamptz, is_deleted boolean, "
      "deleted_at timestamptz, is_server_generated boolean, properties jsonb, details jsonb, "
      "extra jsonb)";
  conn.exec("CREATE TABLE by_text " + columns + "; CREATE TABLE by_binary " + columns);

  std::vector<skype_etl::Message> messages(4);
  std::vector<std::string> texts = {"plain", std::string("tab\t nl\n cr\r bs\\ nul\0!", 22),
                                    "Łukasz 🌸 ünïcödé", ""};
  for (std::size_t i = 0; i < messages.size(); ++i) {
    skype_etl::Message& m = messages[i];
    m.message_id = texts[i].empty() ? std::string_view("id") : std::string_view(texts[i]);
    m.content_raw = texts[i];
    m.content_text = texts[i];
    m.sender_id = i % 2 ? "8:alice" : "";
    m.sender_name = i % 2 ? "" : "Bob";
    m.message_type = "RichText";
    m.is_edited = i % 2 == 1;
    m.is_deleted = i == 2;
    m.is_server_generated = i == 3;
  }
  messages[0].version = 1630565395224LL;
  messages[0].sent_at_us = base_us;
  messages[0].properties_json = R"({"edittime":"1630565399000","x":[1,2.5,null,true]})";
  messages[1].version = -5;
  messages[1].sent_at_us = -62135596800000000LL;    // 0001-01-01, the first stored instant
  messages[1].edited_at_us = 253402300799999999LL;  // the last
  messages[1].details_json = R"({"quote":{"text":"\u0000 and \"q\""}})";
  messages[2].sent_at_us = -62135596800000001LL;  // out of range: NULL in both
  messages[2].deleted_at_us = 0;
  messages[2].properties_json = "null";
  messages[2].extra_json = R"({"mystery":{"x":[1,"\u00e9"]}})";
  messages[3].sent_at_us = 1709210096789012LL;

  auto send = [&](CopyFormat format, const std::string& table) {
    CopyBuffer b(format);
    for (std::size_t i = 0; i < messages.size(); ++i) {
      b.integer(static_cast<std::int64_t>(i));
      b.text("19:conv@thread.skype");
      skype_etl::detail::append_message_columns(b, messages[i]);
      b.end_row();
    }
    const bool binary = format == CopyFormat::binary;
    conn.copy_in("COPY " + table + " FROM STDIN" + (binary ? " (FORMAT binary)" : ""));
    if (binary) conn.put_copy_data(binary_copy_header());
    conn.put_copy_data(b.view());
    if (binary) conn.put_copy_data(binary_copy_trailer());
    conn.end_copy();
    return b.nul_bytes_removed();
  };
  // The NUL of texts[1] is in its message id, content_raw and content_text.
  BOOST_TEST(send(CopyFormat::text, "by_text") == 3u);
  BOOST_TEST(send(CopyFormat::binary, "by_binary") == 3u);
  BOOST_TEST(db.scalar("SELECT count(*) FROM by_binary") == 4);
  BOOST_TEST(db.scalar("SELECT count(*) FROM (SELECT * FROM by_text EXCEPT SELECT * FROM "
                       "by_binary) d") == 0);
  BOOST_TEST(db.scalar("SELECT count(*) FROM (SELECT * FROM by_binary EXCEPT SELECT * FROM "
                       "by_text) d") == 0);
  // Spot checks against values written by hand, so an error shared by both cannot hide.
  BOOST_TEST(db.text("SELECT sent_at AT TIME ZONE 'UTC' FROM by_binary WHERE position = 3") ==
             "2024-02-29 12:34:56.789012");
  BOOST_TEST(db.text("SELECT edited_at AT TIME ZONE 'UTC' FROM by_binary WHERE position = 1") ==
             "9999-12-31 23:59:59.999999");
  BOOST_TEST(db.scalar("SELECT count(*) FROM by_binary WHERE sent_at IS NULL") == 1);
  BOOST_TEST(db.text("SELECT content_text FROM by_binary WHERE position = 1") ==
             "tab\t nl\n cr\r bs\\ nul!");
  BOOST_TEST(db.text("SELECT properties->'x'->>1 FROM by_binary WHERE position = 0") == "2.5");
  BOOST_TEST(db.text("SELECT details->'quote'->>'text' FROM by_binary WHERE position = 1") ==
             "\xef\xbf\xbd and \"q\"");
  BOOST_TEST(db.scalar("SELECT version FROM by_binary WHERE position = 1") == -5);
  BOOST_TEST(db.text("SELECT extra->'mystery'->'x'->>1 FROM by_binary WHERE position = 2") ==
             "\xC3\xA9");
  BOOST_TEST(db.scalar("SELECT count(*) FROM by_binary WHERE extra IS NULL") == 3);
  BOOST_TEST(db.text("SELECT concat(is_edited, is_deleted, is_server_generated) FROM by_binary "
                     "WHERE position = 3") == "tft");
}

BOOST_AUTO_TEST_CASE(side_load_needs_an_account_without_partition_and_a_large_file) {
  TestDatabase db;
  LoaderOptions options;
  options.side_load_min_file_bytes = 12346;  // make_info's file is 12345 bytes
  nlohmann::json r = load_all(db, make_info("small"), three_conversations(), 40, options);
  BOOST_TEST(r["index_rebuild"] == false);
  BOOST_TEST(r["side_table"].is_null());
  TestDatabase empty;
  options.side_load_min_file_bytes = 12345;
  r = load_all(empty, make_info("large"), three_conversations(), 40, options);
  BOOST_TEST(r["index_rebuild"] == true);
  // The account has its partition now: its next export stages and upserts.
  std::vector<TestConversation> more = three_conversations();
  more[2].messages = numbered(400, 439);
  r = load_all(empty, make_info("next"), more, 40, options);
  BOOST_TEST(r["index_rebuild"] == false);
  BOOST_TEST(r["inserted"] == 10);
  BOOST_TEST(r["unchanged"] == 250);
  BOOST_TEST(count(empty, "messages") == 260);
  // Another account's first export is a side-table load again, beside the first's rows.
  r = load_all(empty, make_info("other", "8:live:other"), more, 40, options);
  BOOST_TEST(r["index_rebuild"] == true);
  BOOST_TEST(count(empty, "messages") == 520);
}

BOOST_DATA_TEST_CASE(same_id_rows_resolve_alike_in_both_paths, boost::unit_test::data::make(modes),
                     mode) {
  // Higher version wins, then the later edit, then the later row in the file; the
  // attachments are the winning row's. Conversation "split" comes in two separate runs
  // (its duplicate cannot be seen by the per-conversation hashes).
  TestDatabase db;
  std::vector<TestConversation> c(3);
  c[0].id = "19:dups@thread.skype";
  c[0].messages = numbered(1, 30);
  skype_etl::Attachment a;
  a.kind = "file";
  a.name = "old.pdf";
  c[0].messages[3].attachments = {a, a};
  TestMessage newer = c[0].messages[3];  // id 1000004, version + 1: wins
  newer.version += 1;
  newer.content = "newer";
  a.name = "new.pdf";
  newer.attachments = {a};
  TestMessage tie = c[0].messages[9];  // id 1000010, same version, later in the file: wins
  tie.content = "later copy";
  TestMessage edited = c[0].messages[11];  // id 1000012, same version, edited: wins
  edited.content = "edited";
  edited.edited_us = edited.sent_us + 1'000'000;
  TestMessage unedited_later = c[0].messages[11];  // same version, not edited, last: loses
  unedited_later.content = "unedited later";
  c[0].messages.insert(c[0].messages.begin(), newer);  // before the original, in another batch
  c[0].messages.push_back(tie);
  c[0].messages.push_back(edited);
  c[0].messages.push_back(unedited_later);
  c[1].id = "19:split@thread.skype";
  c[1].messages = numbered(101, 110);
  c[2].id = "19:split@thread.skype";
  c[2].messages = numbered(111, 115);
  TestMessage split_dup = c[1].messages[2];  // id 1000103 again, in the second run: wins
  split_dup.version += 7;
  split_dup.content = "split newer";
  c[2].messages.push_back(split_dup);

  nlohmann::json r = load_all(db, make_info("ties"), c, 8, options_for(mode));
  BOOST_TEST(r["messages_staged"] == 50);
  BOOST_TEST(r["messages"] == 45);
  BOOST_TEST(r["superseded"] == 5);
  BOOST_TEST(count(db, "messages") == 45);
  auto content = [&](const std::string& id) {
    return db.text("SELECT content_text FROM skype.messages WHERE message_id = '" + id + "'");
  };
  BOOST_TEST(content("1000004") == "newer");
  BOOST_TEST(content("1000010") == "later copy");
  BOOST_TEST(content("1000012") == "edited");
  BOOST_TEST(content("1000103") == "split newer");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.attachments WHERE message_id = '1000004'") == 1);
  BOOST_TEST(db.text("SELECT name FROM skype.attachments WHERE message_id = '1000004'") ==
             "new.pdf");
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations WHERE conversation_id = "
                       "'19:split@thread.skype'") == 15);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_constraint WHERE conrelid = "
                       "'skype.messages'::regclass AND contype = 'p'") == 1);
}

BOOST_DATA_TEST_CASE(membership_texts_name_people_known_from_any_batch_in_both_paths,
                     boost::unit_test::data::make(modes), mode) {
  // Membership events wait until the export's names are all staged; a side load's then go
  // into its table before the indexes are built, a repeat's through the merge.
  TestDatabase db;
  auto event = [](const std::string& id, std::int64_t version, const std::string& initiator,
                  const std::string& target) {
    TestMessage m;
    m.id = id;
    m.version = version;
    m.sent_us = base_us + version;
    m.sender = "19:team@thread.skype";  // the thread itself sends system messages
    m.sender_name = std::nullopt;
    m.type = "ThreadActivity/AddMember";
    m.content = initiator + " added " + target;
    m.details_json = R"({"membership":{"kind":"add_member","initiator":")" + initiator +
                     R"(","targets":[")" + target + R"("]}})";
    return m;
  };
  TestConversation c;
  c.id = "19:team@thread.skype";
  c.messages.push_back(event("e1", 1, "8:alice", "8:carol"));
  c.messages.push_back(event("e2", 2, "8:live:owner", "8:dave"));  // the owner: "Owner"
  c.messages.push_back(event("e3", 3, "8:bob", "8:zed"));          // zed: never named
  std::vector<TestMessage> chat = numbered(1, 30);  // Alice and Bob, in later batches
  c.messages.insert(c.messages.end(), chat.begin(), chat.end());
  TestMessage carol = numbered(31, 31)[0];
  carol.sender = "8:carol";
  carol.sender_name = "Carol";
  c.messages.push_back(carol);
  c.messages.push_back(event("e1", 5, "8:alice", "8:carol"));  // e1 again, newer: wins
  const nlohmann::json r = load_all(db, make_info("members"), {c}, 4, options_for(mode));
  BOOST_TEST_INFO(r.dump());
  BOOST_TEST(r["messages_staged"] == 35);
  BOOST_TEST(r["messages"] == 34);
  BOOST_TEST(r["superseded"] == 1);
  BOOST_TEST(r["membership_texts"] == 4);  // each held row whose text changed, repeats too
  BOOST_TEST(count(db, "messages") == 34);
  BOOST_TEST(r["index_rebuild"] == (mode != std::string("staged")));
  BOOST_TEST(side_tables(db) == 0);
  auto text = [&](const std::string& id) {
    return db.text("SELECT content_text FROM skype.messages WHERE message_id = '" + id + "'");
  };
  BOOST_TEST(text("e1") == "Alice added Carol");
  BOOST_TEST(db.scalar("SELECT version FROM skype.messages WHERE message_id = 'e1'") == 5);
  BOOST_TEST(text("e2") == "Owner added 8:dave");
  BOOST_TEST(text("e3") == "Bob added 8:zed");
  BOOST_TEST(db.text("SELECT details->'membership'->'names' FROM skype.messages WHERE "
                     "message_id = 'e1'") == R"({"8:alice": "Alice", "8:carol": "Carol"})");
  // Full-text search finds the names.
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE content_tsv @@ "
                       "to_tsquery('simple', 'carol')") >= 1);
  BOOST_TEST(conversations_disagreeing_with_messages(db) == 0);

  // A later export: its event names people by what the stored participants say.
  TestConversation later;
  later.id = c.id;
  later.messages.push_back(event("e9", 9, "8:carol", "8:bob"));
  load_all(db, make_info("members-later", "8:live:owner", "2025-05-30T10:13"), {later}, 4,
           options_for(mode));
  BOOST_TEST(text("e9") == "Carol added Bob");
}

BOOST_AUTO_TEST_CASE(each_step_of_a_load_has_its_start_and_end_and_is_told_as_it_begins) {
  for (const std::string mode : modes) {
    BOOST_TEST_CONTEXT(mode) {
      TestDatabase db;
      LoaderOptions options = options_for(mode);
      std::vector<std::string> told;
      options.on_step = [&told](const char* step) { told.emplace_back(step); };
      const nlohmann::json r =
          load_all(db, make_info("steps-" + mode), three_conversations(), 40, options);
      const nlohmann::json& steps = r["steps"];
      BOOST_REQUIRE(steps.is_array());
      // The loader's own connection: one step after another, from begin_export to the
      // commit, in the order the observer was told them.
      std::vector<std::string> own;
      std::int64_t previous_end = 0;
      for (const auto& step : steps) {
        BOOST_TEST(step["start_us"].get<std::int64_t>() <= step["end_us"].get<std::int64_t>());
        if (step["connection"] != 0) continue;
        own.push_back(step["step"].get<std::string>());
        if (previous_end != 0) BOOST_TEST(step["start_us"].get<std::int64_t>() == previous_end);
        previous_end = step["end_us"].get<std::int64_t>();
      }
      BOOST_TEST(own == told);
      BOOST_REQUIRE(own.size() >= 5U);
      BOOST_TEST(own[0] == "begin");
      BOOST_TEST(own[1] == "copy");
      BOOST_TEST(own.back() == "commit");
      BOOST_TEST(std::count(own.begin(), own.end(), "attachments") == 1);
      // merge_seconds: finish_export's steps only.
      BOOST_TEST(r["merge_seconds"].contains("commit"));
      BOOST_TEST(r["merge_seconds"].contains("attachments"));
      BOOST_TEST(!r["merge_seconds"].contains("copy"));
      BOOST_TEST(!r["merge_seconds"].contains("begin"));
      if (mode == "side") {
        // The indexes were built on the two streams' connections, inside the loader's own
        // index_build step, each named after the index of skype.messages it matches.
        std::int64_t build_start = 0, build_end = 0;
        for (const auto& step : steps)
          if (step["connection"] == 0 && step["step"] == "index_build") {
            build_start = step["start_us"].get<std::int64_t>();
            build_end = step["end_us"].get<std::int64_t>();
          }
        std::set<std::string> built;
        for (const auto& step : steps) {
          if (step["connection"] == 0 || step["step"] != "index_build") continue;
          BOOST_TEST(step["connection"].get<int>() <= 2);
          BOOST_TEST(step["start_us"].get<std::int64_t>() >= build_start);
          BOOST_TEST(step["end_us"].get<std::int64_t>() <= build_end);
          built.insert(step["detail"].get<std::string>());
        }
        BOOST_TEST(built.count("messages_pkey") == 1U);
        BOOST_TEST(built.size() == r["merge_seconds"]["index_build_each"].size());
      }
      if (mode == "split") {
        // Each index on each part.
        const nlohmann::json& each = r["merge_seconds"]["index_build_each"];
        BOOST_TEST(each.contains("messages_pkey/p0"));
        BOOST_TEST(each.contains("messages_pkey/p1"));
        BOOST_TEST(each.size() % 2 == 0U);
      }
    }
  }
}

BOOST_DATA_TEST_CASE(a_side_load_attaches_a_partition_defined_like_a_staged_one,
                     boost::unit_test::data::make({"side", "split"}), mode) {
  TestDatabase staged;
  TestDatabase side;
  load_all(staged, make_info("attach"), three_conversations(), 40, options_for("staged"));
  { Loader(DbConfig{side.conninfo()}).ensure_schema(); }
  const long long before = side.scalar("SELECT 'skype.messages'::regclass::oid::bigint");
  nlohmann::json r =
      load_all(side, make_info("attach"), three_conversations(), 40, options_for(mode));
  BOOST_TEST(r["side_table"]["attached"] == true);
  BOOST_TEST(r["side_table"]["streams"] == 2);
  const std::string partition = "skype." + r["side_table"]["partition"].get<std::string>();
  BOOST_TEST(partition_of(side, "8:live:owner") == partition);
  BOOST_TEST(partition.rfind("skype.messages_8_live_owner_", 0) == 0);
  // skype.messages is the same table; the partitions are defined, indexed and named
  // exactly alike (its autovacuum was off while loaded and is the default again; the
  // check that made attaching it need no scan is gone).
  BOOST_TEST(side.scalar("SELECT 'skype.messages'::regclass::oid::bigint") == before);
  BOOST_TEST(partitions(side) == partitions(staged));
  BOOST_TEST(messages_definition(side) == messages_definition(staged));
  BOOST_TEST(messages_definition(side, partition) == messages_definition(staged, partition));
  BOOST_TEST(messages_definition(side, partition).find("content_tsv tsvector") !=
             std::string::npos);
  BOOST_TEST(messages_definition(side, partition).find(partition.substr(6) + "_pkey") !=
             std::string::npos);
  BOOST_TEST(side.scalar("SELECT count(*) FROM pg_constraint WHERE conrelid = '" + partition +
                         "'::regclass AND contype = 'c'") == 0);
  BOOST_TEST(side.scalar("SELECT count(*) FROM pg_class WHERE oid = '" + partition +
                         "'::regclass AND reloptions IS NULL") == 1);
  const bool split = std::string(mode) == "split";
  BOOST_TEST(r["side_table"]["parts"] == (split ? 2 : 1));
  BOOST_TEST(hash_parts_of(side, partition) == (split ? 2 : 0));
  if (split) {
    // Its parts are in schema skype, named after it, each with every index (named after
    // the part) under the partitioned index it belongs to, no check left, autovacuum on.
    for (const std::string& part : {partition + "_p0", partition + "_p1"})
      BOOST_TEST_CONTEXT(part) {
        BOOST_TEST(side.text("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = '" +
                             part + "'::regclass")
                       .find("FOR VALUES WITH (modulus 2, remainder ") == 0U);
        BOOST_TEST(side.scalar("SELECT count(*) FROM pg_index x JOIN pg_inherits i ON "
                               "i.inhrelid = x.indexrelid WHERE x.indrelid = '" +
                               part + "'::regclass AND x.indexrelid::regclass::text LIKE '" + part +
                               "\\_%'") == 5);
        BOOST_TEST(side.scalar("SELECT count(*) FROM pg_constraint WHERE conrelid = '" + part +
                               "'::regclass AND contype = 'c'") == 0);
        BOOST_TEST(side.scalar("SELECT count(*) FROM pg_class WHERE oid = '" + part +
                               "'::regclass AND reloptions IS NULL") == 1);
        BOOST_TEST(side.scalar("SELECT count(*) FROM " + part) > 0);
      }
  }
  for (const char* table : {"messages", "conversations", "participants", "attachments"})
    BOOST_TEST_CONTEXT(table) {
      BOOST_TEST(rows_md5(side, table) == rows_md5(staged, table));
    }
  BOOST_TEST(side_tables(side) == 0);
  // The attached partition works like a staged one: the next export merges into it.
  std::vector<TestConversation> more = three_conversations();
  more[2].messages = numbered(400, 439, 1);
  r = load_all(side, make_info("attach-next"), more, 40, options_for(mode));
  BOOST_TEST(r["index_rebuild"] == false);
  BOOST_TEST(r["updated"] == 30);
  BOOST_TEST(r["inserted"] == 10);
}

BOOST_DATA_TEST_CASE(each_account_gets_its_own_partition, boost::unit_test::data::make(modes),
                     mode) {
  TestDatabase db;
  TestDatabase alone;
  load_all(db, make_info("first"), three_conversations(), 40, options_for("staged"));
  // The same conversation ids and message ids, of another account: stored beside the first
  // account's, exactly as if that account were alone in its database.
  nlohmann::json r = load_all(db, make_info("second", "8:live:second"), three_conversations(), 40,
                              options_for(mode));
  load_all(alone, make_info("second", "8:live:second"), three_conversations(), 40,
           options_for("staged"));
  BOOST_TEST(r["index_rebuild"] == (std::string(mode) != "staged"));
  BOOST_TEST(r["inserted"] == 250);
  BOOST_TEST(count(db, "messages") == 500);
  const std::string second = partition_of(db, "8:live:second");
  BOOST_TEST(partition_of(db, "8:live:owner") != second);
  BOOST_TEST(partitions(db).find(" FOR VALUES IN ('8:live:second')") != std::string::npos);
  BOOST_TEST(messages_definition(db, second) == messages_definition(alone, second));
  BOOST_TEST(db.text("SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM (SELECT "
                     "conversation_id, message_id, content_text, content_tsv, source_position "
                     "FROM skype.messages WHERE account_id = '8:live:second') r") ==
             alone.text("SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM (SELECT "
                        "conversation_id, message_id, content_text, content_tsv, "
                        "source_position FROM skype.messages) r"));
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.attachments WHERE account_id = "
                       "'8:live:second'") == 3);
  BOOST_TEST(db.scalar("SELECT message_count FROM skype.conversations WHERE account_id = "
                       "'8:live:second' AND conversation_id = '8:alice'") == 100);
  // Queries over all accounts see both; one account's rows come from its partition alone.
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE content_tsv @@ "
                       "'number & 7'::tsquery") == 2);
  std::string plan;
  {
    pqxx::work tx(db.connection());
    for (const pqxx::row& line :
         tx.exec("EXPLAIN (COSTS OFF) SELECT * FROM skype.messages WHERE account_id = "
                 "'8:live:second'"))
      plan += line[0].c_str() + std::string("\n");
  }
  BOOST_TEST(plan.find(second.substr(6)) != std::string::npos);
  BOOST_TEST(plan.find(partition_of(db, "8:live:owner").substr(6)) == std::string::npos);
  BOOST_TEST(side_tables(db) == 0);
}

BOOST_DATA_TEST_CASE(accounts_whose_ids_read_alike_get_partitions_of_their_own,
                     boost::unit_test::data::make(modes), mode) {
  // Quotes, non-ASCII and case: the partitions' names keep letters and digits of the id,
  // and a hash of all of it tells them apart.
  TestDatabase db;
  const std::vector<std::string> users = {"8:Live:Ünïcode'quote\"x", "8:live:unicode_quote_x",
                                          "8:live:UNICODE quote x"};
  for (std::size_t i = 0; i < users.size(); ++i) {
    nlohmann::json r = load_all(db, make_info("id" + std::to_string(i), users[i]),
                                three_conversations(), 40, options_for(mode));
    BOOST_TEST(r["status"] == "loaded");
  }
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                       "'skype.messages'::regclass") == 3);
  BOOST_TEST(db.scalar("SELECT count(DISTINCT tableoid) FROM skype.messages") ==
             (std::string(mode) == "split" ? 6 : 3));
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE account_id = "
                       "'8:Live:Ünïcode''quote\"x'") == 250);
  BOOST_TEST(side_tables(db) == 0);
}

BOOST_DATA_TEST_CASE(a_side_load_whose_account_got_a_partition_meanwhile_merges_like_a_staged_one,
                     boost::unit_test::data::make({"side", "split"}), mode) {
  TestDatabase db;
  TestDatabase expected;
  { Loader(DbConfig{db.conninfo()}).ensure_schema(); }
  // The side-table load begins while the account has no partition ...
  Loader side(DbConfig{db.conninfo()}, options_for(mode));
  side.ensure_schema();
  std::vector<TestConversation> mine = three_conversations();
  mine[0].messages = numbered(1, 120, 1);  // newer versions than the other export's
  BOOST_REQUIRE(side.begin_export(make_info("late"), "Owner") == BeginResult::started);
  for (const BatchPtr& b : make_batches(mine, 40)) side.load_batch(*b);
  // ... another export of the account is loaded meanwhile, creating it ...
  std::vector<TestConversation> theirs = three_conversations();
  theirs[1].messages = numbered(200, 309);
  load_all(db, make_info("early"), theirs, 40, options_for("staged"));
  // ... and the side rows are merged into that partition like a staged export's.
  nlohmann::json r = side.finish_export({});
  BOOST_TEST(r["status"] == "loaded");
  BOOST_TEST(r["side_table"]["attached"] == false);
  BOOST_TEST(r["side_table"]["parts"] == (std::string(mode) == "split" ? 2 : 1));
  BOOST_TEST(r["index_rebuild"] == false);
  BOOST_TEST(r["updated"] == 120);
  BOOST_TEST(r["unchanged"] == 130);
  BOOST_TEST(r["inserted"] == 0);
  load_all(expected, make_info("early"), theirs, 40, options_for("staged"));
  load_all(expected, make_info("late"), mine, 40, options_for("staged"));
  for (const char* table : {"messages", "conversations", "participants", "attachments"})
    BOOST_TEST_CONTEXT(table) {
      BOOST_TEST(rows_md5(db, table) == rows_md5(expected, table));
    }
  BOOST_TEST(partitions(db) == partitions(expected));
  BOOST_TEST(side_tables(db) == 0);
}

/// A later export of the account of three_conversations(): many new messages, newer and
/// older versions and ties of stored ones, repeats (among them ids that only repeat, one of
/// them stored), a conversation in two runs, and attachments on a replaced message. Its
/// first batch is new messages when `new_first`, else stored ones.
std::vector<TestConversation> later_export(bool new_first) {
  std::vector<TestConversation> c = three_conversations();
  c[0].messages = numbered(1, 120);  // all ties: the stored rows stay
  c[0].messages[10].version += 1;    // 1000011: newer, replaces
  c[0].messages[10].content = "newer 11";
  skype_etl::Attachment a;
  a.kind = "file";
  a.name = "newer.pdf";
  c[0].messages[10].attachments = {a};
  c[0].messages[5].version -= 1;  // 1000006: older, stays (and its 2 attachments)
  c[0].messages[5].content = "older 6";
  c[1].messages = numbered(200, 499);     // 200 new
  TestMessage repeat = c[1].messages[0];  // 1000200 again, newer: replaces stored
  repeat.version += 5;
  repeat.content = "repeat newer 200";
  c[1].messages.push_back(repeat);
  c[2].messages = numbered(600, 799);  // a new run of the work conversation: 200 new
  TestConversation back;               // family again, after other conversations
  back.id = "19:family@thread.skype";
  back.display_name = "Family";
  back.messages = numbered(800, 809);
  back.messages.push_back(numbered(20, 20, 3, "repeat-only")[0]);  // stored id, newer
  back.messages.push_back(numbered(30, 30, 0, "repeat-only")[0]);  // stored id, a tie
  back.messages.push_back(numbered(900, 900)[0]);                  // new id, only repeats
  back.messages.push_back(numbered(900, 900, 1, "second")[0]);
  c.push_back(back);
  if (new_first) std::rotate(c.begin(), c.begin() + 2, c.begin() + 3);  // work's new run first
  return c;
}

BOOST_DATA_TEST_CASE(a_large_later_export_rewrites_or_merges_into_the_partition_like_a_staged_one,
                     boost::unit_test::data::make({0, 1, 2, 3, 4, 5}), case_number) {
  // 0: the export adds more new messages than half the stored ones, and its side table
  // replaces the account's partition; 1: the partition holds many more, and the side rows
  // are merged like a staged export's; 2: the first batch is of stored messages, so the
  // export is staged from the start. 3-5: the same after a first load split into parts
  // (SideSplit), whose partitioned partition a rewrite replaces and merges go into.
  const int variant = case_number % 3;
  const char* const first_mode = case_number < 3 ? "staged" : "split";
  const int stored_factor = variant == 1 ? 1000 : 1;
  const bool new_first = variant != 2;
  TestDatabase db;
  TestDatabase expected;
  std::vector<TestConversation> first = three_conversations();
  for (int i = 1; i < stored_factor; i += 200) {
    TestConversation more;
    more.id = "19:archive" + std::to_string(i) + "@thread.skype";
    more.messages = numbered(10000 + i, 10000 + i + 199);
    first.push_back(more);
  }
  load_all(db, make_info("first"), first, 40, options_for(first_mode));
  load_all(expected, make_info("first"), first, 40, options_for("staged"));
  const std::string partition = partition_of(db, "8:live:owner");
  BOOST_TEST(hash_parts_of(db, partition) == (case_number < 3 ? 0 : 2));
  ExportInfo later = make_info("later");
  later.file_size = 1ULL << 40U;  // larger than any partition: worth a side-table load
  nlohmann::json r = load_all(db, later, later_export(new_first), 40, options_for("side"));
  nlohmann::json want =
      load_all(expected, later, later_export(new_first), 40, options_for("staged"));
  BOOST_TEST(r["status"] == "loaded");
  BOOST_TEST(r["side_table"].is_null() == (variant == 2));
  if (variant != 2) {
    BOOST_TEST(r["side_table"]["rewritten"] == (variant == 0));
    BOOST_TEST(r["side_table"]["attached"] == (variant == 0));
  }
  for (const char* count_name : {"messages", "inserted", "updated", "unchanged", "superseded"})
    BOOST_TEST_CONTEXT(count_name) {
      BOOST_TEST(r[count_name] == want[count_name]);
    }
  if (variant != 1) {
    BOOST_TEST(r["inserted"] == 411);
    BOOST_TEST(r["updated"] == 3);
  }
  for (const char* table : {"messages", "conversations", "participants", "attachments"})
    BOOST_TEST_CONTEXT(table) {
      BOOST_TEST(rows_md5(db, table) == rows_md5(expected, table));
    }
  BOOST_TEST(partitions(db) == partitions(expected));
  BOOST_TEST(partition_of(db, "8:live:owner") == partition);
  BOOST_TEST(messages_definition(db, partition) == messages_definition(expected, partition));
  // A rewrite replaces a split partition by a table; merges keep its parts.
  BOOST_TEST(hash_parts_of(db, partition) == (case_number < 3 || variant == 0 ? 0 : 2));
  BOOST_TEST(db.text("SELECT content_text FROM skype.messages WHERE message_id = '1000200'") ==
             "repeat newer 200");
  BOOST_TEST(db.text("SELECT name FROM skype.attachments WHERE message_id = '1000011'") ==
             "newer.pdf");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.attachments WHERE message_id = '1000006'") == 2);
  BOOST_TEST(side_tables(db) == 0);
}

BOOST_DATA_TEST_CASE(accounts_of_the_table_before_partitions_keep_loading_into_it,
                     boost::unit_test::data::make(modes), mode) {
  // A database from before migration 6: its table became the partition of its accounts.
  TestDatabase db;
  {
    skype_etl::detail::PgConnection conn(db.conninfo());
    skype_etl::detail::apply_migrations(conn, 5);
    conn.exec(
        "INSERT INTO skype.messages (account_id, conversation_id, message_id, content_text, "
        "export_id) VALUES ('live:owner', '8:alice', '1000200', 'old', 1), ('live:gone', "
        "'c', '1', 'x', 1)");
    // (Ids then lacked the owner's "8:": migration 8 makes them canonical.)
    skype_etl::detail::ensure_schema(conn);
    conn.exec("DELETE FROM skype.messages WHERE account_id = '8:live:gone'");
  }
  nlohmann::json r = load_all(db, make_info("after"), three_conversations(), 40, options_for(mode));
  BOOST_TEST(r["index_rebuild"] == false);
  BOOST_TEST(r["inserted"] == 249);
  BOOST_TEST(r["updated"] == 1);
  BOOST_TEST(partition_of(db, "8:live:owner") == "skype.messages_legacy");
  // An account the old table was made to take, but with no rows there any more: its rows
  // go there too (a side-table load finds out when attaching).
  r = load_all(db, make_info("gone", "8:live:gone"), three_conversations(), 40, options_for(mode));
  BOOST_TEST(r["inserted"] == 250);
  BOOST_TEST(partition_of(db, "8:live:gone") == "skype.messages_legacy");
  // The merge (in a side-table load, after the failed attach) gives every conversation of
  // the export a row, counted from its messages, and every attachment.
  BOOST_TEST(
      db.scalar("SELECT count(*) FROM skype.conversations WHERE account_id = '8:live:gone'") ==
      db.scalar("SELECT count(*) FROM skype.conversations WHERE account_id = '8:live:owner'"));
  BOOST_TEST(conversations_disagreeing_with_messages(db) == 0);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.attachments WHERE account_id = '8:live:gone'") ==
             db.scalar("SELECT count(*) FROM skype.attachments WHERE account_id = '8:live:owner'"));
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                       "'skype.messages'::regclass") == 1);
  BOOST_TEST(side_tables(db) == 0);
}

BOOST_DATA_TEST_CASE(one_or_three_streams_give_the_same_tables,
                     boost::unit_test::data::make({1, 3, -1, -3}), case_streams) {
  // Negative: split (SideSplit::always), into as many parts as streams, but for one
  // stream, which is never split.
  const int streams = std::abs(case_streams);
  TestDatabase staged;
  TestDatabase side;
  load_all(staged, make_info("streams"), three_conversations(), 7, options_for("staged"));
  LoaderOptions options = options_for(case_streams < 0 ? "split" : "side");
  options.copy_streams = static_cast<std::size_t>(streams);
  options.copy_flush_bytes = 100;  // many small buffers spread over the streams
  nlohmann::json r = load_all(side, make_info("streams"), three_conversations(), 7, options);
  BOOST_TEST(r["side_table"]["streams"] == streams);
  BOOST_TEST(r["side_table"]["parts"] == (case_streams < -1 ? streams : 1));
  for (const char* table : {"messages", "conversations", "participants", "attachments"})
    BOOST_TEST_CONTEXT(table) {
      BOOST_TEST(rows_md5(side, table) == rows_md5(staged, table));
    }
}

BOOST_AUTO_TEST_CASE(views_grants_and_comments_on_messages_stay_through_a_side_load) {
  TestDatabase staged;
  TestDatabase db;
  load_all(staged, make_info("view"), three_conversations(), 40, options_for("staged"));
  { Loader(DbConfig{db.conninfo()}).ensure_schema(); }
  db.text("CREATE VIEW public.recent AS SELECT message_id, sent_at FROM skype.messages");
  db.text("GRANT SELECT ON skype.messages TO PUBLIC");
  db.text("COMMENT ON TABLE skype.messages IS 'our archive'");
  nlohmann::json r =
      load_all(db, make_info("view"), three_conversations(), 40, options_for("side"));
  BOOST_TEST(r["status"] == "loaded");
  BOOST_TEST(r["side_table"]["attached"] == true);
  BOOST_TEST(db.scalar("SELECT count(*) FROM public.recent") == 250);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = "
                       "'skype.messages'::regclass AND a.grantee = 0") == 1);
  BOOST_TEST(db.text("SELECT obj_description('skype.messages'::regclass, 'pg_class')") ==
             "our archive");
  for (const char* table : {"messages", "attachments"}) BOOST_TEST_CONTEXT(table) {
      BOOST_TEST(rows_md5(db, table) == rows_md5(staged, table));
    }
  const std::string partition = partition_of(db, "8:live:owner");
  BOOST_TEST(messages_definition(db, partition) == messages_definition(staged, partition));
  BOOST_TEST(side_tables(db) == 0);
}

BOOST_AUTO_TEST_CASE(a_trigger_or_publication_on_messages_makes_the_load_staged) {
  for (const std::string change :
       {"CREATE TABLE public.seen (n int); CREATE FUNCTION public.count_row() RETURNS trigger "
        "LANGUAGE plpgsql AS $$BEGIN INSERT INTO public.seen VALUES (1); RETURN NEW; END$$; "
        "CREATE TRIGGER counted AFTER INSERT ON skype.messages FOR EACH ROW EXECUTE FUNCTION "
        "public.count_row()",
        "CREATE PUBLICATION archive FOR TABLE skype.messages"}) {
    BOOST_TEST_CONTEXT(change) {
      TestDatabase db;
      { Loader(DbConfig{db.conninfo()}).ensure_schema(); }
      db.text(change);
      nlohmann::json r =
          load_all(db, make_info("kept"), three_conversations(), 40, options_for("side"));
      BOOST_TEST(r["index_rebuild"] == false);
      BOOST_TEST(r["side_table"].is_null());
      BOOST_TEST(count(db, "messages") == 250);
      if (change.find("TRIGGER") != std::string::npos)
        BOOST_TEST(db.scalar("SELECT count(*) FROM public.seen") == 250);
      BOOST_TEST(side_tables(db) == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(ensure_schema_drops_side_tables_whose_load_is_gone_and_keeps_live_ones) {
  TestDatabase db;
  { Loader(DbConfig{db.conninfo()}).ensure_schema(); }
  db.text("CREATE TABLE skype_load.messages_1_1 (LIKE skype.messages)");
  db.text("CREATE TABLE skype_load.messages_2_2 (LIKE skype.messages)");
  // A live load holds its table's lock (here: the test's own session).
  db.text(
      "SELECT pg_advisory_lock(hashtextextended('skype-etl load table ' || "
      "'skype_load.messages_2_2', 0))");
  { Loader(DbConfig{db.conninfo()}).ensure_schema(); }
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'skype_load' AND "
                       "tablename = 'messages_1_1'") == 0);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'skype_load' AND "
                       "tablename = 'messages_2_2'") == 1);
  db.text("SELECT pg_advisory_unlock_all()");
  { Loader(DbConfig{db.conninfo()}).ensure_schema(); }
  BOOST_TEST(side_tables(db) == 0);
}

// Later exports of an account each change a little of its partition: what they changed
// since the last ANALYZE adds up, or the statistics would never be refreshed by the load.
BOOST_AUTO_TEST_CASE(changes_of_earlier_loads_count_towards_a_stale_partition) {
  TestDatabase db;
  db.text("CREATE TABLE stats_probe AS SELECT g AS id FROM generate_series(1, 10000) g");
  db.text("ANALYZE stats_probe");
  skype_etl::detail::PgConnection conn(db.conninfo());
  skype_etl::detail::AccountPartition partition(conn);
  // This load's 900 rows alone are under a tenth of the table.
  BOOST_TEST(!partition.statistics_stale("public.stats_probe", 900));
  // An earlier load committed 800 changed rows without analyzing; counted once the server's
  // statistics have them (pg_stat_force_next_flush makes the next idle report them).
  db.text("INSERT INTO stats_probe SELECT g FROM generate_series(1, 800) g");
  db.text("SELECT pg_stat_force_next_flush()");
  db.text("SELECT 1");
  long long modified = 0;
  for (int i = 0; i < 100 && modified < 800; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    pqxx::connection reader(db.conninfo());
    pqxx::nontransaction q(reader);
    modified = q.exec1(
                    "SELECT coalesce((SELECT n_mod_since_analyze FROM pg_stat_all_tables "
                    "WHERE relid = 'stats_probe'::regclass), 0)")[0]
                   .as<long long>();
  }
  BOOST_REQUIRE(modified >= 800);
  skype_etl::detail::PgConnection later(db.conninfo());
  skype_etl::detail::AccountPartition again(later);
  BOOST_TEST(again.statistics_stale("public.stats_probe", 900));
  // A few rows change no plan, whatever the table's size.
  db.text("CREATE TABLE stats_small AS SELECT g AS id FROM generate_series(1, 50) g");
  db.text("ANALYZE stats_small");
  BOOST_TEST(!again.statistics_stale("public.stats_small", 200));
  BOOST_TEST(!again.statistics_stale("public.no_such_table", 5000));
}

/// Makes every row written to skype.exports (in the export's transaction, after the merge's
/// settings) record the session's synchronous_commit and maintenance_work_mem (in bytes) in
/// public.seen_settings.
void record_settings_at_commit(TestDatabase& db) {
  Loader(DbConfig{db.conninfo()}).ensure_schema();
  db.scalar(
      "CREATE TABLE public.seen_settings (synchronous_commit text, maintenance_work_mem "
      "bigint)");
  db.scalar(R"sql(CREATE FUNCTION public.record_settings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.seen_settings VALUES (current_setting('synchronous_commit'),
    pg_size_bytes(current_setting('maintenance_work_mem')));
  RETURN NEW;
END $$)sql");
  db.scalar(
      "CREATE TRIGGER record_settings AFTER INSERT ON skype.exports FOR EACH ROW EXECUTE "
      "FUNCTION public.record_settings()");
}

/// A session setting as a fresh connection to `db` gets it (the server's, the database's).
std::string fresh_session_setting(TestDatabase& db, const std::string& name) {
  pqxx::connection fresh(db.conninfo());
  pqxx::nontransaction tx(fresh);
  return tx.exec1("SELECT current_setting(" + tx.quote(name) + ")")[0].as<std::string>();
}

BOOST_DATA_TEST_CASE(the_export_commits_with_synchronous_commit_off_for_its_session_only,
                     boost::unit_test::data::make(modes), mode) {
  TestDatabase db;
  // The test server runs with synchronous_commit off: this database's sessions get it on.
  db.scalar("ALTER DATABASE " + db.name() + " SET synchronous_commit = on");
  record_settings_at_commit(db);
  BOOST_TEST(fresh_session_setting(db, "synchronous_commit") == "on");
  const auto result = load_all(db, make_info("sync"), three_conversations(), 40, options_for(mode));
  BOOST_TEST(result.value("status", "") == "loaded");
  BOOST_TEST(db.text("SELECT string_agg(synchronous_commit, ',') FROM public.seen_settings") ==
             "off");
  // Nothing of it outlives the loader's sessions.
  BOOST_TEST(fresh_session_setting(db, "synchronous_commit") == "on");
}

BOOST_AUTO_TEST_CASE(index_builds_take_the_larger_of_the_servers_and_the_tools_memory) {
  constexpr long long mb = 1LL << 20;
  struct Case {
    std::string database_setting;         // ALTER DATABASE ... SET maintenance_work_mem
    std::optional<std::uint64_t> option;  // LoaderOptions::maintenance_work_mem
    long long expected_at_least, expected_at_most;
  };
  const std::vector<Case> cases{
      // The tool's default is more than this (256MB, or a 16th of this machine's RAM).
      {"64MB", std::nullopt, 64 * mb + 1, 256 * mb},
      // A server's larger setting is never lowered.
      {"1GB", std::nullopt, 1024 * mb, 1024 * mb},
      // The option is used as given...
      {"64MB", 300 * mb, 300 * mb, 300 * mb},
      // ... but lowers no larger setting either.
      {"1GB", 300 * mb, 1024 * mb, 1024 * mb},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT("database " << c.database_setting << ", option "
                                   << (c.option ? std::to_string(*c.option) : "none")) {
      TestDatabase db;
      db.scalar("ALTER DATABASE " + db.name() + " SET maintenance_work_mem = '" +
                c.database_setting + "'");
      record_settings_at_commit(db);
      LoaderOptions options = options_for("staged");
      options.maintenance_work_mem = c.option;
      load_all(db, make_info("mwm"), three_conversations(), 40, options);
      const long long seen = db.scalar("SELECT maintenance_work_mem FROM public.seen_settings");
      BOOST_TEST(seen >= c.expected_at_least);
      BOOST_TEST(seen <= c.expected_at_most);
      BOOST_TEST(fresh_session_setting(db, "maintenance_work_mem") == c.database_setting);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
