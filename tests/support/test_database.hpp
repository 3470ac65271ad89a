// A throwaway database on the PostgreSQL server named by the PG* environment
// (scripts/test.sh starts one). Each TestDatabase is created empty and dropped by the
// destructor, so suites never see each other's rows.
#pragma once

#include <memory>
#include <string>

#include <pqxx/connection>

namespace skype_etl::test {

class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  /// libpq connection string of the database ("dbname=<name>"; host etc. from PG*).
  const std::string& conninfo() const noexcept { return m_conninfo; }
  const std::string& name() const noexcept { return m_name; }
  /// First column of the first row of `sql` as an integer (0 for NULL).
  long long scalar(const std::string& sql);
  /// First column of the first row of `sql` as text ("" for NULL).
  std::string text(const std::string& sql);
  pqxx::connection& connection();

 private:
  std::string m_name;
  std::string m_conninfo;
  std::unique_ptr<pqxx::connection> m_connection;
};

}  // namespace skype_etl::test
