#include "support/test_database.hpp"

#include <unistd.h>

#include <atomic>
#include <random>
#include <stdexcept>

#include <pqxx/pqxx>

namespace skype_etl::test {
namespace {

std::atomic<int> g_counter{0};

std::string unique_name() {
  std::random_device device;
  std::uniform_int_distribution<unsigned> digits(0, 0xffffff);
  char random[8];
  std::snprintf(random, sizeof random, "%06x", digits(device));
  return "skype_etl_test_" + std::to_string(::getpid()) + "_" + std::to_string(g_counter++) + "_" +
         random;
}

}  // namespace

TestDatabase::TestDatabase() : m_name(unique_name()), m_conninfo("dbname=" + m_name) {
  // The maintenance database of the PG* server; CREATE DATABASE cannot run in a transaction.
  pqxx::connection admin("dbname=postgres");
  pqxx::nontransaction tx(admin);
  tx.exec0("CREATE DATABASE " + tx.quote_name(m_name) + " TEMPLATE template0 ENCODING 'UTF8'");
}

TestDatabase::~TestDatabase() {
  try {
    m_connection.reset();
    pqxx::connection admin("dbname=postgres");
    pqxx::nontransaction tx(admin);
    tx.exec0("DROP DATABASE IF EXISTS " + tx.quote_name(m_name) + " WITH (FORCE)");
  } catch (const std::exception&) {
    // A leftover throwaway database is harmless; a throwing destructor is not.
  }
}

pqxx::connection& TestDatabase::connection() {
  if (!m_connection || !m_connection->is_open())
    m_connection = std::make_unique<pqxx::connection>(m_conninfo);
  return *m_connection;
}

long long TestDatabase::scalar(const std::string& sql) {
  pqxx::nontransaction tx(connection());
  pqxx::result r = tx.exec(sql);
  if (r.empty() || r[0][0].is_null()) return 0;
  return r[0][0].as<long long>();
}

std::string TestDatabase::text(const std::string& sql) {
  pqxx::nontransaction tx(connection());
  pqxx::result r = tx.exec(sql);
  if (r.empty() || r[0][0].is_null()) return {};
  return r[0][0].as<std::string>();
}

}  // namespace skype_etl::test
