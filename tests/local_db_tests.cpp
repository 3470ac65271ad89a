#define BOOST_TEST_MODULE local_db_tests
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <pqxx/pqxx>

#include "core/local_db.hpp"
#include "skype_etl/errors.hpp"

namespace fs = std::filesystem;
using skype_etl::DatabaseError;
using skype_etl::detail::LocalDatabase;

namespace {

/// A temporary directory under /tmp (which the postgres user can reach when we are root),
/// removed afterwards together with any server still running in it.
struct TempDir {
  explicit TempDir(mode_t mode = 0755) {
    char pattern[] = "/tmp/local-db-tests.XXXXXX";
    BOOST_REQUIRE(::mkdtemp(pattern) != nullptr);
    path = pattern;
    BOOST_REQUIRE_EQUAL(::chmod(pattern, mode), 0);
  }
  ~TempDir() {
    for (const auto& data_dir : servers) {
      try {
        LocalDatabase(data_dir).stop();
      } catch (const std::exception& error) {
        BOOST_TEST_MESSAGE("cleanup: " << error.what());
      }
    }
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
  std::vector<fs::path> servers;
};

long long count_databases(const std::string& conninfo, const std::string& name) {
  pqxx::connection connection(conninfo);
  pqxx::work tx(connection);
  return tx.exec1("SELECT count(*) FROM pg_database WHERE datname = " + tx.quote(name))[0]
      .as<long long>();
}

std::string current_database(const std::string& conninfo) {
  pqxx::connection connection(conninfo);
  pqxx::work tx(connection);
  return tx.exec1("SELECT current_database()")[0].as<std::string>();
}

bool is_root() {
  return ::geteuid() == 0;
}

std::string show(const std::string& conninfo, const std::string& name) {
  pqxx::connection connection(conninfo);
  pqxx::work tx(connection);
  return tx.exec1("SHOW " + name)[0].as<std::string>();
}

/// The file a setting's value came from (pg_settings.sourcefile; we connect as a
/// superuser), or "" for a built-in default.
std::string source_file(const std::string& conninfo, const std::string& name) {
  pqxx::connection connection(conninfo);
  pqxx::work tx(connection);
  return tx
      .exec1("SELECT coalesce(sourcefile, '') FROM pg_settings WHERE name = " + tx.quote(name))[0]
      .as<std::string>();
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Lines of postgresql.conf that include skype-etl.conf, commented out or not.
int include_lines(const fs::path& data_dir, bool commented) {
  std::ifstream in(data_dir / "postgresql.conf");
  int count = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find("include_if_exists = 'skype-etl.conf'") == std::string::npos) continue;
    if ((line.front() == '#') == commented) ++count;
  }
  return count;
}

/// Rewrites postgresql.conf (keeping its owner: we write in place) with `edit` applied to
/// each line.
template <typename Edit>
void edit_postgresql_conf(const fs::path& data_dir, Edit edit) {
  std::string text;
  {
    std::ifstream in(data_dir / "postgresql.conf");
    for (std::string line; std::getline(in, line);) text += edit(line) + "\n";
  }
  std::fstream out(data_dir / "postgresql.conf", std::ios::in | std::ios::out | std::ios::trunc);
  out << text;
  BOOST_REQUIRE(out.flush());
}

const char* const k_load_settings[] = {
    "shared_buffers",  "maintenance_work_mem", "max_parallel_maintenance_workers",
    "max_wal_size",    "checkpoint_timeout",   "wal_level",
    "max_wal_senders", "wal_compression"};

}  // namespace

BOOST_AUTO_TEST_SUITE(local_db_tests)

