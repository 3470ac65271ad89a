#define BOOST_TEST_MODULE parallel_copy_tests
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "load/copy_writer.hpp"
#include "load/parallel_copy.hpp"
#include "skype_etl/errors.hpp"
#include "support/test_database.hpp"

using skype_etl::DatabaseError;
using skype_etl::detail::CopyBuffer;
using skype_etl::detail::CopyFormat;
using skype_etl::detail::ParallelCopy;
using skype_etl::detail::StatementTiming;
using skype_etl::test::TestDatabase;

namespace {

constexpr const char* session = "SET application_name = 'parallel_copy_tests'";

/// Sends rows first..last (id, "row <id>") in buffers of `per_buffer` rows.
void send_rows(ParallelCopy& copy, long long first, long long last, long long per_buffer) {
  CopyBuffer buffer(CopyFormat::binary);
  for (long long id = first; id <= last; ++id) {
    buffer.integer(id);
    buffer.text("row " + std::to_string(id));
    buffer.end_row();
    if ((id - first + 1) % per_buffer == 0) {
      copy.send(buffer);
      BOOST_TEST_REQUIRE(buffer.empty());
    }
  }
  copy.send(buffer);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(parallel_copy_tests)

BOOST_AUTO_TEST_CASE(every_row_arrives_once_over_several_streams) {
  TestDatabase db;
  db.text("CREATE TABLE t (id bigint PRIMARY KEY, label text NOT NULL)");
  ParallelCopy copy(db.conninfo(), 3, session, "COPY t FROM STDIN (FORMAT binary)");
  BOOST_TEST(copy.streams() == 3u);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                       "'parallel_copy_tests' AND datname = current_database()") == 3);
  send_rows(copy, 1, 20000, 97);
  // Nothing is visible before the COPYs commit.
  BOOST_TEST(db.scalar("SELECT count(*) FROM t") == 0);
  copy.finish();
  BOOST_TEST(db.scalar("SELECT count(*) FROM t") == 20000);
  BOOST_TEST(db.scalar("SELECT sum(id) FROM t") == 20000LL * 20001 / 2);
  BOOST_TEST(db.scalar("SELECT count(*) FROM t WHERE label <> 'row ' || id") == 0);
}

BOOST_AUTO_TEST_CASE(cancel_rolls_back_every_stream) {
  TestDatabase db;
  db.text("CREATE TABLE t (id bigint, label text)");
  {
    ParallelCopy copy(db.conninfo(), 2, session, "COPY t FROM STDIN (FORMAT binary)");
    send_rows(copy, 1, 5000, 50);
    copy.cancel();
    copy.cancel();  // idempotent
  }
  {
    // Destroyed without finish(): the same.
    ParallelCopy copy(db.conninfo(), 2, session, "COPY t FROM STDIN (FORMAT binary)");
    send_rows(copy, 1, 5000, 50);
  }
  BOOST_TEST(db.scalar("SELECT count(*) FROM t") == 0);
}

BOOST_AUTO_TEST_CASE(a_row_the_server_refuses_fails_the_copy_with_its_message) {
  TestDatabase db;
  db.text("CREATE TABLE t (id bigint CHECK (id < 3000), label text)");
  bool raised = false;
  try {
    ParallelCopy copy(db.conninfo(), 2, session, "COPY t FROM STDIN (FORMAT binary)");
    send_rows(copy, 1, 20000, 100);
    copy.finish();
  } catch (const DatabaseError& error) {
    raised = true;
    BOOST_TEST(error.sqlstate() == "23514");
    BOOST_TEST(std::string(error.what()).find("check constraint") != std::string::npos);
  }
  BOOST_TEST(raised);
  BOOST_TEST(db.scalar("SELECT count(*) FROM t WHERE id >= 3000") == 0);
}

BOOST_AUTO_TEST_CASE(statements_run_on_every_connection_and_failures_come_back) {
  TestDatabase db;
  db.text("CREATE TABLE t (id bigint, label text)");
  ParallelCopy copy(db.conninfo(), 2, session, "COPY t FROM STDIN (FORMAT binary)");
  BOOST_CHECK_THROW(copy.run_statements({"SELECT 1"}), std::logic_error);  // before finish()
  send_rows(copy, 1, 1000, 100);
  copy.finish();
  std::vector<std::string> statements;
  for (int i = 0; i < 6; ++i)
    statements.push_back("CREATE INDEX t_" + std::to_string(i) + " ON t (id, label)");
  const std::vector<StatementTiming> timings = copy.run_statements(statements);
  BOOST_TEST(timings.size() == statements.size());
  for (const StatementTiming& t : timings) {
    BOOST_TEST(t.start_us > 0);
    BOOST_TEST(t.end_us > t.start_us);
    BOOST_TEST(t.stream < 2U);  // which connection ran it
  }
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 't'") == 6);
  BOOST_CHECK_EXCEPTION(copy.run_statements({"CREATE INDEX t_bad ON t (no_such_column)"}),
                        DatabaseError,
                        [](const DatabaseError& e) { return e.sqlstate() == "42703"; });
  // The connections stay usable after a failed statement.
  copy.run_statements({"CREATE INDEX t_6 ON t (label)"});
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 't'") == 7);
}

BOOST_AUTO_TEST_CASE(a_bad_connection_string_fails_the_constructor) {
  BOOST_CHECK_THROW(ParallelCopy("host=/nonexistent-dir port=5 dbname=nowhere", 2, session,
                                 "COPY t FROM STDIN (FORMAT binary)"),
                    DatabaseError);
}

BOOST_AUTO_TEST_SUITE_END()
