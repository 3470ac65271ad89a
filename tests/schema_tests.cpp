#define BOOST_TEST_MODULE schema_tests
#include <boost/test/unit_test.hpp>

#include <future>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "core/identity.hpp"
#include "load/pg_connection.hpp"
#include "load/schema.hpp"
#include "skype_etl/errors.hpp"
#include "support/identity_cases.hpp"
#include "support/test_database.hpp"

using skype_etl::DatabaseError;
using skype_etl::detail::apply_migrations;
using skype_etl::detail::current_schema_version;
using skype_etl::detail::ensure_schema;
using skype_etl::detail::latest_schema_version;
using skype_etl::detail::PgConnection;
using skype_etl::detail::PgResult;
using skype_etl::test::TestDatabase;

BOOST_AUTO_TEST_SUITE(schema_tests)

BOOST_AUTO_TEST_CASE(creates_the_schema_from_nothing) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  BOOST_TEST(current_schema_version(conn) == 0);
  BOOST_TEST(ensure_schema(conn) == 0);
  BOOST_TEST(current_schema_version(conn) == latest_schema_version());
  for (const char* table :
       {"accounts", "exports", "conversations", "participants", "messages", "attachments"})
    BOOST_TEST(db.scalar(std::string("SELECT count(*) FROM pg_tables WHERE schemaname = "
                                     "'skype' AND tablename = '") +
                         table + "'") == 1);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'skype' AND "
                       "indexname = 'messages_content_tsv_idx'") == 1);
}

BOOST_AUTO_TEST_CASE(ensure_schema_is_idempotent) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  ensure_schema(conn);
  BOOST_TEST(ensure_schema(conn) == latest_schema_version());
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.schema_version") == latest_schema_version());
}

BOOST_AUTO_TEST_CASE(migrates_an_older_schema_keeping_its_rows) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  BOOST_TEST(apply_migrations(conn, 1) == 0);
  BOOST_TEST(current_schema_version(conn) == 1);
  BOOST_TEST(db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                       "'skype' AND table_name = 'messages' AND column_name = 'content_tsv'") == 0);
  conn.exec(
      "INSERT INTO skype.messages (account_id, conversation_id, message_id, content_text, "
      "export_id) VALUES ('a', 'c', '1', 'Hello Wörld', 1)");
  BOOST_TEST(ensure_schema(conn) == 1);
  BOOST_TEST(current_schema_version(conn) == latest_schema_version());
  BOOST_TEST(db.text("SELECT content_tsv::text FROM skype.messages") == "'hello':1 'wörld':2");
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'skype' AND "
                       "tablename = 'messages'") == 5);
}

