#define BOOST_TEST_MODULE conninfo_tests
#include <boost/test/unit_test.hpp>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "core/local_db.hpp"

namespace fs = std::filesystem;
using skype_etl::detail::configured_conninfo;
using skype_etl::detail::LocalDatabase;
using skype_etl::detail::redact_conninfo;

namespace {

/// Sets environment variables for one test and restores the previous values afterwards.
class ScopedEnv {
 public:
  void set(const std::string& name, const std::optional<std::string>& value) {
    if (!m_saved.count(name)) {
      const char* old = std::getenv(name.c_str());
      m_saved[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value)
      ::setenv(name.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : m_saved) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> m_saved;
};

/// Starts every test with no database configured in the environment.
struct CleanEnv {
  CleanEnv() {
    for (const char* name : {"DATABASE_URL", "PGHOST", "PGDATABASE", "PGSERVICE"})
      env.set(name, std::nullopt);
  }
  ScopedEnv env;
};

/// A temporary directory with the given mode, removed afterwards.
struct TempDir {
  explicit TempDir(mode_t mode) {
    char pattern[] = "/tmp/conninfo-tests.XXXXXX";
    BOOST_REQUIRE(::mkdtemp(pattern) != nullptr);
    path = pattern;
    BOOST_REQUIRE_EQUAL(::chmod(pattern, mode), 0);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

std::string current_user() {
  if (::geteuid() == 0) return "postgres";
  return ::getpwuid(::geteuid())->pw_name;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conninfo_tests)

BOOST_AUTO_TEST_CASE(redacts_key_value_passwords) {
  BOOST_TEST(redact_conninfo("host=db password=secret dbname=skype") ==
             "host=db password=*** dbname=skype");
  BOOST_TEST(redact_conninfo("password=secret") == "password=***");
  BOOST_TEST(redact_conninfo("user=u password = 'se cr\\'et x' port=5") ==
             "user=u password = *** port=5");
  BOOST_TEST(redact_conninfo("password='unterminated secret") == "password=***");
  BOOST_TEST(redact_conninfo("host=db  user='a b'  port=5432") == "host=db  user='a b'  port=5432");
  BOOST_TEST(redact_conninfo("dbname=postgresql://u:secret@h/db host=x") ==
             "dbname=postgresql://u:***@h/db host=x");
  // A keyword merely containing "password" is not a password.
  BOOST_TEST(redact_conninfo("passfile=/home/u/.pgpass") == "passfile=/home/u/.pgpass");
  BOOST_TEST(redact_conninfo("") == "");
}

// Issue 16: a connection string libpq cannot parse is a usage error that says why, and
// never shows the password it held.
BOOST_AUTO_TEST_CASE(says_why_a_connection_string_cannot_be_parsed) {
  using skype_etl::detail::conninfo_parse_error;
  BOOST_TEST(!conninfo_parse_error("").has_value());
  BOOST_TEST(!conninfo_parse_error("host=db dbname=x password=secret").has_value());
  BOOST_TEST(!conninfo_parse_error("postgresql://u:secret@h/db").has_value());
  const auto words = conninfo_parse_error("not a conninfo at all");
  BOOST_TEST_REQUIRE(words.has_value());
  BOOST_TEST(*words == "missing \"=\" after \"not\" in connection info string");
  const auto unknown = conninfo_parse_error("password=secret hots=db");
  BOOST_TEST_REQUIRE(unknown.has_value());
  BOOST_TEST(unknown->find("invalid connection option \"hots\"") != std::string::npos, *unknown);
  for (const char* uri : {"postgresql://u:secret@h/db?nosuch=1", "postgresql://u:secret@[h/db"}) {
    const auto bad = conninfo_parse_error(uri);
    BOOST_TEST_REQUIRE(bad.has_value(), uri);
    BOOST_TEST(bad->find("secret") == std::string::npos, *bad);
  }
}

BOOST_AUTO_TEST_CASE(redacts_uri_passwords) {
  BOOST_TEST(redact_conninfo("postgresql://user:secret@host:5432/skype") ==
             "postgresql://user:***@host:5432/skype");
  BOOST_TEST(redact_conninfo("postgres://user:s3cr:et@host/db?sslmode=require") ==
             "postgres://user:***@host/db?sslmode=require");
  BOOST_TEST(redact_conninfo("postgresql://user@host/db?password=secret&sslmode=require") ==
             "postgresql://user@host/db?password=***&sslmode=require");
  BOOST_TEST(redact_conninfo("postgresql://host/db?application_name=x&password=secret") ==
             "postgresql://host/db?application_name=x&password=***");
  BOOST_TEST(redact_conninfo("postgresql:///skype?host=/tmp/pg") ==
             "postgresql:///skype?host=/tmp/pg");
  // No user information before the path: an '@' later on is not one.
  BOOST_TEST(redact_conninfo("postgresql://host/db@x") == "postgresql://host/db@x");
  BOOST_TEST(redact_conninfo("  postgresql://u:p@h") == "  postgresql://u:***@h");
}

BOOST_FIXTURE_TEST_CASE(db_option_wins_over_the_environment, CleanEnv) {
  env.set("DATABASE_URL", "postgresql://from-env/db");
  env.set("PGHOST", "/tmp/elsewhere");
  auto conninfo = configured_conninfo("dbname=from_option");
  BOOST_REQUIRE(conninfo.has_value());
  BOOST_TEST(*conninfo == "dbname=from_option");
}

BOOST_FIXTURE_TEST_CASE(database_url_wins_over_pg_variables, CleanEnv) {
  env.set("DATABASE_URL", "postgresql://from-env/db");
  env.set("PGHOST", "/tmp/elsewhere");
  env.set("PGDATABASE", "other");
  auto conninfo = configured_conninfo("");
  BOOST_REQUIRE(conninfo.has_value());
  BOOST_TEST(*conninfo == "postgresql://from-env/db");
}

BOOST_FIXTURE_TEST_CASE(each_pg_variable_selects_the_libpq_environment, CleanEnv) {
  for (const char* name : {"PGHOST", "PGDATABASE", "PGSERVICE"}) {
    env.set(name, "x");
    auto conninfo = configured_conninfo("");
    BOOST_REQUIRE_MESSAGE(conninfo.has_value(), name);
    BOOST_TEST(conninfo->empty(), name);
    env.set(name, std::nullopt);
  }
}

BOOST_FIXTURE_TEST_CASE(nothing_configured_means_the_local_database, CleanEnv) {
  BOOST_TEST(!configured_conninfo("").has_value());
  // Empty variables are as good as unset; PGPORT or PGUSER alone name no database.
  env.set("DATABASE_URL", "");
  env.set("PGHOST", "");
  env.set("PGPORT", "5433");
  env.set("PGUSER", "someone");
  BOOST_TEST(!configured_conninfo("").has_value());
}

BOOST_FIXTURE_TEST_CASE(default_data_dir_follows_xdg_data_home, CleanEnv) {
  env.set("XDG_DATA_HOME", "/srv/data");
  BOOST_TEST(LocalDatabase::default_data_dir() == fs::path("/srv/data/skype-etl/pg"));
}

BOOST_FIXTURE_TEST_CASE(default_data_dir_in_a_reachable_home, CleanEnv) {
  TempDir home(0755);
  env.set("XDG_DATA_HOME", std::nullopt);
  env.set("HOME", home.path.native());
  BOOST_TEST(LocalDatabase::default_data_dir() == home.path / ".local/share/skype-etl/pg");
  // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
  env.set("XDG_DATA_HOME", "relative/dir");
  BOOST_TEST(LocalDatabase::default_data_dir() == home.path / ".local/share/skype-etl/pg");
}

BOOST_FIXTURE_TEST_CASE(default_data_dir_in_a_private_home, CleanEnv) {
  TempDir home(0700);
  env.set("XDG_DATA_HOME", std::nullopt);
  env.set("HOME", home.path.native());
  fs::path expected = home.path / ".local/share/skype-etl/pg";
  // As root the server runs as postgres, which cannot enter a private home like /root.
  if (::geteuid() == 0 && ::getpwnam("postgres") != nullptr) expected = "/var/lib/skype-etl/pg";
  BOOST_TEST(LocalDatabase::default_data_dir() == expected);
}

BOOST_AUTO_TEST_CASE(conninfo_names_the_socket_in_the_data_directory) {
  LocalDatabase db("/tmp/conninfo-tests-none/pg/");
  BOOST_TEST(db.data_dir() == fs::path("/tmp/conninfo-tests-none/pg"));
  BOOST_TEST(db.conninfo() ==
             "host=/tmp/conninfo-tests-none/pg port=5432 dbname=skype user=" + current_user());
  auto status = db.status();
  BOOST_TEST(status["running"].get<bool>() == false);
  BOOST_TEST(status["pid"].is_null());
  BOOST_TEST(status["data_dir"].get<std::string>() == "/tmp/conninfo-tests-none/pg");
  BOOST_TEST(status["conninfo"].get<std::string>() == db.conninfo());
  BOOST_TEST(!status.contains("note"));
  BOOST_TEST(!db.is_running());
}

BOOST_AUTO_TEST_CASE(conninfo_quotes_blanks) {
  LocalDatabase db("/tmp/conninfo tests/pg");
  BOOST_TEST(db.conninfo() ==
             "host='/tmp/conninfo tests/pg' port=5432 dbname=skype user=" + current_user());
}

BOOST_AUTO_TEST_CASE(long_data_dir_gets_a_short_socket_dir) {
  const std::string long_dir = "/tmp/" + std::string(100, 'd') + "/pg";
  LocalDatabase db(long_dir);
  auto status = db.status();
  std::string socket_dir = status["socket_dir"].get<std::string>();
  BOOST_TEST(socket_dir.rfind("/tmp/skype-etl-", 0) == 0u);
  BOOST_TEST(socket_dir.size() + std::string("/.s.PGSQL.65535").size() <= 107u);
  BOOST_TEST(db.conninfo().rfind("host=" + socket_dir + " ", 0) == 0u);
  BOOST_TEST(status.contains("note"));
  // Stable across instances (another process must find the same socket) and per directory.
  BOOST_TEST(LocalDatabase(long_dir).conninfo() == db.conninfo());
  BOOST_TEST(LocalDatabase(long_dir + "2").conninfo() != db.conninfo());
}

BOOST_AUTO_TEST_SUITE_END()