BOOST_AUTO_TEST_CASE(lifecycle_create_start_stop_restart) {
  TempDir temp;
  const fs::path data_dir = temp.path / "share" / "skype-etl" / "pg";
  temp.servers.push_back(data_dir);
  LocalDatabase db(data_dir);
  BOOST_TEST(!db.is_running());

  const std::string conninfo = db.ensure_running();
  BOOST_TEST(conninfo == db.conninfo());
  BOOST_TEST(fs::exists(data_dir / "PG_VERSION"));
  BOOST_TEST(db.is_running());
  BOOST_TEST(current_database(conninfo) == "skype");
  BOOST_TEST(count_databases(conninfo, "skype") == 1);
  // The socket is in the data directory, and there is no TCP listener.
  BOOST_TEST(conninfo.find("host=" + data_dir.native() + " ") == 0u);
  {
    pqxx::connection connection(conninfo);
    pqxx::work tx(connection);
    BOOST_TEST(tx.exec1("SHOW listen_addresses")[0].as<std::string>() == "");
    BOOST_TEST(tx.exec1("SHOW server_encoding")[0].as<std::string>() == "UTF8");
    // Under the plain C locale full-text search would drop non-ASCII words.
    BOOST_TEST(tx.exec1("SELECT to_tsvector('simple', 'привет мир')::text")[0].as<std::string>() ==
               "'мир':2 'привет':1");
    tx.exec0("CREATE TABLE kept (x int)");
    tx.exec0("INSERT INTO kept VALUES (42)");
    tx.commit();
  }
  if (is_root()) {
    struct stat st {};
    BOOST_REQUIRE_EQUAL(::stat(data_dir.c_str(), &st), 0);
    BOOST_TEST(st.st_uid != 0u);  // owned by postgres, which runs the server
  }

  auto status = db.status();
  BOOST_TEST(status["running"].get<bool>());
  BOOST_TEST(status["pid"].is_number_integer());
  BOOST_TEST(status["data_dir"].get<std::string>() == data_dir.native());
  BOOST_TEST(status["conninfo"].get<std::string>() == conninfo);
  const long long pid = status["pid"].get<long long>();

  // A second call (another instance, as another process would) finds it running.
  LocalDatabase again(data_dir);
  BOOST_TEST(again.is_running());
  BOOST_TEST(again.ensure_running() == conninfo);
  BOOST_TEST(again.status()["pid"].get<long long>() == pid);
  BOOST_TEST(count_databases(conninfo, "skype") == 1);

  db.stop();
  BOOST_TEST(!db.is_running());
  BOOST_TEST(db.status()["running"].get<bool>() == false);
  BOOST_TEST(db.status()["pid"].is_null());
  BOOST_CHECK_THROW(pqxx::connection{conninfo}, pqxx::broken_connection);
  db.stop();  // stopping a stopped server is a no-op

  // Starting again keeps the data.
  BOOST_TEST(db.ensure_running() == conninfo);
  BOOST_TEST(db.is_running());
  BOOST_TEST(db.status()["pid"].get<long long>() != pid);
  {
    pqxx::connection connection(conninfo);
    pqxx::work tx(connection);
    BOOST_TEST(tx.exec1("SELECT x FROM kept")[0].as<int>() == 42);
  }
  db.stop();
  BOOST_TEST(!db.is_running());
}

BOOST_AUTO_TEST_CASE(long_data_dir_uses_a_short_socket_dir) {
  TempDir temp;
  const fs::path data_dir = temp.path / std::string(90, 'x') / "pg";
  temp.servers.push_back(data_dir);
  LocalDatabase db(data_dir);
  const std::string conninfo = db.ensure_running();
  const std::string socket_dir = db.status()["socket_dir"].get<std::string>();
  BOOST_TEST(socket_dir.rfind("/tmp/skype-etl-", 0) == 0u);
  BOOST_TEST(db.status().contains("note"));
  BOOST_TEST(current_database(conninfo) == "skype");
  db.stop();
  BOOST_TEST(!db.is_running());
  std::error_code ec;
  fs::remove_all(socket_dir, ec);
}