BOOST_AUTO_TEST_CASE(migration_4_gives_identifiers_collation_c_and_conversation_led_keys) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  apply_migrations(conn, 3);
  conn.exec(
      "INSERT INTO skype.messages (account_id, conversation_id, message_id, sender_id, "
      "message_type, content_text, export_id) VALUES ('a', 'c', '1', '8:b', 'RichText', 'Hi', "
      "1), ('a', 'c', '2', '8:b', 'Text', 'Ho', 1)");
  conn.exec(
      "INSERT INTO skype.attachments (account_id, conversation_id, message_id, ordinal) "
      "VALUES ('a', 'c', '1', 0)");
  BOOST_TEST(apply_migrations(conn, 4) == 3);
  for (const char* column :
       {"account_id", "conversation_id", "message_id", "sender_id", "message_type"})
    BOOST_TEST(db.text(std::string("SELECT coalesce(collation_name, '') FROM "
                                   "information_schema.columns WHERE table_schema = 'skype' AND "
                                   "table_name = 'messages' AND column_name = '") +
                       column + "'") == "C");
  BOOST_TEST(db.text("SELECT coalesce(collation_name, '') FROM information_schema.columns WHERE "
                     "table_schema = 'skype' AND table_name = 'messages' AND column_name = "
                     "'content_text'") == "");
  BOOST_TEST(db.text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = "
                     "'messages_pkey'") == "PRIMARY KEY (conversation_id, message_id, account_id)");
  BOOST_TEST(db.text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = "
                     "'attachments_pkey'") ==
             "PRIMARY KEY (conversation_id, message_id, account_id, ordinal)");
  BOOST_TEST(db.text("SELECT string_agg(indexdef, ';' ORDER BY indexname) FROM pg_indexes "
                     "WHERE schemaname = 'skype' AND tablename = 'messages' AND indexname <> "
                     "'messages_pkey'") ==
             "CREATE INDEX messages_content_tsv_idx ON skype.messages USING gin (content_tsv);"
             "CREATE INDEX messages_conversation_time_idx ON skype.messages USING btree "
             "(conversation_id, sent_at);"
             "CREATE INDEX messages_sender_time_idx ON skype.messages USING btree (sender_id, "
             "sent_at);"
             "CREATE INDEX messages_type_idx ON skype.messages USING btree (message_type)");
  // The rows survive, the primary key still refuses a duplicate, and the identifiers
  // still join with the tables whose columns keep the database's collation.
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages m JOIN skype.attachments t USING "
                       "(account_id, conversation_id, message_id)") == 1);
  BOOST_CHECK_THROW(conn.exec("INSERT INTO skype.messages (account_id, conversation_id, "
                              "message_id, export_id) VALUES ('a', 'c', '1', 2)"),
                    DatabaseError);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages m JOIN (VALUES ('c'::text)) v(c) "
                       "ON v.c = m.conversation_id") == 2);
}

BOOST_AUTO_TEST_CASE(migration_6_partitions_messages_keeping_rows_indexes_and_grants) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  apply_migrations(conn, 5);
  conn.exec(
      "INSERT INTO skype.messages (account_id, conversation_id, message_id, sender_id, "
      "content_text, export_id) VALUES ('b', 'c', '1', '8:x', 'Hi', 1), ('a''s', 'c', '1', "
      "'8:y', 'Ho', 2), ('b', 'c', '2', '8:x', 'Hu', 1)");
  conn.exec("GRANT SELECT ON skype.messages TO PUBLIC");
  BOOST_TEST(apply_migrations(conn, 6) == 5);
  BOOST_TEST(db.text("SELECT relkind FROM pg_class WHERE oid = 'skype.messages'::regclass") == "p");
  BOOST_TEST(db.text("SELECT pg_get_partkeydef('skype.messages'::regclass)") ==
             "LIST (account_id)");
  // The old table, its rows and indexes kept, is the partition of the accounts it held.
  BOOST_TEST(db.text("SELECT string_agg(c.oid::regclass || ' ' || pg_get_expr(c.relpartbound, "
                     "c.oid), ';') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                     "WHERE i.inhparent = 'skype.messages'::regclass") ==
             "skype.messages_legacy FOR VALUES IN ('a''s', 'b')");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages") == 3);
  BOOST_TEST(db.text("SELECT content_tsv::text FROM skype.messages WHERE account_id = 'a''s'") ==
             "'ho':1");
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'skype' AND "
                       "tablename = 'messages_legacy'") == 5);
  BOOST_TEST(db.text("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
                     "WHERE schemaname = 'skype' AND tablename = 'messages'") ==
             "messages_content_tsv_idx,messages_conversation_time_idx,messages_pkey,"
             "messages_sender_time_idx,messages_type_idx");
  // Every index of the old table is a partition of the parent's, none built anew.
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = "
                       "i.inhrelid WHERE c.relkind = 'i' AND c.relname LIKE "
                       "'messages_legacy_%'") == 5);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = "
                       "'skype.messages'::regclass AND a.grantee = 0 AND a.privilege_type = "
                       "'SELECT'") == 1);
  BOOST_TEST(db.text("SELECT col_description('skype.messages'::regclass, attnum) FROM "
                     "pg_attribute WHERE attrelid = 'skype.messages'::regclass AND attname = "
                     "'content_tsv'")
                 .find("simple") != std::string::npos);
  // The key still refuses a duplicate; an account the old table did not hold has no
  // partition until a load creates one.
  BOOST_CHECK_THROW(conn.exec("INSERT INTO skype.messages (account_id, conversation_id, "
                              "message_id, export_id) VALUES ('b', 'c', '1', 3)"),
                    DatabaseError);
  BOOST_CHECK_THROW(conn.exec("INSERT INTO skype.messages (account_id, conversation_id, "
                              "message_id, export_id) VALUES ('new', 'c', '1', 3)"),
                    DatabaseError);
}

