#define BOOST_TEST_MODULE context_db_tests
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>

#include <pqxx/pqxx>

#include "skype_etl/context.hpp"
#include "skype_etl/errors.hpp"

using skype_etl::ETLContext;

namespace {

int select_one(pqxx::connection& connection) {
  pqxx::work tx(connection);
  const pqxx::row row = tx.exec1("SELECT 1");
  return row[0].as<int>();
}

}  // namespace

// Needs the server named by the PG* environment (scripts/test.sh starts one).
BOOST_AUTO_TEST_SUITE(context_db_tests)

BOOST_AUTO_TEST_CASE(connects_lazily_with_the_pg_environment) {
  ETLContext context;  // empty conninfo: libpq defaults and PG* variables
  pqxx::connection& connection = context.get_db_connection();
  BOOST_TEST(connection.is_open());
  BOOST_TEST(select_one(connection) == 1);
  // The same connection is returned until closed.
  BOOST_TEST(&context.get_db_connection() == &connection);
  if (const char* user = std::getenv("PGUSER")) BOOST_TEST(connection.username() == user);
}

BOOST_AUTO_TEST_CASE(close_then_get_reopens) {
  ETLContext context;
  const int first_pid = context.get_db_connection().backendpid();
  BOOST_TEST(first_pid != 0);
  context.close_db_connection();
  context.close_db_connection();  // closing twice is harmless
  pqxx::connection& again = context.get_db_connection();
  BOOST_TEST(select_one(again) == 1);
  BOOST_TEST(again.backendpid() != first_pid);  // a new server session
}

BOOST_AUTO_TEST_CASE(uses_the_configured_conninfo) {
  ETLContext context(skype_etl::DbConfig{"dbname=postgres application_name=skype_etl_ctx_test"});
  pqxx::connection& connection = context.get_db_connection();
  BOOST_TEST(std::string(connection.dbname()) == "postgres");
  pqxx::work tx(connection);
  BOOST_TEST(tx.exec1("SELECT current_setting('application_name')")[0].as<std::string>() ==
             "skype_etl_ctx_test");
}

BOOST_AUTO_TEST_CASE(unknown_database_is_a_database_error) {
  ETLContext context(skype_etl::DbConfig{"dbname=skype_etl_no_such_db_for_context_tests"});
  try {
    context.get_db_connection();
    BOOST_ERROR("connected to a database that does not exist");
  } catch (const skype_etl::DatabaseError& error) {
    const std::string message = error.what();
    BOOST_TEST(message.find("could not connect") != std::string::npos, message);
    BOOST_TEST(message.find("skype_etl_no_such_db_for_context_tests") != std::string::npos,
               message);
  }
}

BOOST_AUTO_TEST_SUITE_END()