BOOST_AUTO_TEST_CASE(refuses_a_non_empty_directory_that_is_no_cluster) {
  TempDir temp;
  const fs::path data_dir = temp.path / "pg";
  fs::create_directories(data_dir);
  std::ofstream(data_dir / "notes.txt") << "mine\n";
  LocalDatabase db(data_dir);
  BOOST_CHECK_EXCEPTION(db.ensure_running(), DatabaseError, [](const DatabaseError& error) {
    return std::string(error.what()).find("not empty") != std::string::npos;
  });
  BOOST_TEST(fs::exists(data_dir / "notes.txt"));
  BOOST_TEST(!fs::exists(data_dir / "PG_VERSION"));
}

BOOST_AUTO_TEST_CASE(refuses_paths_pg_ctl_would_mangle) {
  TempDir temp;
  LocalDatabase db(temp.path / "a$b" / "pg");
  BOOST_CHECK_THROW(db.ensure_running(), DatabaseError);
  BOOST_TEST(!fs::exists(temp.path / "a$b"));
}

BOOST_AUTO_TEST_CASE(root_refuses_a_directory_postgres_cannot_reach,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       return is_root();
                     })) {
  TempDir temp(0700);
  LocalDatabase db(temp.path / "pg");
  BOOST_CHECK_EXCEPTION(db.ensure_running(), DatabaseError, [&](const DatabaseError& error) {
    std::string message = error.what();
    return message.find("postgres") != std::string::npos &&
           message.find(temp.path.native()) != std::string::npos &&
           message.find("XDG_DATA_HOME") != std::string::npos;
  });
  BOOST_TEST(!fs::exists(temp.path / "pg" / "PG_VERSION"));
}

// Issue 16: what a failed start removes is only what it created. A data directory that was
// there (here, a cluster's files postgres cannot reach) keeps every file.
BOOST_AUTO_TEST_CASE(a_failed_start_never_removes_what_was_there,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       return is_root();
                     })) {
  TempDir temp(0700);
  const fs::path data_dir = temp.path / "pg";
  fs::create_directories(data_dir);
  std::ofstream(data_dir / "PG_VERSION") << "15\n";
  std::ofstream(data_dir / "postgresql.conf") << "# the user's\n";
  LocalDatabase db(data_dir);
  BOOST_CHECK_THROW(db.ensure_running(), DatabaseError);
  BOOST_TEST(fs::exists(data_dir / "PG_VERSION"));
  BOOST_TEST(fs::exists(data_dir / "postgresql.conf"));
  // A directory it made for nothing goes again.
  LocalDatabase fresh(temp.path / "new" / "pg");
  BOOST_CHECK_THROW(fresh.ensure_running(), DatabaseError);
  BOOST_TEST(!fs::exists(temp.path / "new"));
}

// Only a caller that may create a cluster makes one.
BOOST_AUTO_TEST_CASE(without_may_create_nothing_is_created) {
  TempDir temp;
  LocalDatabase db(temp.path / "typo" / "pg");
  BOOST_CHECK_EXCEPTION(db.ensure_running(false), DatabaseError, [](const DatabaseError& error) {
    return std::string(error.what()).find("there is no local database") != std::string::npos;
  });
  BOOST_TEST(!fs::exists(temp.path / "typo"));
  BOOST_TEST(!db.is_initialized());
}

// Issue 18: a new local database gets the settings of skype-etl.conf, included from
// postgresql.conf, and stays as durable as PostgreSQL ships.
BOOST_AUTO_TEST_CASE(new_database_is_tuned_for_loads_and_stays_durable) {
  TempDir temp;
  const fs::path data_dir = temp.path / "pg";
  temp.servers.push_back(data_dir);
  LocalDatabase db(data_dir);
  const std::string conninfo = db.ensure_running();

  BOOST_TEST(include_lines(data_dir, false) == 1);
  BOOST_TEST(db.status()["settings"].get<std::string>() == (data_dir / "skype-etl.conf").native());
  const std::string settings = read_text(data_dir / "skype-etl.conf");
  for (const char* name : k_load_settings) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(settings.find(std::string(name) + " = ") != std::string::npos);
      BOOST_TEST(source_file(conninfo, name) == (data_dir / "skype-etl.conf").native());
    }
  }
  BOOST_TEST(show(conninfo, "wal_level") == "minimal");
  BOOST_TEST(show(conninfo, "max_wal_senders") == "0");
  BOOST_TEST(show(conninfo, "checkpoint_timeout") == "30min");
  BOOST_TEST(show(conninfo, "wal_compression") == "pglz");
  BOOST_TEST(show(conninfo, "shared_buffers") != "128MB");  // at least 1 GB of RAM here
  // Durability is PostgreSQL's default.
  BOOST_TEST(show(conninfo, "fsync") == "on");
  BOOST_TEST(show(conninfo, "full_page_writes") == "on");
  BOOST_TEST(show(conninfo, "synchronous_commit") == "on");
  db.stop();
}