BOOST_AUTO_TEST_CASE(migration_6_drops_an_empty_old_table) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  apply_migrations(conn, 5);
  ensure_schema(conn);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                       "'skype.messages'::regclass") == 0);
  BOOST_TEST(db.text("SELECT to_regclass('skype.messages_legacy')::text").empty());
}

BOOST_AUTO_TEST_CASE(migration_6_stops_at_a_view_on_messages_and_names_it) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  apply_migrations(conn, 5);
  conn.exec("CREATE VIEW public.recent AS SELECT message_id FROM skype.messages");
  BOOST_CHECK_EXCEPTION(ensure_schema(conn), DatabaseError, [](const DatabaseError& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE(what);
    return what.find("recent") != std::string::npos && what.find("Drop them") != std::string::npos;
  });
  BOOST_TEST(current_schema_version(conn) == 5);
  BOOST_TEST(db.text("SELECT relkind FROM pg_class WHERE oid = 'skype.messages'::regclass") == "r");
}

BOOST_AUTO_TEST_CASE(migration_7_leads_the_primary_key_with_message_id_in_every_partition) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  apply_migrations(conn, 5);
  conn.exec(
      "INSERT INTO skype.messages (account_id, conversation_id, message_id, content_text, "
      "export_id) VALUES ('b', 'c', '1', 'Hi', 1), ('b', 'd', '1', 'Ho', 1)");
  apply_migrations(conn, 6);
  conn.exec("CREATE TABLE skype.messages_a PARTITION OF skype.messages FOR VALUES IN ('a')");
  conn.exec(
      "INSERT INTO skype.messages (account_id, conversation_id, message_id, export_id) VALUES "
      "('a', 'c', '1', 2)");
  BOOST_TEST(apply_migrations(conn, 7) == 6);
  BOOST_TEST(db.text("SELECT string_agg(c.conrelid::regclass || ' ' || "
                     "pg_get_constraintdef(c.oid), ';' ORDER BY c.conrelid::regclass::text) "
                     "FROM pg_constraint c WHERE c.contype = 'p' AND c.connamespace = "
                     "'skype'::regnamespace AND c.conrelid::regclass::text LIKE "
                     "'skype.messages%'") ==
             "skype.messages PRIMARY KEY (message_id, conversation_id, account_id);"
             "skype.messages_a PRIMARY KEY (message_id, conversation_id, account_id);"
             "skype.messages_legacy PRIMARY KEY (message_id, conversation_id, account_id)");
  // The partitions' key indexes are the parent's, under the names a load gives them.
  BOOST_TEST(db.text("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i "
                     "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                     "'skype.messages_pkey'::regclass") == "messages_a_pkey,messages_legacy_pkey");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages") == 3);
  BOOST_CHECK_THROW(conn.exec("INSERT INTO skype.messages (account_id, conversation_id, "
                              "message_id, export_id) VALUES ('b', 'd', '1', 3)"),
                    DatabaseError);
  // ON CONFLICT names the columns in another order and still finds the key.
  conn.exec(
      "INSERT INTO skype.messages (account_id, conversation_id, message_id, content_text, "
      "export_id) VALUES ('b', 'c', '1', 'Hey', 3) ON CONFLICT (account_id, conversation_id, "
      "message_id) DO UPDATE SET content_text = excluded.content_text");
  BOOST_TEST(db.text("SELECT string_agg(content_text, ',' ORDER BY conversation_id) FROM "
                     "skype.messages WHERE account_id = 'b'") == "Hey,Ho");
}

