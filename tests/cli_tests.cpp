#define BOOST_TEST_MODULE cli_tests
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "generator/generator.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"
#include "support/test_database.hpp"

namespace st = skype_etl::test;

namespace {

struct Output {
  int code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs the skype-etl binary with `args`, capturing its output and exit code.
Output run_cli(const std::vector<std::string>& args) {
  st::TempDir dir;
  std::fflush(nullptr);  // or the child repeats what the parent had buffered
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    std::freopen((dir / "out").c_str(), "w", stdout);
    std::freopen((dir / "err").c_str(), "w", stderr);
    std::vector<char*> argv{const_cast<char*>(SKYPE_ETL_EXE)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(SKYPE_ETL_EXE, argv.data());
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  Output o;
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.out = slurp(dir / "out");
  o.err = slurp(dir / "err");
  return o;
}

std::size_t lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

const std::string sample =
    std::string(SKYPE_ETL_SOURCE_DIR) + "/examples/sample_export/messages.json";

long long messages(st::TestDatabase& db) {
  if (db.text("SELECT to_regclass('skype.messages')::text").empty()) return 0;
  return db.scalar("SELECT count(*) FROM skype.messages");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_tests)

BOOST_AUTO_TEST_CASE(run_prints_a_summary_and_reload_says_already_loaded) {
  st::TestDatabase db;
  auto first = run_cli({"run", sample, "--db", db.conninfo()});
  BOOST_TEST(first.code == 0, first.err);
  BOOST_TEST(first.out.find("loaded 3 conversations, 8 messages") != std::string::npos, first.out);
  BOOST_TEST(first.out.find("done: 3 conversations, 8 messages in") != std::string::npos);
  auto second =
      run_cli({"run", sample, "--db", db.conninfo(), "--report",
               (std::filesystem::temp_directory_path() / "skype-etl-cli-report.html").string()});
  BOOST_TEST(second.code == 0);
  BOOST_TEST(second.out.find("already loaded") != std::string::npos, second.out);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.exports") == 1);
  const std::string page =
      slurp(std::filesystem::temp_directory_path() / "skype-etl-cli-report.html");
  BOOST_TEST(page.find("data-phase=\"load\"") != std::string::npos);
  std::filesystem::remove(std::filesystem::temp_directory_path() / "skype-etl-cli-report.html");

  auto search = run_cli({"search", "trailhead", "--db", db.conninfo()});
  BOOST_TEST(search.code == 0, search.err);
  BOOST_TEST(search.out.find("see you at the trailhead") != std::string::npos, search.out);
  auto filtered = run_cli({"search", "trailhead", "--from", "8:anna.k", "--db", db.conninfo()});
  BOOST_TEST(filtered.out.empty(), filtered.out);
}

BOOST_AUTO_TEST_CASE(exit_codes_and_one_line_errors) {
  st::TestDatabase db;
  st::TempDir dir;
  // Usage errors: 2.
  BOOST_TEST(run_cli({}).code == 2);
  BOOST_TEST(run_cli({"run"}).code == 2);
  BOOST_TEST(run_cli({"run", sample, "--batch-size", "zero"}).code == 2);
  BOOST_TEST(run_cli({"frobnicate"}).code == 2);
  BOOST_TEST(run_cli({"--help"}).code == 0);

  // Bad input: 3, one line naming the file, nothing in the database.
  st::write_file(dir / "bad.json", "{\"userId\":\"x\",\"conversations\":[1]}");
  auto bad = run_cli({"run", (dir / "bad.json").string(), "--db", db.conninfo()});
  BOOST_TEST(bad.code == 3);
  BOOST_TEST(lines(bad.err) == 1U, bad.err);
  BOOST_TEST(
      bad.err.find("skype-etl: error: cannot read export '" + (dir / "bad.json").string()) == 0U,
      bad.err);
  BOOST_TEST(messages(db) == 0);
  auto missing = run_cli({"run", (dir / "missing.tar").string(), "--db", db.conninfo()});
  BOOST_TEST(missing.code == 3);
  BOOST_TEST(missing.err.find("no such file or directory") != std::string::npos, missing.err);

  // Database errors: 4, and the password never shows.
  auto refused = run_cli({"run", sample, "--db",
                          "host=/nonexistent-socket-dir port=1 dbname=x user=u password=s3cr3t"});
  BOOST_TEST(refused.code == 4, refused.err);
  BOOST_TEST(lines(refused.err) == 1U, refused.err);
  BOOST_TEST(refused.err.find("s3cr3t") == std::string::npos, refused.err);
  auto uri = run_cli({"run", sample, "--db", "postgresql://u:s3cr3t@/x?host=/nonexistent&port=1"});
  BOOST_TEST(uri.code == 4, uri.err);
  BOOST_TEST(uri.err.find("s3cr3t") == std::string::npos, uri.err);

  // Memory limit: 5, recorded in the report, nothing in the database.
  auto limited = run_cli({"run", sample, "--db", db.conninfo(), "--memory-limit-mb", "1",
                          "--report", (dir / "report.json").string()});
  BOOST_TEST(limited.code == 5, limited.err);
  BOOST_TEST(limited.err.find("exceeds limit (1 MB)") != std::string::npos, limited.err);
  BOOST_TEST(slurp(dir / "report.json").find("skype_etl::MemoryLimitExceeded") !=
             std::string::npos);
  BOOST_TEST(messages(db) == 0);
}

BOOST_AUTO_TEST_CASE(two_processes_at_once) {
  st::TestDatabase db;
  st::TempDir dir;
  skype_etl::gen::GeneratorOptions g;
  g.messages = 3000;
  g.seed = 21;
  skype_etl::gen::generate_export(g, dir / "a.json");
  g.seed = 22;
  g.user_id = "8:live:someone.else";
  skype_etl::gen::generate_export(g, dir / "b.json");

  const auto both = [&](const std::string& first, const std::string& second) {
    Output a, b;
    std::thread ta([&] { a = run_cli({"run", first, "--db", db.conninfo()}); });
    std::thread tb([&] { b = run_cli({"run", second, "--db", db.conninfo()}); });
    ta.join();
    tb.join();
    return std::make_pair(a, b);
  };
  // Different exports: both load.
  auto [a, b] = both((dir / "a.json").string(), (dir / "b.json").string());
  BOOST_TEST(a.code == 0, a.err);
  BOOST_TEST(b.code == 0, b.err);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.exports") == 2);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.accounts") == 2);