// A cluster made before skype-etl wrote settings gets them at its next start, once; a
// setting changed with ALTER SYSTEM wins over skype-etl.conf.
BOOST_AUTO_TEST_CASE(existing_database_gets_the_settings_at_its_next_start) {
  TempDir temp;
  const fs::path data_dir = temp.path / "pg";
  temp.servers.push_back(data_dir);
  LocalDatabase db(data_dir);
  db.ensure_running();
  db.stop();
  // As an older skype-etl left it: no include, no skype-etl.conf.
  edit_postgresql_conf(data_dir, [](const std::string& line) {
    return line.find("skype-etl.conf") == std::string::npos ? line : std::string();
  });
  fs::remove(data_dir / "skype-etl.conf");
  BOOST_REQUIRE_EQUAL(include_lines(data_dir, false), 0);
  std::string conninfo = db.ensure_running();
  BOOST_TEST(include_lines(data_dir, false) == 1);
  BOOST_TEST(fs::exists(data_dir / "skype-etl.conf"));
  {
    pqxx::connection connection(conninfo);
    pqxx::nontransaction tx(connection);
    tx.exec0("ALTER SYSTEM SET shared_buffers = '200MB'");
  }
  db.stop();
  conninfo = db.ensure_running();
  BOOST_TEST(include_lines(data_dir, false) == 1);  // not appended twice
  BOOST_TEST(show(conninfo, "wal_level") == "minimal");
  BOOST_TEST(show(conninfo, "shared_buffers") == "200MB");
  db.stop();
}

// Commenting out the include is the opt-out: skype-etl leaves it so, and PostgreSQL's
// defaults apply from the next start.
BOOST_AUTO_TEST_CASE(a_commented_out_include_is_an_opt_out) {
  TempDir temp;
  const fs::path data_dir = temp.path / "pg";
  temp.servers.push_back(data_dir);
  LocalDatabase db(data_dir);
  db.ensure_running();
  db.stop();
  edit_postgresql_conf(data_dir, [](const std::string& line) {
    return line.rfind("include_if_exists = 'skype-etl.conf'", 0) == 0 ? "#" + line : line;
  });
  const std::string settings_before = read_text(data_dir / "skype-etl.conf");
  // What skype-etl would write must not reappear: make the file differ from it.
  std::ofstream(data_dir / "skype-etl.conf", std::ios::app) << "# the user's note\n";

  const std::string conninfo = db.ensure_running();
  BOOST_TEST(include_lines(data_dir, false) == 0);
  BOOST_TEST(include_lines(data_dir, true) == 1);
  BOOST_TEST(db.status()["settings"].get<std::string>().find("opt-out") != std::string::npos);
  BOOST_TEST(read_text(data_dir / "skype-etl.conf") == settings_before + "# the user's note\n");
  BOOST_TEST(show(conninfo, "wal_level") == "replica");
  BOOST_TEST(show(conninfo, "max_wal_size") == "1GB");
  BOOST_TEST(source_file(conninfo, "shared_buffers") == (data_dir / "postgresql.conf").native());
  BOOST_TEST(show(conninfo, "fsync") == "on");
  db.stop();
}

BOOST_AUTO_TEST_SUITE_END()