BOOST_AUTO_TEST_CASE(the_sql_canonical_id_agrees_with_the_loaders) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  ensure_schema(conn);
  // The shared cases, then random strings of the characters the rule looks at.
  std::vector<std::string> raw;
  for (const auto& c : skype_etl::test::k_identity_cases) raw.emplace_back(c.raw);
  const std::vector<std::string> pieces = {"8",     "28",
                                           "4",     "19",
                                           "0",     ":",
                                           "/",     "//",
                                           "h",     "http",
                                           "HTTPS", "s",
                                           "://",   "guest",
                                           "Guest", "*",
                                           " ",     "\t",
                                           "\n",    "\v",
                                           "\f",    "\r",
                                           "a",     "live",
                                           ".cid.", "@thread.skype",
                                           "é",     "+1"};
  std::mt19937 rng(14);
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    const int n = static_cast<int>(rng() % 7);
    for (int k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
    raw.push_back(s);
  }
  const nlohmann::json list(raw);
  PgResult r = conn.exec_params(
      "SELECT skype.canonical_id(v) FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY "
      "AS t(v, n) ORDER BY n",
      std::vector<std::string>{list.dump()});
  BOOST_REQUIRE_EQUAL(r.rows(), static_cast<int>(raw.size()));
  int disagreements = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::string cpp = skype_etl::detail::canonical_person_id(raw[i]);
    if (std::string(r.text(static_cast<int>(i), 0)) != cpp && ++disagreements <= 10)
      BOOST_ERROR("'" << raw[i] << "': SQL '" << r.text(static_cast<int>(i), 0) << "', C++ '" << cpp
                      << "'");
  }
  BOOST_TEST(disagreements == 0);
  BOOST_TEST(db.text("SELECT skype.canonical_id(NULL)").empty());
}