  // The same new file twice at once: one loads, the other reports already loaded.
  g.seed = 23;
  skype_etl::gen::generate_export(g, dir / "c.json");
  auto [c1, c2] = both((dir / "c.json").string(), (dir / "c.json").string());
  BOOST_TEST(c1.code == 0, c1.err);
  BOOST_TEST(c2.code == 0, c2.err);
  const bool first_loaded = c1.out.find("already loaded") == std::string::npos;
  const bool second_loaded = c2.out.find("already loaded") == std::string::npos;
  BOOST_TEST(first_loaded != second_loaded, c1.out << "\n---\n" << c2.out);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.exports") == 3);
}

BOOST_AUTO_TEST_CASE(kill_9_mid_load_leaves_nothing_and_the_rerun_completes) {
  st::TestDatabase db;
  st::TempDir dir;
  skype_etl::gen::GeneratorOptions g;
  g.seed = 11;
  // Above the loader's side-table size (32 MiB), of an account without a partition: the
  // killed run leaves its half-filled side table behind, which the rerun drops.
  g.messages = 110000;
  g.format = skype_etl::gen::GeneratorOptions::Format::tar;
  const auto summary = skype_etl::gen::generate_export(g, dir / "gen.tar");
  BOOST_REQUIRE(std::filesystem::file_size(dir / "gen.tar") > (32U << 20U));

  int err_pipe[2];
  BOOST_REQUIRE(::pipe(err_pipe) == 0);
  const std::string file = (dir / "gen.tar").string();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close(err_pipe[0]);
    std::freopen("/dev/null", "w", stdout);
    ::execl(SKYPE_ETL_EXE, SKYPE_ETL_EXE, "run", file.c_str(), "--db", db.conninfo().c_str(),
            "--batch-size", "100", "--debug-pause-after-batches", "20", nullptr);
    std::_Exit(127);
  }
  ::close(err_pipe[1]);
  // Wait until the process has loaded 20 batches into its open transaction.
  std::string err;
  char buffer[256];
  while (err.find("paused after 20 batches") == std::string::npos) {
    const ssize_t n = ::read(err_pipe[0], buffer, sizeof buffer);
    if (n <= 0) break;
    err.append(buffer, static_cast<std::size_t>(n));
  }
  BOOST_REQUIRE_MESSAGE(err.find("paused after 20 batches") != std::string::npos, err);
  // The rows are on the server: streamed into the side table of schema skype_load, not
  // committed yet.
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'skype_load'") == 1);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(err_pipe[0]);
  BOOST_TEST(WIFSIGNALED(status));
  // The server notices the dead client and rolls its transaction back.
  for (int i = 0; i < 100 && db.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                       "current_database() AND pid <> pg_backend_pid()") > 0;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  BOOST_TEST(messages(db) == 0);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.exports") == 0);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'skype' AND "
                       "tablename = 'messages'") == 5);
  // The side table stays until the next run finds its lock free.
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'skype_load'") == 1);

  const std::string report = (dir / "rerun.json").string();
  auto rerun =
      run_cli({"run", file, "--db", db.conninfo(), "--batch-size", "100", "--report", report});
  BOOST_TEST(rerun.code == 0, rerun.err);
  std::ifstream in(report);
  const nlohmann::json r = nlohmann::json::parse(in);
  BOOST_TEST(r["exports"][0]["index_rebuild"] == true);
  BOOST_TEST(r["exports"][0]["side_table"]["attached"] == true);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                       "'skype.messages'::regclass") == 1);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'skype_load'") == 0);
  BOOST_TEST(messages(db) == static_cast<long long>(summary.distinct_messages));
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.conversations") ==
             static_cast<long long>(summary.conversations));
}

BOOST_AUTO_TEST_SUITE_END()
