#define BOOST_TEST_MODULE schema_tests
#include <boost/test/unit_test.hpp>

#include <future>
#include <string>

#include "load/pg_connection.hpp"
#include "load/schema.hpp"
#include "skype_etl/errors.hpp"
#include "support/test_database.hpp"

using skype_etl::DatabaseError;
using skype_etl::detail::apply_migrations;
using skype_etl::detail::current_schema_version;
using skype_etl::detail::ensure_schema;
using skype_etl::detail::latest_schema_version;
using skype_etl::detail::PgConnection;
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