// What a load of schema version 7 or older left: the owner's id without "8:", senders and
// participants as the file wrote them, the thread among the participants.
void insert_version_7_rows(PgConnection& conn) {
  conn.exec(R"sql(
INSERT INTO skype.accounts (account_id, display_name) VALUES ('live:.cid.0123', 'Me'),
  ('28:bot', NULL);
INSERT INTO skype.exports (export_id, account_id, file_name, file_size, file_digest, status)
  VALUES (1, 'live:.cid.0123', 'a.tar', 1, 'sha256:a', 'loaded'),
         (2, '28:bot', 'b.tar', 1, 'sha256:b', 'loaded');
INSERT INTO skype.conversations (account_id, conversation_id) VALUES
  ('live:.cid.0123', '19:team@thread.skype'), ('live:.cid.0123', '8:bob'), ('28:bot', '8:bob');
INSERT INTO skype.participants (account_id, conversation_id, participant_id, display_name,
                                is_owner, last_seen_at) VALUES
  ('live:.cid.0123', '19:team@thread.skype', 'live:.cid.0123', NULL, false, NULL),
  ('live:.cid.0123', '19:team@thread.skype', '8:live:.cid.0123', 'Me', false, '2024-01-02'),
  ('live:.cid.0123', '19:team@thread.skype', 'bob', 'Bobby', false, '2024-01-01'),
  ('live:.cid.0123', '19:team@thread.skype', '8:bob', 'Bob', false, '2024-01-03'),
  ('live:.cid.0123', '19:team@thread.skype', '19:team@thread.skype', 'Team', false, '2024-01-04'),
  ('live:.cid.0123', '8:bob', 'bob', 'Bob', false, NULL),
  ('28:bot', '8:bob', '28:bot', NULL, false, NULL);
-- The account's partition as a load created it: named after the account, with indexes
-- named after it (the loader's) and some named by ATTACH.
DO $$
DECLARE
  n text := 'messages_' || left(trim(both '_' FROM regexp_replace(lower('live:.cid.0123'),
            '[^a-z0-9]+', '_', 'g')), 20) || '_' || left(md5('live:.cid.0123'), 8);
BEGIN
  EXECUTE format('CREATE TABLE skype.%I (LIKE skype.messages INCLUDING ALL EXCLUDING INDEXES)', n);
  EXECUTE format('CREATE UNIQUE INDEX %I ON skype.%I (message_id, conversation_id, account_id)',
                 n || '_pkey', n);
  EXECUTE format('ALTER TABLE skype.%I ADD CONSTRAINT %I PRIMARY KEY USING INDEX %I', n,
                 n || '_pkey', n || '_pkey');
  EXECUTE format('CREATE INDEX %I ON skype.%I (conversation_id, sent_at)',
                 n || '_conversation_time_idx', n);
  EXECUTE format('ALTER TABLE skype.messages ATTACH PARTITION skype.%I FOR VALUES IN (%L)', n,
                 'live:.cid.0123');
END $$;
-- A partition of several accounts (as the table from before partitions became).
CREATE TABLE skype.messages_shared PARTITION OF skype.messages FOR VALUES IN ('28:bot', 'alice.old');
INSERT INTO skype.messages (account_id, conversation_id, message_id, sender_id, content_text,
                            details, export_id) VALUES
  ('live:.cid.0123', '19:team@thread.skype', '1', 'bob', 'hi', '{"mentions": [{"id": "alice",
   "name": "A"}, {"id": "*", "name": "all"}], "quote": {"author_id": "bob", "text": "q"},
   "call": {"state": "ended", "participants": [{"id": "live:.cid.0123", "name": "Me"}]},
   "contacts": [{"id": "dave", "name": "D", "type": "s"}, {"id": "+1555", "type": "p"}],
   "links": ["https://x"]}', 1),
  ('live:.cid.0123', '19:team@thread.skype', '2', '8:bob', 'ho', NULL, 1),
  ('live:.cid.0123', '19:team@thread.skype', '3', 'https://h/v1/users/ME/contacts/8:bob', 'hu',
   NULL, 1),
  ('live:.cid.0123', '19:team@thread.skype', '4', '19:team@thread.skype', 'Someone added',
   '{"membership": {"kind": "add_member", "initiator": "", "targets": []}}', 1),
  ('live:.cid.0123', '19:team@thread.skype', '5', 'live:.cid.0123',
   'live:.cid.0123 added bob', '{"membership": {"kind": "add_member", "initiator":
   "live:.cid.0123", "targets": ["bob", "8:carol"]}}', 1),
  ('live:.cid.0123', '8:bob', '6', NULL, 'x', NULL, 1),
  ('28:bot', '8:bob', '1', '28:bot', 'beep', NULL, 2),
  ('alice.old', 'c', '1', 'alice.old', 'old', NULL, 2);
INSERT INTO skype.attachments (account_id, conversation_id, message_id, ordinal) VALUES
  ('live:.cid.0123', '19:team@thread.skype', '1', 0);
)sql");
}

BOOST_AUTO_TEST_CASE(migration_8_makes_every_stored_id_canonical) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  apply_migrations(conn, 7);
  insert_version_7_rows(conn);
  const std::string old_partition = db.text(
      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE "
      "i.inhparent = 'skype.messages'::regclass AND c.relname <> 'messages_shared'");
  BOOST_TEST(apply_migrations(conn, 8) == 7);

  auto rows = [&db](const std::string& sql) {
    return db.text("SELECT string_agg(r::text, ';' ORDER BY r::text) FROM (" + sql + ") r");
  };
  BOOST_TEST(rows("SELECT account_id, display_name FROM skype.accounts") ==
             "(28:bot,);(8:live:.cid.0123,Me)");
  BOOST_TEST(rows("SELECT export_id, account_id FROM skype.exports") ==
             "(1,8:live:.cid.0123);(2,28:bot)");
  BOOST_TEST(rows("SELECT account_id, conversation_id FROM skype.conversations") ==
             "(28:bot,8:bob);(8:live:.cid.0123,19:team@thread.skype);(8:live:.cid.0123,8:bob)");
  BOOST_TEST(rows("SELECT account_id, message_id FROM skype.attachments") ==
             "(8:live:.cid.0123,1)");
  // One row per person (the name of the latest seen), no thread, the owner marked.
  BOOST_TEST(rows("SELECT account_id, conversation_id, participant_id, display_name, is_owner, "
                  "last_seen_at::date FROM skype.participants") ==
             "(28:bot,8:bob,28:bot,,t,);"
             "(8:live:.cid.0123,19:team@thread.skype,8:bob,Bob,f,2024-01-03);"
             "(8:live:.cid.0123,19:team@thread.skype,8:live:.cid.0123,Me,t,2024-01-02);"
             "(8:live:.cid.0123,8:bob,8:bob,Bob,f,)");
  // Senders canonical; who talks most lists bob once.
  BOOST_TEST(rows("SELECT account_id, conversation_id, message_id, sender_id FROM "
                  "skype.messages") ==
             "(28:bot,8:bob,1,28:bot);"
             "(8:alice.old,c,1,8:alice.old);"
             "(8:live:.cid.0123,19:team@thread.skype,1,8:bob);"
             "(8:live:.cid.0123,19:team@thread.skype,2,8:bob);"
             "(8:live:.cid.0123,19:team@thread.skype,3,8:bob);"
             "(8:live:.cid.0123,19:team@thread.skype,4,19:team@thread.skype);"
             "(8:live:.cid.0123,19:team@thread.skype,5,8:live:.cid.0123);"
             "(8:live:.cid.0123,8:bob,6,)");
  BOOST_TEST(rows("SELECT sender_id, count(*) FROM skype.messages WHERE sender_id LIKE '8:b%' "
                  "GROUP BY 1") == "(8:bob,3)");
  // Ids inside details.
  const auto details = nlohmann::json::parse(
      db.text("SELECT details FROM skype.messages WHERE account_id = '8:live:.cid.0123' AND "
              "message_id = '1'"));
  BOOST_TEST(details == nlohmann::json::parse(R"({"mentions": [{"id": "8:alice", "name": "A"},
    {"id": "*", "name": "all"}], "quote": {"author_id": "8:bob", "text": "q"},
    "call": {"state": "ended", "participants": [{"id": "8:live:.cid.0123", "name": "Me"}]},
    "contacts": [{"id": "8:dave", "name": "D", "type": "s"}, {"id": "+1555", "type": "p"}],
    "links": ["https://x"]})"));
  BOOST_TEST(db.text("SELECT details::text FROM skype.messages WHERE message_id = '4'") ==
             R"({"membership": {"kind": "add_member", "targets": []}})");
  BOOST_TEST(db.text("SELECT details::text FROM skype.messages WHERE message_id = '5'") ==
             R"({"membership": {"kind": "add_member", "targets": ["8:bob", "8:carol"], )"
             R"("initiator": "8:live:.cid.0123"}})");
  // Partitions: the bounds follow the ids; the account's own partition and its indexes
  // have the names a load gives the new id, the shared one keeps its name.
  const std::string new_partition = db.text(
      "SELECT 'messages_' || left(trim(both '_' FROM regexp_replace(lower('8:live:.cid.0123'), "
      "'[^a-z0-9]+', '_', 'g')), 20) || '_' || left(md5('8:live:.cid.0123'), 8)");
  BOOST_TEST(old_partition != new_partition);
  BOOST_TEST(rows("SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                  "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                  "'skype.messages'::regclass") ==
             "(" + new_partition +
                 ",\"FOR VALUES IN ('8:live:.cid.0123')\");"
                 "(messages_shared,\"FOR VALUES IN ('28:bot', '8:alice.old')\")");
  BOOST_TEST(
      db.scalar("SELECT count(*) FROM pg_class WHERE relname LIKE '" + old_partition + "%'") == 0);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE tablename = '" + new_partition +
                       "' AND indexname LIKE '" + new_partition + "\\_%'") >= 2);
  BOOST_TEST(db.text("SELECT conname FROM pg_constraint WHERE conrelid = 'skype." + new_partition +
                     "'::regclass AND contype = 'p'") == new_partition + "_pkey");
  // Every index of the partitions is still the parent's.
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = "
                       "i.inhrelid WHERE c.relkind = 'i' AND i.inhparent IN (SELECT indexrelid "
                       "FROM pg_index WHERE indrelid = 'skype.messages'::regclass)") == 10);
  // The foreign keys are back.
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace "
                       "= 'skype'::regnamespace") == 3);
  BOOST_CHECK_THROW(conn.exec("INSERT INTO skype.exports (account_id, file_name, file_size, "
                              "file_digest, status) VALUES ('live:.cid.0123', 'c', 1, 'c', 'x')"),
                    DatabaseError);
  // The account's new rows go to its partition.
  conn.exec(
      "INSERT INTO skype.messages (account_id, conversation_id, message_id, export_id) "
      "VALUES ('8:live:.cid.0123', 'c', 'new', 3)");
  BOOST_TEST(db.text("SELECT tableoid::regclass::text FROM skype.messages WHERE message_id = "
                     "'new'") == "skype." + new_partition);
  // The new columns: the sender id as stored where it differed; userIds as written are
  // unknown until the account's next export.
  BOOST_TEST(rows("SELECT account_id, message_id, sender_raw FROM skype.messages WHERE "
                  "sender_raw IS NOT NULL") ==
             "(8:alice.old,1,alice.old);"
             "(8:live:.cid.0123,1,bob);"
             "(8:live:.cid.0123,3,https://h/v1/users/ME/contacts/8:bob);"
             "(8:live:.cid.0123,5,live:.cid.0123)");
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.accounts WHERE user_id IS NULL") == 2);
  BOOST_TEST(db.text("SELECT skype.canonical_id('https://host/contacts/live:x')") == "8:live:x");
  BOOST_TEST(db.text("SELECT to_regprocedure('pg_temp.canonical_details(jsonb)')::text").empty());
}

BOOST_AUTO_TEST_CASE(migration_8_stops_at_two_accounts_that_are_one_person) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  apply_migrations(conn, 7);
  conn.exec("INSERT INTO skype.accounts (account_id) VALUES ('alice'), ('8:alice')");
  BOOST_CHECK_EXCEPTION(ensure_schema(conn), DatabaseError, [](const DatabaseError& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE(what);
    return what.find("'8:alice' and 'alice'") != std::string::npos;
  });
  BOOST_TEST(current_schema_version(conn) == 7);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.accounts") == 2);
}

BOOST_AUTO_TEST_CASE(migration_10_indexes_the_beginning_of_any_text) {
  // A message whose text makes a tsvector over 1 MB failed its export (54000); since
  // version 10 the full-text column takes the first 100,000 characters.
  TestDatabase db;
  PgConnection conn(db.conninfo());
  apply_migrations(conn, 9);
  conn.exec("CREATE TABLE skype.messages_a PARTITION OF skype.messages FOR VALUES IN ('8:a')");
  conn.exec(
      "INSERT INTO skype.messages (account_id, conversation_id, message_id, content_text, "
      "export_id) VALUES ('8:a', 'c', '1', 'hello trailhead', 1)");
  // 200,000 distinct words of 8 to 12 letters: about 2 MB of lexemes.
  const std::string huge = "SELECT string_agg(md5(g::text), ' ') FROM generate_series(1, 200000) g";
  BOOST_CHECK_THROW(conn.exec("INSERT INTO skype.messages (account_id, conversation_id, "
                              "message_id, content_text, export_id) VALUES ('8:a', 'c', '2', (" +
                              huge + "), 1)"),
                    DatabaseError);
  BOOST_TEST(apply_migrations(conn, 10) == 9);
  conn.exec(
      "INSERT INTO skype.messages (account_id, conversation_id, message_id, content_text, "
      "export_id) VALUES ('8:a', 'c', '2', 'first ' || (" +
      huge + "), 1)");
  BOOST_TEST(db.scalar("SELECT length(content_text) FROM skype.messages WHERE message_id = '2'") >
             6'000'000);
  // The stored rows got their vector again, the new row its beginning's, and the index is
  // there on every partition, under the names a load gives it.
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE content_tsv @@ "
                       "to_tsquery('simple', 'trailhead')") == 1);
  BOOST_TEST(db.text("SELECT message_id FROM skype.messages WHERE content_tsv @@ "
                     "to_tsquery('simple', 'first')") == "2");
  BOOST_TEST(db.text("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i "
                     "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                     "'skype.messages_content_tsv_idx'::regclass") == "messages_a_content_tsv_idx");
}

BOOST_AUTO_TEST_CASE(a_failing_migration_leaves_the_old_version) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  apply_migrations(conn, 1);
  // Block migration 2: its column already exists with another definition.
  conn.exec("ALTER TABLE skype.messages ADD COLUMN content_tsv text");
  BOOST_CHECK_THROW(ensure_schema(conn), DatabaseError);
  BOOST_TEST(current_schema_version(conn) == 1);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'skype' AND "
                       "indexname = 'messages_type_idx'") == 0);
}

BOOST_AUTO_TEST_CASE(concurrent_migrations_apply_once) {
  TestDatabase db;
  auto migrate = [&] {
    PgConnection conn(db.conninfo());
    return ensure_schema(conn);
  };
  auto a = std::async(std::launch::async, migrate);
  auto b = std::async(std::launch::async, migrate);
  auto c = std::async(std::launch::async, migrate);
  const int found = a.get() + b.get() + c.get();
  // One of them migrated from 0, the others found the latest version.
  BOOST_TEST(found == 2 * latest_schema_version());
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.schema_version") == latest_schema_version());
}

BOOST_AUTO_TEST_CASE(a_newer_database_is_refused) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  ensure_schema(conn);
  conn.exec("INSERT INTO skype.schema_version (version) VALUES (999)");
  BOOST_CHECK_EXCEPTION(ensure_schema(conn), DatabaseError, [](const DatabaseError& e) {
    return std::string(e.what()).find("upgrade skype-etl") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(errors_carry_sqlstate_and_statement) {
  TestDatabase db;
  PgConnection conn(db.conninfo());
  try {
    conn.exec("SELECT 1 / 0");
    BOOST_FAIL("no error");
  } catch (const DatabaseError& e) {
    BOOST_TEST(e.sqlstate() == "22012");
    BOOST_TEST(std::string(e.what()).find("SELECT 1 / 0") != std::string::npos);
    BOOST_TEST(std::string(e.what()).find("division by zero") != std::string::npos);
  }
  // The connection stays usable after a failed statement outside a transaction.
  BOOST_TEST(conn.exec("SELECT 42").integer(0, 0) == 42);
}

BOOST_AUTO_TEST_CASE(connection_errors_never_show_the_password) {
  try {
    PgConnection conn("host=/nonexistent-dir port=5 dbname=nowhere user=u password=s3cr3t-pw");
    BOOST_FAIL("connected");
  } catch (const DatabaseError& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE(what);
    BOOST_TEST(what.find("s3cr3t-pw") == std::string::npos);
    BOOST_TEST(what.find("nowhere") != std::string::npos);
    BOOST_TEST(what.find("5") != std::string::npos);
  }
  try {
    PgConnection conn("postgresql://u:s3cr3t-pw@/nowhere?host=/nonexistent-dir&port=5");
    BOOST_FAIL("connected");
  } catch (const DatabaseError& e) {
    BOOST_TEST(std::string(e.what()).find("s3cr3t-pw") == std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
