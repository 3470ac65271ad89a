#define BOOST_TEST_MODULE cli_tests
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "generator/generator.hpp"
#include "skype_etl/errors.hpp"
#include "support/browser.hpp"
#include "support/cli_run.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"
#include "support/test_database.hpp"

namespace st = skype_etl::test;
using st::lines;
using st::run_cli;
using st::run_on_terminal;
using st::shell_word;

namespace {

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string sample =
    std::string(SKYPE_ETL_SOURCE_DIR) + "/examples/sample_export/messages.json";

long long messages(st::TestDatabase& db) {
  if (db.text("SELECT to_regclass('skype.messages')::text").empty()) return 0;
  return db.scalar("SELECT count(*) FROM skype.messages");
}

/// An export large enough that a load takes a few seconds (and goes through the side table
/// and its index builds: more than 32 MiB), written once per test binary.
const std::filesystem::path& progress_export() {
  static st::TempDir dir;
  static const std::filesystem::path path = [] {
    skype_etl::gen::GeneratorOptions g;
    g.seed = 16;
    g.messages = 110000;
    g.format = skype_etl::gen::GeneratorOptions::Format::tar;
    skype_etl::gen::generate_export(g, dir / "progress.tar");
    return dir / "progress.tar";
  }();
  return path;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_tests)

BOOST_AUTO_TEST_CASE(run_prints_a_summary_and_reload_says_already_loaded) {
  st::TestDatabase db;
  auto first = run_cli({"run", sample, "--db", db.conninfo()});
  BOOST_TEST(first.code == 0, first.err);
  BOOST_TEST(first.out.find("loaded 3 conversations, 8 messages read: 8 new, 0 updated, 0 "
                            "unchanged, 0 superseded (export 1)") != std::string::npos,
             first.out);
  BOOST_TEST(first.out.find("done: 1 export, 3 conversations, 8 messages read: 8 new, 0 "
                            "updated, 0 unchanged, 0 superseded in") != std::string::npos,
             first.out);
  auto second =
      run_cli({"run", sample, "--db", db.conninfo(), "--report",
               (std::filesystem::temp_directory_path() / "skype-etl-cli-report.html").string()});
  BOOST_TEST(second.code == 0);
  BOOST_TEST(second.out.find("already loaded, nothing stored") != std::string::npos, second.out);
  BOOST_TEST(second.out.find("done: 1 export (0 loaded, 1 already loaded), 0 conversations, 0 "
                             "messages read: 0 new") != std::string::npos,
             second.out);
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
  // --since: a time without a zone is UTC, like the times search prints (the message is
  // 2024-04-30 09:39:50 UTC), whatever the session's TimeZone; a zone shifts it.
  for (const auto& [since, found] :
       std::vector<std::pair<std::string, bool>>{{"2024-04-30", true},
                                                 {"2024-05-01", false},
                                                 {"2024-04-30T09:39:50", true},
                                                 {"2024-04-30 09:39:51", false},
                                                 {"2024-04-30T09:39:50.5Z", false},
                                                 {"2024-04-30T11:39:49+02:00", true},
                                                 {"2024-04-30T11:39:51+0200", false}}) {
    // A session time zone far from UTC: what has no zone must not be read in it.
    const auto since_run = run_cli({"search", "trailhead", "--since", since, "--db", db.conninfo()},
                                   st::CliRun().with_env({{"PGTZ", "Asia/Tokyo"}}));
    BOOST_TEST(since_run.code == 0, since << ": " << since_run.err);
    BOOST_TEST((since_run.out.find("see you at the trailhead") != std::string::npos) == found,
               since << ": " << since_run.out);
  }
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

  // Memory limit: 5, recorded in the reports, nothing in the database.
  auto limited =
      run_cli({"run", sample, "--db", db.conninfo(), "--memory-limit-mb", "1", "--report",
               (dir / "report.json").string(), "--report", (dir / "report.html").string()});
  BOOST_TEST(limited.code == 5, limited.err);
  BOOST_TEST(limited.err.find("exceeds limit (1 MB)") != std::string::npos, limited.err);
  BOOST_TEST(slurp(dir / "report.json").find("skype_etl::MemoryLimitExceeded") !=
             std::string::npos);
  BOOST_TEST(slurp(dir / "report.html").find("MemoryLimitExceeded") != std::string::npos);
  BOOST_TEST(messages(db) == 0);

  // A failed run's reports are written whole, and the run keeps its own exit code (an HTML
  // report of a missing file used to end in a JSON type error, exit 1 and an empty file).
  for (const std::vector<std::string>& failing :
       {std::vector<std::string>{"run", (dir / "missing.tar").string(), "--db", db.conninfo()},
        std::vector<std::string>{"run", sample, "--db",
                                 "host=/nonexistent-socket-dir port=1 dbname=x"}}) {
    auto args = failing;
    for (const char* name : {"failed.html", "failed.json"}) {
      args.push_back("--report");
      args.push_back((dir / name).string());
    }
    auto failed = run_cli(args);
    BOOST_TEST((failed.code == 3 || failed.code == 4), failed.err);
    BOOST_TEST(lines(failed.err) == 1U, failed.err);
    BOOST_TEST(failed.err.find("json.exception") == std::string::npos, failed.err);
    const std::string page = slurp(dir / "failed.html");
    BOOST_TEST(page.find("Failed: ") != std::string::npos);
    BOOST_TEST(page.find("</html>") != std::string::npos);
    const auto report = nlohmann::json::parse(slurp(dir / "failed.json"));
    BOOST_TEST(report["success"] == false);
    BOOST_TEST(report["exit_code"] == failed.code);
  }
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
    st::CliOutput a, b;
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
  BOOST_TEST(r["exports"][0]["load"]["index_rebuild"] == true);
  BOOST_TEST(r["exports"][0]["load"]["side_table"]["attached"] == true);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                       "'skype.messages'::regclass") == 1);
  BOOST_TEST(db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'skype_load'") == 0);
  BOOST_TEST(messages(db) == static_cast<long long>(summary.distinct_messages));
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.conversations") ==
             static_cast<long long>(summary.conversations));
}

BOOST_AUTO_TEST_CASE(unparsable_timestamps_load_with_a_warning_that_says_where) {
  st::TestDatabase db;
  st::TempDir dir;
  const std::string bad = R"({"id":"2","displayName":"Bob","originalarrivaltime":"yesterday",)"
                          R"("messagetype":"RichText","content":"b","from":"8:bob"})";
  const std::string json = st::export_json({st::conversation_json(
      "8:bob", {st::message_json("1", "a"), bad, st::message_json("3", "c")})});
  st::write_file(dir / "m.json", json);
  auto run = run_cli({"run", (dir / "m.json").string(), "--db", db.conninfo()});
  BOOST_TEST(run.code == 0, run.err);
  BOOST_TEST(lines(run.err) == 1U, run.err);
  const std::string expected =
      "skype-etl: warning: " + (dir / "m.json").string() +
      ": 1 messages have no valid timestamp (originalarrivaltime): stored with sent_at NULL "
      "and the value found in details.original_arrival_time; the first is message 1 of "
      "conversation 0 (8:bob) at byte " +
      std::to_string(json.find(bad)) + ": \"yesterday\"";
  BOOST_TEST(run.err.find(expected) == 0U, run.err << "\nexpected: " << expected);
  // The message is kept, with its raw time.
  BOOST_TEST(messages(db) == 3);
  BOOST_TEST(db.text("SELECT details->>'original_arrival_time' FROM skype.messages WHERE "
                     "sent_at IS NULL") == "yesterday");
  BOOST_TEST(db.text("SELECT statistics->'messages'->>'invalid_timestamps' FROM skype.exports") ==
             "1");
}

BOOST_AUTO_TEST_CASE(every_place_reports_the_same_counts) {
  // A generated later export of an account whose first export is loaded: new, unchanged and
  // superseded (repeated ids) messages. The console summary, the JSON and HTML reports and
  // skype.exports.statistics must all say the same.
  st::TestDatabase db;
  st::TempDir dir;
  skype_etl::gen::GeneratorOptions g;
  g.seed = 41;
  g.messages = 3000;
  skype_etl::gen::generate_export(g, dir / "first.json");
  g.newer_percent = 10;
  const auto later = skype_etl::gen::generate_export(g, dir / "later.json");
  BOOST_REQUIRE(later.messages > later.distinct_messages);  // it has repeats
  auto first = run_cli({"run", (dir / "first.json").string(), "--db", db.conninfo()});
  BOOST_REQUIRE_MESSAGE(first.code == 0, first.err);
  const long long stored_before = messages(db);

  const std::string file = (dir / "later.json").string();
  auto run = run_cli({"run", file, "--db", db.conninfo(), "--batch-size", "200", "--report",
                      (dir / "r.json").string(), "--report", (dir / "r.html").string()});
  BOOST_REQUIRE_MESSAGE(run.code == 0, run.err);
  const char* names[] = {"read", "new", "updated", "unchanged", "superseded"};

  // What every place must say.
  std::map<std::string, long long> expected{
      {"read", static_cast<long long>(later.messages)},
      {"new", messages(db) - stored_before},
      {"updated", 0},
      {"unchanged", stored_before},
      {"superseded", static_cast<long long>(later.messages - later.distinct_messages)}};
  BOOST_TEST(expected["new"] > 0);
  BOOST_TEST(expected["new"] + expected["unchanged"] ==
             static_cast<long long>(later.distinct_messages));

  // Console.
  std::smatch m;
  const std::regex line(std::regex_replace(file, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                        R"(: loaded (\d+) conversations, (\d+) messages read: (\d+) new, (\d+) )"
                        R"(updated, (\d+) unchanged, (\d+) superseded \(export (\d+)\))");
  BOOST_REQUIRE_MESSAGE(std::regex_search(run.out, m, line), run.out);
  std::map<std::string, long long> console;
  for (int i = 0; i < 5; ++i) console[names[i]] = std::stoll(m[i + 2]);
  const long long export_id = std::stoll(m[7]);
  const std::regex done(R"(done: 1 export, (\d+) conversations, (\d+) messages read: (\d+) new, )"
                        R"((\d+) updated, (\d+) unchanged, (\d+) superseded in)");
  std::smatch d;
  BOOST_REQUIRE_MESSAGE(std::regex_search(run.out, d, done), run.out);
  for (int i = 0; i < 5; ++i) BOOST_TEST(std::stoll(d[i + 2]) == console[names[i]], names[i]);
  BOOST_TEST(std::stoll(d[1]) == std::stoll(m[1]));

  // JSON report.
  const auto report = nlohmann::json::parse(slurp(dir / "r.json"));
  const auto& entry = report["exports"][0];
  // HTML report: the export's row.
  const std::string page = slurp(dir / "r.html");
  const auto row_at = page.find("<tr data-export=\"" + file + "\">");
  BOOST_REQUIRE(row_at != std::string::npos);
  const std::string row = page.substr(row_at, page.find("</tr>", row_at) - row_at);
  auto html_count = [&row](const std::string& name) {
    std::smatch c;
    const std::regex cell("data-count=\"" + name + "\">(\\d+)<");
    return std::regex_search(row, c, cell) ? std::stoll(c[1]) : -1LL;
  };
  // skype.exports.statistics.
  const auto stored = nlohmann::json::parse(db.text(
      "SELECT statistics FROM skype.exports WHERE export_id = " + std::to_string(export_id)));

  for (const char* name : names) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(console[name] == expected[name]);
      BOOST_TEST(entry["messages"][name].get<long long>() == expected[name]);
      BOOST_TEST(html_count(name) == expected[name]);
      BOOST_TEST(stored["messages"][name].get<long long>() == expected[name]);
      BOOST_TEST(report["totals"]["messages"][name].get<long long>() == expected[name]);
    }
  }
  BOOST_TEST(entry["conversations"].get<long long>() == std::stoll(m[1]));
  BOOST_TEST(html_count("conversations") == std::stoll(m[1]));
  BOOST_TEST(stored["conversations"] == entry["conversations"]);
  // The run's own figures agree: each message once, every phase at 100%, ended.
  BOOST_TEST(report["statistics"]["total"]["messages_processed"].get<long long>() ==
             expected["read"]);
  for (const char* phase : {"extract", "transform", "load"}) {
    BOOST_TEST_CONTEXT(phase) {
      const auto& p = report["statistics"]["phases"][phase];
      BOOST_TEST(p["status"] == "completed");
      BOOST_TEST(p["messages_processed"].get<long long>() == expected["read"]);
      BOOST_TEST(p["total_messages"].get<long long>() == expected["read"]);
      BOOST_TEST(stored["phases"][phase]["status"] == "completed");
      BOOST_TEST(stored["phases"][phase]["end_time"].is_string());
    }
  }
}

// Issue 15: a FIFO given as the export, or as messages.json of an unpacked export, used to
// wait forever for a writer. It is refused at once: exit 3, one line.
BOOST_AUTO_TEST_CASE(a_fifo_is_refused_at_once_not_waited_on) {
  st::TestDatabase db;
  st::TempDir dir;
  BOOST_REQUIRE(::mkfifo((dir / "pipe.tar").c_str(), 0600) == 0);
  std::filesystem::create_directory(dir / "unpacked");
  BOOST_REQUIRE(::mkfifo((dir / "unpacked" / "messages.json").c_str(), 0600) == 0);
  for (const auto& input : {dir / "pipe.tar", dir / "unpacked"}) {
    BOOST_TEST_CONTEXT(input) {
      const auto run = run_cli({"run", input.string(), "--db", db.conninfo()},
                               st::CliRun().with_timeout(std::chrono::seconds(20)));
      BOOST_TEST(run.code == 3, run.err);
      BOOST_TEST(lines(run.err) == 1U, run.err);
      BOOST_TEST(run.err.find("not a regular file: a named pipe (FIFO)") != std::string::npos,
                 run.err);
    }
  }
  BOOST_TEST(messages(db) == 0);
}

// Issue 15: an export whose file name is not UTF-8 (byte 0xFF) failed with exit 4, as the
// name could not be stored in skype.exports. It is stored escaped, losslessly.
BOOST_AUTO_TEST_CASE(a_file_name_that_is_not_utf8_is_stored_escaped) {
  st::TestDatabase db;
  st::TempDir dir;
  const auto tar = dir /
                   "n\xFF"
                   "ame\\x.tar";
  st::write_file(
      tar,
      st::make_tar({{"messages.json", st::export_json({st::numbered_conversation("8:bob", 2)})}}));
  const auto run = run_cli(
      {"run", tar.string(), "--db", db.conninfo(), "--report", (dir / "report.json").string()});
  BOOST_TEST(run.code == 0, run.err);
  BOOST_TEST(run.err.empty(), run.err);
  const std::string escaped = "n\\xFFame\\\\x.tar";
  BOOST_TEST(db.text("SELECT file_name FROM skype.exports") == escaped);
  const auto report = nlohmann::json::parse(slurp(dir / "report.json"));
  BOOST_TEST(report["exports"][0]["file"] == (dir / escaped).string());
  BOOST_TEST(run.out.find((dir / escaped).string() + ": loaded") == 0U, run.out);
  BOOST_TEST(messages(db) == 2);
}

// Issue 15: a 1 MB tar whose 1,000 messages name one 1 MiB media/<docid>.json took a GB with
// --with-media, and --memory-limit-mb fired only far above the limit. The metadata is too
// large to be real: ignored, with a warning line, and memory stays flat.
BOOST_AUTO_TEST_CASE(an_oversized_media_metadata_file_is_ignored_with_a_warning) {
  st::TestDatabase db;
  st::TempDir dir;
  std::vector<std::string> messages;
  for (int i = 0; i < 1000; ++i)
    messages.push_back(st::message_json(
        std::to_string(i), "file",
        R"("messagetype":"RichText/Media_GenericFile","amsreferences":["0-big"])"));
  const std::string big = R"({"filename":"big.png","pad":")" + std::string(1 << 20, 'x') + "\"}";
  st::write_file(
      dir / "e.tar",
      st::make_tar({{"messages.json", st::export_json({st::conversation_json("8:x", messages)})},
                    {"media/0-big.json", big}}));
  const auto run =
      run_cli({"run", (dir / "e.tar").string(), "--db", db.conninfo(), "--with-media",
               "--memory-limit-mb", "200", "--report", (dir / "report.json").string()});
  BOOST_TEST(run.code == 0, run.err);
  BOOST_TEST(lines(run.err) == 1U, run.err);
  const std::string expected =
      "skype-etl: warning: " + (dir / "e.tar").string() +
      ": 1 media metadata files (media/<docid>.json) ignored, their attachments stored without "
      "name and content type; the first, \"media/0-big.json\", is larger than 64 KiB (" +
      std::to_string(big.size()) + " bytes)\n";
  BOOST_TEST(run.err == expected);
  const auto report = nlohmann::json::parse(slurp(dir / "report.json"));
  BOOST_TEST(report["statistics"]["memory"]["peak_mb"].get<double>() < 100.0);
  BOOST_TEST(report["statistics"]["extract"]["media_metadata_ignored"] == 1);
  BOOST_TEST(report["exports"][0]["media"]["metadata_ignored"] == 1);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.attachments WHERE doc_id = '0-big' AND name "
                       "IS NULL") == 1000);
}

// Issue 15: media go to a directory named after the input, and an input named "...tar" gave
// "..": its files landed beside --output-dir. Every input's directory is inside it.
BOOST_AUTO_TEST_CASE(media_never_land_outside_the_output_directory) {
  st::TestDatabase db;
  st::TempDir dir;
  std::filesystem::create_directories(dir / "in");
  for (const char* name : {"...tar", "..tar"})
    st::write_file(
        dir / "in" / name,
        st::make_tar({{"messages.json",
                       st::export_json({st::numbered_conversation(std::string("8:") + name, 2)})},
                      {"media/0-abc.1.png", name}}));
  const auto run =
      run_cli({"run", (dir / "in" / "...tar").string(), (dir / "in" / "..tar").string(), "--db",
               db.conninfo(), "--with-media", "--output-dir", (dir / "out" / "sub").string()});
  BOOST_TEST(run.code == 0, run.err);
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path()))
    if (e.is_regular_file()) found.push_back(std::filesystem::relative(e.path(), dir.path()));
  std::sort(found.begin(), found.end());
  const std::vector<std::string> expected{"in/...tar", "in/..tar", "out/sub/_/media/0-abc.1.png",
                                          "out/sub/__/media/0-abc.1.png"};
  BOOST_TEST(found == expected, boost::test_tools::per_element());
  BOOST_TEST(slurp(dir / "out" / "sub" / "__" / "media" / "0-abc.1.png") == "...tar");
}

// Issue 15: files a fuzzer made that loaded as if valid (exit 0) or failed in the database
// (exit 4). Each fails with exit 3 and one short, printable line; nothing reaches the
// database.
BOOST_AUTO_TEST_CASE(hostile_input_fails_with_one_printable_line_and_stores_nothing) {
  st::TempDir dir;
  const auto message = [](const std::string& id, const std::string& rest = "") {
    return R"({"id":)" + id +
           R"(,"originalarrivaltime":"2024-01-02T03:04:05Z","messagetype":"RichText",)"
           R"("version":1.0,"content":"c","from":"8:a")" +
           rest + "}";
  };
  const auto conversation = [](const std::string& id, const std::vector<std::string>& messages,
                               const std::string& rest = "") {
    std::string c =
        R"({"id":)" + id + R"(,"displayName":null,"version":1.0,)" + rest + R"("MessageList":[)";
    for (std::size_t i = 0; i < messages.size(); ++i) c += (i ? "," : "") + messages[i];
    return c + "]}";
  };
  const auto file = [](const std::vector<std::string>& conversations, const std::string& tail = "",
                       const std::string& user = R"("8:me")") {
    std::string e =
        R"({"userId":)" + user + R"(,"exportDate":"2025-01-01T00:00","conversations":[)";
    for (std::size_t i = 0; i < conversations.size(); ++i) e += (i ? "," : "") + conversations[i];
    return e + "]" + tail + "}";
  };
  const std::string a = R"("19:a@thread.skype")";
  const std::string huge_key(1 << 20, 'k');
  struct Case {
    std::string name;
    std::string json;
    std::string expected;  // fragment of the error line
  };
  const std::vector<Case> cases{
      {"damaged MessageList key",
       file({conversation(a, {message(R"("1")")}),
             R"({"id":"19:b@thread.skype","MessageList\u0000":[)" + message(R"("2")") + "]}"}),
       R"(damaged key "MessageList\x00")"},
      {"messages without ids",
       file({conversation(a, {R"({"content":"a"})", R"({"content":"b"})"})}),
       "message has no \"id\""},
      {"conversations without ids",
       file({R"({"MessageList":[)" + message(R"("1")") + "]}",
             R"({"MessageList":[)" + message(R"("1")") + "]}"}),
       "conversation has no \"id\""},
      {"null message id", file({conversation(a, {message("null")})}), "message id is null"},
      {"second conversations key",
       file({conversation(a, {message(R"("1")")})}, ",\"conversations\":[garbage \xff"),
       "duplicate key \"conversations\""},
      {"bad literal in a kept value", file({conversation(a, {message(R"("1")", R"(,"x":nuhl)")})}),
       "invalid literal"},
      {"lone surrogate in properties",
       file({conversation(a, {message(R"("1")", R"(,"properties":{"x":"\ud800"})")})}),
       "invalid JSON in properties"},
      {"bad escape in the topic",
       file({conversation(a, {message(R"("1")")}, R"("threadProperties":{"topic":"a\qb"},)")}),
       "invalid escape"},
      {"conversation id too long", file({conversation("\"" + std::string(4096, 'x') + "\"", {})}),
       "is longer than 512 bytes"},
      {"version of 20 digits",
       file({conversation(a, {R"({"id":"1","version":12345678901234567890})"})}),
       "\"version\" is not a number"},
      {"userId an object", file({conversation(a, {message(R"("1")")})}, "", R"({"a":1})"),
       "\"userId\" is an object"},
      {"userId without its account", file({conversation(a, {message(R"("1")")})}, "", R"("8:")"),
       "names no account"},
      {"terminal escapes in a key",
       file({conversation(a, {message(R"("1")", ",\"\x1b]0;owned\x07\x1b[2J\":1")})}),
       "unescaped characters"},
      {"terminal escapes in an id",
       file({conversation(R"("\u001b]0;owned\u0007")", {message(R"("1")")})}),
       R"("\x1b]0;owned\x07" holds a control character)"},
      {"a 1 MiB key", file({conversation(a, {message(R"("1")", ",\"" + huge_key + "\":nuhl")})}),
       "invalid literal"},
  };
  st::TestDatabase db;
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      st::write_file(dir / "m.json", c.json);
      const auto run = run_cli({"run", (dir / "m.json").string(), "--db", db.conninfo()});
      BOOST_TEST(run.code == 3, run.err.substr(0, 500));
      BOOST_TEST(lines(run.err) == 1U, run.err.substr(0, 500));
      BOOST_TEST(run.err.find(c.expected) != std::string::npos, run.err.substr(0, 500));
      BOOST_TEST(run.err.size() < 1000U);
      for (const char ch : run.err.substr(0, run.err.size() - 1))
        BOOST_TEST_REQUIRE((static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7F), run.err);
      BOOST_TEST(messages(db) == 0);
    }
  }
}

// Issue 16: every documented failure of every command, with its exit code (README, "Exit
// codes") and what its one line says. Nothing is stored by any of them.
BOOST_AUTO_TEST_CASE(every_documented_failure_of_every_command) {
  st::TestDatabase db;
  st::TempDir dir;
  st::write_file(dir / "bad.json", "{\"userId\":\"x\",\"conversations\":[1]}");
  st::write_file(dir / "file", "not a directory");
  st::write_file(
      dir / "media.tar",
      st::make_tar({{"messages.json", st::export_json({st::numbered_conversation("8:media", 2)})},
                    {"media/0-abc.1.png", "png"}}));
  const std::string typo = (dir / "typo").string();
  const std::string no_server =
      "host=/nonexistent-socket-dir port=1 dbname=x user=u password=s3cr3t";
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string expected;  // fragment of the one error line
    st::Env env;
  };
  const std::vector<Case> cases{
      // 2: the command line, for every command.
      {{}, 2, "a command is needed: run, search, export, stats or db"},
      {{"frobnicate"},
       2,
       "unknown command 'frobnicate': the commands are run, search, export, stats or db"},
      {{"db", "frobnicate"}, 2, "unknown command 'db frobnicate': the db commands are status"},
      {{"db"}, 2, "db needs a command: status, start, stop or psql"},
      {{"run"}, 2, "no export to load"},
      {{"run", sample, "--no-such-option"}, 2, "--no-such-option"},
      {{"run", sample, "--batch-size", "0"},
       2,
       "--batch-size must be a whole number from 1 to 1000000 (got \"0\")"},
      {{"run", sample, "--batch-size", "zero"}, 2, "--batch-size must be a whole number from 1"},
      {{"run", sample, "--batches-in-flight", "1025"},
       2,
       "--batches-in-flight must be a whole number from 1 to 1024"},
      {{"run", sample, "--copy-streams", "0"},
       2,
       "--copy-streams must be a whole number from 1 to 16"},
      {{"run", sample, "--memory-limit-mb", "-1"}, 2, "--memory-limit-mb must be a whole number"},
      {{"run", sample, "--maintenance-work-mem", "lots"},
       2,
       "--maintenance-work-mem must be a size from 1MB to 1TB"},
      {{"run", sample, "--maintenance-work-mem", "512"}, 2, "(got \"512\")"},
      {{"run", sample, "--maintenance-work-mem", "2TB"},
       2,
       "--maintenance-work-mem must be a size"},
      {{"run", sample, "--max-gzip-ratio", "1e3"},
       2,
       "--max-gzip-ratio must be a whole number from 0 to 1000000"},
      {{"run", sample, "--log-level", "loud"}, 2, "--log-level must be debug, info, warn or error"},
      {{"run", sample, "--progress", "fancy"}, 2, "--progress must be none, bar or plain"},
      {{"run", sample, "--progress-interval", "0"},
       2,
       "--progress-interval must be a number of seconds from 0.1 to 86400"},
      {{"run", sample, "--db", "not a conninfo at all"},
       2,
       "--db \"not a conninfo at all\" is not a connection string libpq can parse: missing \"=\" "
       "after \"not\""},
      {{"run", sample, "--db", "password=s3cr3t host"}, 2, "password=***"},
      {{"run", sample},
       2,
       "DATABASE_URL \"not a conninfo\" is not a connection string",
       {{"DATABASE_URL", "not a conninfo"}}},
      {{"run", sample, "--db", db.conninfo(), "--data-dir", typo},
       2,
       "--db and --data-dir cannot be given together"},
      {{"search", ""}, 2, "words must hold a word to find"},
      {{"search", "x", "--since", "notadate", "--db", db.conninfo()},
       2,
       "--since \"notadate\" is not a date; accepted: YYYY-MM-DD, or YYYY-MM-DDTHH:MM"},
      {{"search", "x", "--since", "2023-02-29", "--db", db.conninfo()}, 2, "is not a date"},
      {{"search", "x", "--since", "2024-01-01T25:00", "--db", db.conninfo()}, 2, "is not a date"},
      {{"search", "x", "--limit", "0"}, 2, "--limit must be a whole number from 1 to 1000000"},
      {{"search", "x", "--db", "not a conninfo"}, 2, "is not a connection string libpq can parse"},
      {{"db", "psql", "--db", "not a conninfo"}, 2, "is not a connection string libpq can parse"},
      {{"db", "status", "--db", db.conninfo()}, 2, "--db"},
      // 3: the export.
      {{"run", (dir / "missing.tar").string(), "--db", db.conninfo()},
       3,
       "cannot read export '" + (dir / "missing.tar").string() + "'"},
      {{"run", (dir / "bad.json").string(), "--db", db.conninfo()},
       3,
       "cannot read export '" + (dir / "bad.json").string()},
      // 4: the database, for every command that uses one.
      {{"run", sample, "--db", no_server}, 4, "/nonexistent-socket-dir"},
      {{"search", "x", "--db", no_server}, 4, "/nonexistent-socket-dir"},
      {{"run", sample, "--db", "postgresql://u:s3cr3t@/x?host=/nonexistent&port=1"},
       4,
       "/nonexistent"},
      {{"search", "x", "--data-dir", typo},
       4,
       "there is no local database in \"" + typo + "\" yet"},
      {{"db", "psql", "--data-dir", typo}, 4, "there is no local database in \"" + typo + "\""},
      {{"db", "stop", "--data-dir", typo}, 4, "there is no local database in \"" + typo + "\""},
      // 5: the memory limit.
      {{"run", sample, "--db", db.conninfo(), "--memory-limit-mb", "1"}, 5, "exceeds limit (1 MB)"},
      // 6: what skype-etl writes.
      {{"run", sample, "--db", db.conninfo(), "--report", "/nonexistent/dir/out.json"},
       6,
       "cannot write report '/nonexistent/dir/out.json': No such file or directory"},
      {{"run", sample, "--db", db.conninfo(), "--report", dir.path().string()},
       6,
       "cannot write report '" + dir.path().string() + "': Is a directory"},
      {{"run", (dir / "media.tar").string(), "--db", db.conninfo(), "--with-media", "--output-dir",
        (dir / "file" / "sub").string()},
       6,
       "cannot write media directory '" + (dir / "file").string()},
  };
  for (const Case& c : cases) {
    std::string name;
    for (const auto& a : c.args) name += (name.empty() ? "" : " ") + a;
    BOOST_TEST_CONTEXT("skype-etl " << name) {
      const auto run = run_cli(c.args, st::CliRun().with_env(c.env));
      BOOST_TEST(run.code == c.code, run.err);
      BOOST_TEST(lines(run.err) == 1U, run.err);
      BOOST_TEST(run.err.find("skype-etl: error: ") == 0U, run.err);
      BOOST_TEST(run.err.find(c.expected) != std::string::npos, run.err);
      BOOST_TEST(run.err.find("s3cr3t") == std::string::npos, run.err);
      BOOST_TEST(messages(db) == 0);
    }
  }
  BOOST_TEST(!std::filesystem::exists(typo));
  // std::bad_alloc is the system's refusal, not --memory-limit-mb's: no exit 5.
  BOOST_TEST((skype_etl::exit_code_for(std::bad_alloc()) == skype_etl::ExitCode::internal));
}

// Issue 16: levels on stderr, -q, and never a password in what is logged.
BOOST_AUTO_TEST_CASE(logging_has_levels_quiet_and_no_passwords) {
  st::TestDatabase db;
  st::TempDir dir;
  const auto quiet_run = run_cli({"run", sample, "--db", db.conninfo()});
  BOOST_TEST(quiet_run.code == 0, quiet_run.err);
  BOOST_TEST(quiet_run.err.empty(), quiet_run.err);  // default warn: nothing to say

  const auto info = run_cli({"run", sample, "--db", db.conninfo(), "-v"});
  BOOST_TEST(info.code == 0, info.err);
  for (const char* line :
       {"skype-etl: info: database: " /* the choice */, "skype-etl: info: phase extract started",
        "skype-etl: info: phase load started", "skype-etl: info: phase load completed: "})
    BOOST_TEST(info.err.find(line) != std::string::npos, line << " in " << info.err);
  BOOST_TEST(info.err.find("debug:") == std::string::npos, info.err);

  const std::string host = std::getenv("PGHOST") ? std::getenv("PGHOST") : "";
  const std::string port = std::getenv("PGPORT") ? std::getenv("PGPORT") : "5432";
  const std::string user = std::getenv("PGUSER") ? std::getenv("PGUSER") : "postgres";
  for (const std::string& conninfo :
       {db.conninfo() + " password=s3cr3t",
        "postgresql://" + user + ":s3cr3t@/" + db.name() + "?host=" + host + "&port=" + port}) {
    BOOST_TEST_CONTEXT(conninfo) {
      for (const char* level : {"-vv", "--log-level=debug"}) {
        const auto debug = run_cli({"run", sample, "--db", conninfo, level});
        BOOST_TEST(debug.code == 0, debug.err);
        BOOST_TEST(
            debug.err.find("skype-etl: debug: connecting to PostgreSQL: ") != std::string::npos,
            debug.err);
        BOOST_TEST(debug.err.find("***") != std::string::npos, debug.err);
        BOOST_TEST(debug.err.find("s3cr3t") == std::string::npos, debug.err);
      }
    }
  }
  // A failed connection at debug level: neither the log nor the error shows it.
  const auto refused = run_cli(
      {"search", "x", "-vv", "--db", "host=/nonexistent-socket-dir port=1 user=u password=s3cr3t"});
  BOOST_TEST(refused.code == 4, refused.err);
  BOOST_TEST(refused.err.find("s3cr3t") == std::string::npos, refused.err);

  // -q: warnings go, errors and the results stay.
  st::write_file(dir / "t.json",
                 R"({"userId":"8:me","exportDate":"2025-01-01T00:00","conversations":[)"
                 R"({"id":"19:a@thread.skype","MessageList":[{"id":"1","originalarrivaltime":)"
                 R"("notatime","messagetype":"RichText","content":"c","from":"8:a"}]}]})");
  const auto warned = run_cli({"run", (dir / "t.json").string(), "--db", db.conninfo()});
  BOOST_TEST(warned.code == 0, warned.err);
  BOOST_TEST(warned.err.find("skype-etl: warning: ") == 0U, warned.err);
  st::TestDatabase other;
  for (const char* quiet : {"-q", "--quiet"}) {
    BOOST_TEST_CONTEXT(quiet) {
      st::TestDatabase fresh;
      const auto q = run_cli({"run", (dir / "t.json").string(), "--db", fresh.conninfo(), quiet});
      BOOST_TEST(q.code == 0, q.err);
      BOOST_TEST(q.err.empty(), q.err);
      BOOST_TEST(lines(q.out) == 1U, q.out);
      BOOST_TEST(q.out.find("done: 1 export") == 0U, q.out);
      // -q wins over -v.
      const auto qv = run_cli({"run", sample, "--db", fresh.conninfo(), quiet, "-v"});
      BOOST_TEST(qv.err.empty(), qv.err);
      const auto failed =
          run_cli({"run", (dir / "missing.tar").string(), "--db", fresh.conninfo(), quiet});
      BOOST_TEST(failed.code == 3);
      BOOST_TEST(lines(failed.err) == 1U, failed.err);
      const auto none = run_cli({"search", "nosuchword", "--db", fresh.conninfo(), quiet});
      BOOST_TEST(none.code == 0, none.err);
      BOOST_TEST(none.err.empty(), none.err);
      BOOST_TEST(run_cli({"db", "status", quiet}).code == 0);
    }
  }
  const auto none = run_cli({"search", "nosuchword", "--db", db.conninfo()});
  BOOST_TEST(none.err == "skype-etl: no matches\n");
  // --log-level error hides the warning too; -q before the command works as well.
  const auto error_level =
      run_cli({"run", (dir / "t.json").string(), "--db", other.conninfo(), "--log-level", "error"});
  BOOST_TEST(error_level.code == 0, error_level.err);
  BOOST_TEST(error_level.err.empty(), error_level.err);
  const auto before = run_cli({"-q", "run", sample, "--db", other.conninfo()});
  BOOST_TEST(before.code == 0, before.err);
  BOOST_TEST(lines(before.out) == 1U, before.out);
}

// Issue 16: --report chooses JSON or HTML by its extension, in any case.
BOOST_AUTO_TEST_CASE(the_report_format_follows_the_extension_in_any_case) {
  st::TestDatabase db;
  st::TempDir dir;
  const auto run =
      run_cli({"run", sample, "--db", db.conninfo(), "--report", (dir / "r.HTML").string(),
               "--report", (dir / "r.Htm").string(), "--report", (dir / "r.JSON").string(),
               "--report", (dir / "r").string()});
  BOOST_TEST(run.code == 0, run.err);
  for (const char* page : {"r.HTML", "r.Htm"})
    BOOST_TEST(slurp(dir / page).find("<!DOCTYPE html>") == 0U, page);
  for (const char* json : {"r.JSON", "r"})
    BOOST_TEST(nlohmann::json::parse(slurp(dir / json))["success"] == true, json);
}

// Issue 16: one rule chooses the database for run, search and db psql (README, "Choosing
// the database"); db psql used to ignore --db and PGDATABASE.
BOOST_AUTO_TEST_CASE(every_command_chooses_the_database_by_one_rule) {
  st::TestDatabase db;
  st::TestDatabase other;
  const std::string host = std::getenv("PGHOST") ? std::getenv("PGHOST") : "";
  const std::string port = std::getenv("PGPORT") ? std::getenv("PGPORT") : "5432";
  const std::string url = "postgresql:///" + db.name() + "?host=" + host + "&port=" + port;
  const std::vector<std::string> psql{"db", "psql", "-At", "-c", "SELECT current_database()"};
  const auto with = [](std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  struct Case {
    std::string name;
    std::vector<std::string> options;
    st::Env env;
  };
  const std::vector<Case> cases{
      {"--db", {"--db", "dbname=" + db.name()}, {{"PGDATABASE", other.name()}}},
      {"--db over DATABASE_URL", {"--db", url}, {{"DATABASE_URL", "dbname=" + other.name()}}},
      {"DATABASE_URL over PG*", {}, {{"DATABASE_URL", url}, {"PGDATABASE", other.name()}}},
      {"PGDATABASE", {}, {{"PGDATABASE", db.name()}, {"DATABASE_URL", std::nullopt}}},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      const auto opened = run_cli(with(psql, c.options), st::CliRun().with_env(c.env));
      BOOST_TEST(opened.code == 0, opened.err);
      BOOST_TEST(opened.out == db.name() + "\n", opened.out);
    }
  }
  // run and search by the environment alone.
  const st::Env env{{"PGDATABASE", db.name()}, {"DATABASE_URL", std::nullopt}};
  const auto loaded = run_cli({"run", sample, "-v"}, st::CliRun().with_env(env));
  BOOST_TEST(loaded.code == 0, loaded.err);
  BOOST_TEST(loaded.err.find("(the PG* environment)") != std::string::npos, loaded.err);
  BOOST_TEST(messages(db) == 8);
  BOOST_TEST(messages(other) == 0);
  const auto found = run_cli({"search", "trailhead"}, st::CliRun().with_env(env));
  BOOST_TEST(found.out.find("see you at the trailhead") != std::string::npos, found.out);
  // db status names the database the commands use.
  const auto status = run_cli({"db", "status"}, st::CliRun().with_env(env));
  BOOST_TEST(status.code == 0, status.err);
  BOOST_TEST(nlohmann::json::parse(status.out)["used_by_the_commands"].get<std::string>().find(
                 "the PG* environment") != std::string::npos,
             status.out);
}

namespace {

/// Stops the local database of `data_dir` when the test ends, whatever happened.
struct StopsLocalDatabase {
  std::string data_dir;
  ~StopsLocalDatabase() { run_cli({"db", "stop", "--data-dir", data_dir}); }
};

}  // namespace

// Issue 16: only run and db start create a local database, and say so; --data-dir works
// after the db command; a mistyped directory is never made a cluster; a failed first start
// leaves nothing behind.
BOOST_AUTO_TEST_CASE(only_run_and_db_start_create_a_local_database) {
  st::TempDir dir;
  BOOST_REQUIRE_EQUAL(::chmod(dir.path().c_str(), 0755), 0);  // as root, postgres runs it
  const std::string typo = (dir / "typo" / "pg").string();
  const auto status = run_cli({"db", "status", "--data-dir", typo});
  BOOST_TEST(status.code == 0, status.err);
  const auto json = nlohmann::json::parse(status.out);
  BOOST_TEST(json["data_dir"].get<std::string>() == typo);
  BOOST_TEST(json["initialized"] == false);
  BOOST_TEST(json["used_by_the_commands"].get<std::string>().find("(--data-dir)") !=
             std::string::npos);
  for (const auto& args : {std::vector<std::string>{"db", "psql", "--data-dir", typo},
                           std::vector<std::string>{"db", "stop", "--data-dir", typo},
                           std::vector<std::string>{"db", "--data-dir", typo, "psql"},
                           std::vector<std::string>{"search", "x", "--data-dir", typo}}) {
    const auto refused = run_cli(args);
    BOOST_TEST(refused.code == 4, refused.err);
    BOOST_TEST(refused.err.find("there is no local database in") != std::string::npos, refused.err);
  }
  BOOST_TEST(!std::filesystem::exists(dir / "typo"));

  // A first start that fails (here initdb) removes what it made.
  std::filesystem::create_directories(dir / "bin");
  for (const char* program : {"initdb", "pg_ctl"}) {
    st::write_file(dir / "bin" / program,
                   "#!/bin/sh\necho 'cannot do it' >&2\n[ -d \"$2\" ] && touch \"$2/half-made\"\n"
                   "exit 1\n");
    std::filesystem::permissions(dir / "bin" / program, std::filesystem::perms(0755));
  }
  const st::Env broken{{"SKYPE_ETL_PG_BINDIR", (dir / "bin").string()}};
  const auto failed_start = run_cli({"db", "start", "--data-dir", (dir / "new" / "pg").string()},
                                    st::CliRun().with_env(broken));
  BOOST_TEST(failed_start.code == 4, failed_start.err);
  BOOST_TEST(failed_start.err.find("initdb failed") != std::string::npos, failed_start.err);
  BOOST_TEST(!std::filesystem::exists(dir / "new"));
  std::filesystem::create_directories(dir / "empty");
  const auto failed_run = run_cli({"run", sample, "--data-dir", (dir / "empty" / "pg").string()},
                                  st::CliRun().with_env(broken));
  BOOST_TEST(failed_run.code == 4, failed_run.err);
  BOOST_TEST(std::filesystem::is_empty(dir / "empty"));

  // db start creates one, says so, and the options come before or after the command.
  const std::string data_dir = (dir / "pg").string();
  StopsLocalDatabase stop{data_dir};
  const auto started = run_cli({"db", "start", "--data-dir", data_dir});
  BOOST_TEST_REQUIRE(started.code == 0, started.err);
  BOOST_TEST(started.err.find("skype-etl: warning: created a new local database in \"" + data_dir +
                              "\"") == 0U,
             started.err);
  BOOST_TEST(started.out.find("host=") == 0U, started.out);
  for (const auto& args : {std::vector<std::string>{"db", "status", "--data-dir", data_dir},
                           std::vector<std::string>{"db", "--data-dir", data_dir, "status"}}) {
    const auto running = run_cli(args);
    BOOST_TEST(running.code == 0, running.err);
    BOOST_TEST(nlohmann::json::parse(running.out)["running"] == true, running.out);
  }
  const auto again = run_cli({"db", "start", "--data-dir", data_dir});
  BOOST_TEST(again.code == 0, again.err);
  BOOST_TEST(again.err.empty(), again.err);  // nothing new: nothing said
  const auto loaded = run_cli({"run", sample, "--data-dir", data_dir});
  BOOST_TEST(loaded.code == 0, loaded.err);
  const auto opened = run_cli(
      {"db", "psql", "--data-dir", data_dir, "-At", "-c", "SELECT count(*) FROM skype.messages"});
  BOOST_TEST(opened.code == 0, opened.err);
  BOOST_TEST(opened.out == "8\n", opened.out);
  const auto stopped = run_cli({"db", "stop", "--data-dir", data_dir});
  BOOST_TEST(stopped.code == 0, stopped.err);
  BOOST_TEST(stopped.out.find("stopped the local database in " + data_dir) == 0U, stopped.out);
}

namespace {

/// The option names (-v, --db, ...) of `skype-etl ARGS --help`, but --help itself.
std::set<std::string> help_options(const std::vector<std::string>& command,
                                   std::vector<std::string>* without_default = nullptr) {
  auto args = command;
  args.push_back("--help");
  const auto help = run_cli(args);
  BOOST_TEST(help.code == 0, help.err);
  std::set<std::string> names;
  std::istringstream in(help.out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  -", 0) != 0) continue;
    std::istringstream words(line);
    std::string spec;
    words >> spec;
    std::istringstream parts(spec);
    for (std::string name; std::getline(parts, name, ',');)
      if (name != "-h" && name != "--help") names.insert(name);
    if (spec != "-h,--help" && line.find("default: ") == std::string::npos && without_default)
      without_default->push_back(line);
  }
  return names;
}

/// The option names in the first column of the README table that follows the line that
/// starts with `heading`.
std::set<std::string> readme_options(const std::string& heading) {
  std::istringstream in(slurp(std::string(SKYPE_ETL_SOURCE_DIR) + "/README.md"));
  std::string line;
  while (std::getline(in, line) && line.rfind(heading, 0) != 0) {
  }
  BOOST_TEST_REQUIRE(!in.eof(), "README has no line starting with " << heading);
  std::set<std::string> names;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("|", 0) != 0) {
      if (in_table) break;
      continue;
    }
    in_table = true;
    const std::string cell = line.substr(0, line.find('|', 1));
    static const std::regex option("`(-{1,2}[a-z][a-z0-9-]*)");
    for (std::sregex_iterator it(cell.begin(), cell.end(), option), end; it != end; ++it)
      names.insert((*it)[1]);
  }
  return names;
}

}  // namespace

// Issue 16: --help gives every option's default, and README's tables list the same options
// as --help, command by command.
BOOST_AUTO_TEST_CASE(help_and_readme_list_the_same_options_with_defaults) {
  const auto logging = readme_options("Every command also takes the logging options");
  const auto with_logging = [&logging](std::set<std::string> names) {
    names.insert(logging.begin(), logging.end());
    return names;
  };
  BOOST_TEST(logging == (std::set<std::string>{"-v", "--verbose", "--log-level", "-q", "--quiet"}),
             boost::test_tools::per_element());
  const auto run = readme_options("`skype-etl run EXPORT... [options]`");
  const auto search = readme_options("`skype-etl search WORDS [options]`");
  auto db = readme_options("`skype-etl db status | start | stop | psql [options]`");
  BOOST_TEST(run.count("--batch-size") == 1U);
  std::vector<std::string> without_default;
  BOOST_TEST(help_options({"run"}, &without_default) == with_logging(run),
             boost::test_tools::per_element());
  BOOST_TEST(help_options({"search"}, &without_default) == with_logging(search),
             boost::test_tools::per_element());
  const auto export_options = readme_options("`skype-etl export DIR [options]`");
  const auto stats = readme_options("`skype-etl stats [options]`");
  BOOST_TEST(help_options({"export"}, &without_default) == with_logging(export_options),
             boost::test_tools::per_element());
  BOOST_TEST(help_options({"stats"}, &without_default) == with_logging(stats),
             boost::test_tools::per_element());
  auto psql = with_logging(db);
  psql.erase("-v");  // psql's -v and -q stay psql's
  psql.erase("-q");
  BOOST_TEST(help_options({"db", "psql"}, &without_default) == psql,
             boost::test_tools::per_element());
  db.erase("--db");  // db psql only
  for (const char* command : {"status", "start", "stop"})
    BOOST_TEST(help_options({"db", command}, &without_default) == with_logging(db),
               boost::test_tools::per_element());
  BOOST_TEST(without_default.empty());
  for (const auto& line : without_default) BOOST_TEST_MESSAGE("no default: " << line);
}

// Twenty exports of twenty accounts, ten messages each (one conversation).
std::vector<std::filesystem::path> twenty_exports(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (int i = 0; i < 20; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "export-%02d.json", i);
    files.push_back(dir / name);
    const std::string id = std::to_string(i);
    st::write_file(files.back(),
                   st::export_json({st::numbered_conversation("19:c" + id + "@thread.skype", 10,
                                                              "e" + id + "m")},
                                   "8:live:.cid.account" + id));
  }
  return files;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

BOOST_AUTO_TEST_CASE(a_run_of_twenty_exports_with_three_bad_ones_loads_the_other_seventeen) {
  st::TestDatabase db;
  st::TempDir dir;
  auto files = twenty_exports(dir.path());
  // Bad in three ways, in the middle: cut off (read fails after batches went to the
  // database), missing, and whole but followed by garbage (fails at its very end).
  const std::string cut = st::export_json(
      {st::numbered_conversation("19:c5@thread.skype", 10, "e5m")}, "8:live:.cid.account5");
  st::write_file(files[5], cut.substr(0, cut.size() * 2 / 3));
  std::filesystem::remove(files[10]);
  st::write_file(files[15],
                 st::export_json({st::numbered_conversation("19:c15@thread.skype", 10, "e15m")},
                                 "8:live:.cid.account15") +
                     "\n]");
  std::vector<std::string> args{"run",
                                "--db",
                                db.conninfo(),
                                "--batch-size",
                                "3",
                                "--report",
                                (dir / "report.json").string()};
  for (const auto& f : files) args.push_back(f.string());
  const auto run = run_cli(args);
  // The first failure's exit code: 3 for the cut file.
  BOOST_TEST(run.code == 3, run.err);
  // One error line each, naming the file.
  BOOST_TEST(lines(run.err) == 3U, run.err);
  for (int bad : {5, 10, 15})
    BOOST_TEST(count_of(run.err, files[bad].filename().string()) == 1U, run.err);
  // What was read of a failed export counts as failed (here: nothing of the cut one
  // reached a batch, the one with trailing garbage is refused before its last batch).
  BOOST_TEST(run.out.find("done: 20 exports (17 loaded, 3 failed), 17 conversations, 170 "
                          "messages read: 170 new") != std::string::npos,
             run.out);
  for (int bad : {5, 10, 15})
    BOOST_TEST(run.out.find("failed: " + files[bad].string() + ": ") != std::string::npos, run.out);
  // Exactly the seventeen: their rows and nothing of the others.
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.exports") == 17);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages") == 170);
  BOOST_TEST(db.scalar("SELECT count(DISTINCT account_id) FROM skype.messages") == 17);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.conversations WHERE conversation_id IN "
                       "('19:c5@thread.skype', '19:c10@thread.skype', '19:c15@thread.skype')") ==
             0);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.accounts WHERE user_id LIKE '%account5' OR "
                       "user_id LIKE '%account10' OR user_id LIKE '%account15'") == 0);
  const auto report = nlohmann::json::parse(slurp(dir / "report.json"));
  BOOST_TEST(report["success"] == false);
  BOOST_TEST(report["exit_code"] == 3);
  BOOST_TEST(report["totals"]["failed"] == 3);
  BOOST_TEST(report["totals"]["loaded"] == 17);
  for (int bad : {5, 10, 15}) {
    const auto& e = report["exports"][bad];
    BOOST_TEST(e["status"] == "failed");
    BOOST_TEST(e["exit_code"] == 3);
    BOOST_TEST(!e["error"].get<std::string>().empty());
    BOOST_TEST(e["messages"]["failed"] == e["messages"]["read"]);
    BOOST_TEST(e["messages"]["new"] == 0);
  }

  // The same run again: the seventeen are already loaded, the three fail again, nothing
  // doubles.
  const auto again = run_cli(args);
  BOOST_TEST(again.code == 3, again.err);
  BOOST_TEST(again.out.find("done: 20 exports (0 loaded, 17 already loaded, 3 failed)") !=
                 std::string::npos,
             again.out);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages") == 170);

  // --fail-fast: the first failure ends the run; what came before it stays loaded.
  st::TestDatabase fresh;
  args[2] = fresh.conninfo();
  args.push_back("--fail-fast");
  const auto fast = run_cli(args);
  BOOST_TEST(fast.code == 3, fast.err);
  BOOST_TEST(lines(fast.err) == 1U, fast.err);
  BOOST_TEST(fast.err.find(files[5].filename().string()) != std::string::npos, fast.err);
  BOOST_TEST(fast.out.find("done: 6 exports (5 loaded, 1 failed)") != std::string::npos, fast.out);
  BOOST_TEST(fast.out.find(files[6].filename().string()) == std::string::npos, fast.out);
  BOOST_TEST(fresh.scalar("SELECT count(*) FROM skype.exports") == 5);
  BOOST_TEST(fresh.scalar("SELECT count(*) FROM skype.messages") == 50);
}

BOOST_AUTO_TEST_CASE(an_export_the_database_refuses_fails_alone) {
  st::TestDatabase db;
  st::TempDir dir;
  auto files = twenty_exports(dir.path());
  files.resize(4);
  // The schema exists once one export is loaded; then the database refuses conversation c2.
  BOOST_TEST(run_cli({"run", files[0].string(), "--db", db.conninfo()}).code == 0);
  db.text(
      "CREATE FUNCTION public.refuse_c2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF NEW.conversation_id = '19:c2@thread.skype' THEN RAISE EXCEPTION 'refused by a test "
      "trigger'; "
      "END IF; RETURN NEW; END $$; "
      "CREATE TRIGGER refuse_c2 BEFORE INSERT ON skype.conversations FOR EACH ROW EXECUTE "
      "FUNCTION public.refuse_c2(); SELECT ''");
  const auto run = run_cli({"run", "--db", db.conninfo(), "--batch-size", "3", files[1].string(),
                            files[2].string(), files[3].string()});
  BOOST_TEST(run.code == 4, run.err);
  BOOST_TEST(lines(run.err) == 1U, run.err);
  BOOST_TEST(run.err.find("refused by a test trigger") != std::string::npos, run.err);
  BOOST_TEST(run.out.find("done: 3 exports (2 loaded, 1 failed)") != std::string::npos, run.out);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.exports") == 3);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages") == 30);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.messages WHERE conversation_id = "
                       "'19:c2@thread.skype'") == 0);
}

BOOST_AUTO_TEST_CASE(directories_patterns_and_lists_of_exports) {
  st::TestDatabase db;
  st::TempDir dir;
  std::filesystem::create_directory(dir / "exports");
  const auto files = twenty_exports(dir / "exports");
  // Something that is not an export is left alone in a directory.
  st::write_file(dir / "exports" / "notes.txt", "not an export");
  // A directory: every export in it, by name.
  const auto whole = run_cli({"run", "--db", db.conninfo(), (dir / "exports").string()});
  BOOST_TEST(whole.code == 0, whole.err);
  BOOST_TEST(whole.out.find("done: 20 exports, 20 conversations, 200 messages read: 200 new") !=
                 std::string::npos,
             whole.out);
  BOOST_TEST(whole.out.find("export-00.json") < whole.out.find("export-19.json"));

  // A quoted pattern, a list on standard input (via --files-from -), and --files-from FILE.
  st::TestDatabase db2;
  const auto pattern =
      run_cli({"run", "--db", db2.conninfo(), (dir / "exports" / "export-1?.json").string()});
  BOOST_TEST(pattern.code == 0, pattern.err);
  BOOST_TEST(pattern.out.find("done: 10 exports,") != std::string::npos, pattern.out);
  st::write_file(dir / "list.txt", "# the first three\n" + files[0].string() + "\n\n" +
                                       files[1].string() + "\n" + files[2].string() + "\n");
  const auto listed = run_cli({"run", "--db", db2.conninfo(), "--files-from",
                               (dir / "list.txt").string(), files[3].string()});
  BOOST_TEST(listed.code == 0, listed.err);
  BOOST_TEST(listed.out.find("done: 4 exports,") != std::string::npos, listed.out);
  st::write_file(dir / "stdin.txt", files[4].string() + "\r\n" + files[5].string() + "\n");
  const auto piped =
      run_cli({"run", "--db", db2.conninfo(), "-"}, st::CliRun().with_input(dir / "stdin.txt"));
  BOOST_TEST(piped.code == 0, piped.err);
  BOOST_TEST(piped.out.find("done: 2 exports,") != std::string::npos, piped.out);
  BOOST_TEST(db2.scalar("SELECT count(*) FROM skype.exports") == 16);

  // What names nothing is a usage error, before anything is loaded.
  std::filesystem::create_directory(dir / "empty");
  for (const auto& args :
       {std::vector<std::string>{"run", "--db", db2.conninfo(), (dir / "empty").string()},
        std::vector<std::string>{"run", "--db", db2.conninfo(), (dir / "nothing-*.tar").string()},
        std::vector<std::string>{"run", "--db", db2.conninfo(), "--files-from",
                                 (dir / "no-list.txt").string()},
        std::vector<std::string>{"run", "--db", db2.conninfo()}}) {
    const auto refused = run_cli(args);
    BOOST_TEST(refused.code == 2, refused.err);
    BOOST_TEST(lines(refused.err) == 1U, refused.err);
  }
  BOOST_TEST(db2.scalar("SELECT count(*) FROM skype.exports") == 16);
}

BOOST_AUTO_TEST_CASE(progress_bar_on_a_terminal_redraws_a_live_line_and_ends_clean) {
  st::TestDatabase db;
  st::TempDir dir;
  const std::string report = (dir / "run.json").string();
  const auto run = run_on_terminal(
      {"run", progress_export().string(), "--db", db.conninfo(), "--report", report});
  BOOST_TEST_REQUIRE(run.code == 0, run.out);
  // Live lines: cleared and redrawn in place, each naming the file, what it does, how far it
  // is and its rate, fitting the terminal's 80 columns (MB/s and memory, which come later on
  // the line, are left out at that width; --progress=plain below shows them).
  const std::regex live("\x1b\\[2K(progress\\.tar  [a-z_]+  [0-9]+%[^\r\n\x1b]*)");
  std::size_t frames = 0;
  bool reading = false, rates = false;
  for (std::sregex_iterator it(run.out.begin(), run.out.end(), live), end; it != end; ++it) {
    ++frames;
    const std::string line = (*it)[1];
    BOOST_TEST(line.size() <= 79, line);
    reading = reading || line.find("  reading  ") != std::string::npos;
    rates = rates || std::regex_search(line, std::regex(" [1-9][0-9]* msg/s"));
  }
  BOOST_TEST(frames >= 3, run.out);
  BOOST_TEST(reading, run.out);
  BOOST_TEST(rates, run.out);
  // At most 10 redraws a second.
  std::smatch took;
  BOOST_TEST_REQUIRE(std::regex_search(run.out, took, std::regex(" in ([0-9.]+) s \\(")), run.out);
  BOOST_TEST(frames <= std::stod(took[1]) * 10 + 2, frames << " frames in " << took[1] << " s");
  // The live lines are cleared before the summary, which follows clean: nothing of the bar
  // after the last clear.
  const auto clear = run.out.rfind("\x1b[J");
  BOOST_TEST_REQUIRE(clear != std::string::npos, run.out);
  const std::string after = run.out.substr(clear + 3);
  BOOST_TEST(after.find('\x1b') == std::string::npos, after);
  BOOST_TEST(after.find("msg/s") == std::string::npos, after);
  BOOST_TEST(std::regex_search(after, std::regex("^[^\n]*progress\\.tar: loaded ")), after);
  BOOST_TEST(after.find("\ndone: 1 export") != std::string::npos, after);

  // The JSON report has the run's samples and the load's steps.
  const auto json = nlohmann::json::parse(slurp(report));
  const auto& sampling = json["sampling"];
  BOOST_TEST(sampling["batches_in_flight_limit"] == 8);
  BOOST_TEST_REQUIRE(sampling["samples"].size() >= 5, sampling.dump());
  std::int64_t previous = 0;
  double peak_mb = 0;
  for (const auto& sample : sampling["samples"]) {
    BOOST_TEST(sample["time_us"].get<std::int64_t>() > previous);
    previous = sample["time_us"].get<std::int64_t>();
    BOOST_TEST(sample["batches_in_flight"].get<std::int64_t>() <= 8);
    peak_mb = std::max(peak_mb, sample["rss_anon_mb"].get<double>());
  }
  BOOST_TEST(peak_mb > 1.0);
  BOOST_TEST(sampling["samples"].back()["load"] == 110000);
  BOOST_TEST(sampling["samples"].back()["bytes_read"] > 32 * 1024 * 1024);
  const auto& steps = json["exports"][0]["load"]["steps"];
  std::set<std::string> names;
  for (const auto& step : steps) {
    names.insert(step["step"].get<std::string>());
    BOOST_TEST(step["start_us"].get<std::int64_t>() <= step["end_us"].get<std::int64_t>());
  }
  for (const char* name : {"copy", "index_build", "analyze", "attachments", "commit"})
    BOOST_TEST(names.count(name) == 1, name << " missing from " << steps.dump());
}

BOOST_AUTO_TEST_CASE(progress_only_where_asked_for) {
  st::TestDatabase db1, db2, db3, db4, db5;
  const std::string file = progress_export().string();
  // In a pipe or a file: nothing by default, nor with --progress=bar (it needs a terminal).
  for (const auto& [db, args] : std::vector<std::pair<st::TestDatabase*, std::vector<std::string>>>{
           {&db1, {}}, {&db2, {"--progress=bar"}}}) {
    std::vector<std::string> line{"run", file, "--db", db->conninfo()};
    line.insert(line.end(), args.begin(), args.end());
    const auto run = run_cli(line);
    BOOST_TEST(run.code == 0, run.err);
    BOOST_TEST(run.err.empty(), run.err);
    BOOST_TEST(run.out.find('\x1b') == std::string::npos);
  }
  // --progress=plain: a line every --progress-interval seconds, without escape sequences.
  const auto plain = run_cli(
      {"run", file, "--db", db3.conninfo(), "--progress=plain", "--progress-interval", "0.1"});
  BOOST_TEST(plain.code == 0, plain.err);
  BOOST_TEST(plain.err.find('\x1b') == std::string::npos, plain.err);
  BOOST_TEST(plain.err.find('\r') == std::string::npos, plain.err);
  BOOST_TEST(count_of(plain.err, "skype-etl: progress: progress.tar  ") >= 2, plain.err);
  BOOST_TEST(count_of(plain.err, "\n") == count_of(plain.err, "skype-etl: progress: "), plain.err);
  BOOST_TEST(std::regex_search(plain.err, std::regex("% of [0-9.]+ MB.* read, [0-9]+ stored  "
                                                     "[0-9]+ msg/s  [0-9.]+ MB/s  peak mem ")),
             plain.err);
  // On a terminal: nothing with --progress=none, nor with -q.
  const auto none = run_on_terminal({"run", file, "--db", db4.conninfo(), "--progress=none"});
  BOOST_TEST(none.code == 0, none.out);
  BOOST_TEST(none.out.find('\x1b') == std::string::npos, none.out);
  BOOST_TEST(none.out.find("msg/s") == std::string::npos, none.out);
  const auto quiet = run_on_terminal({"run", file, "--db", db5.conninfo(), "-q"});
  BOOST_TEST(quiet.code == 0, quiet.out);
  BOOST_TEST(quiet.out.find('\x1b') == std::string::npos, quiet.out);
  // A word --progress does not know: a usage error.
  const auto bad = run_cli({"run", file, "--db", db4.conninfo(), "--progress=fancy"});
  BOOST_TEST(bad.code == 2);
}

BOOST_AUTO_TEST_CASE(the_html_report_renders_its_charts_in_chromium) {
  const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser",
                              "/usr/bin/google-chrome"};
  std::string chromium;
  for (const char* c : candidates)
    if (::access(c, X_OK) == 0) {
      chromium = c;
      break;
    }
  if (chromium.empty()) {
    BOOST_TEST_MESSAGE(
        "SKIPPED: no chromium (Debian package 'chromium', installed by "
        "scripts/install-deps.sh): the HTML report is not rendered");
    return;
  }
  st::TestDatabase db;
  st::TempDir dir;
  const auto run = run_cli({"run", progress_export().string(), "--db", db.conninfo(), "--report",
                            (dir / "report.html").string()});
  BOOST_TEST_REQUIRE(run.code == 0, run.err);
  // The report itself has no script; this copy gets one that measures what the browser laid
  // out: each chart's lines and the Gantt's bars.
  std::string page = slurp(dir / "report.html");
  BOOST_TEST_REQUIRE(page.find("<script") == std::string::npos);
  const auto body_end = page.rfind("</body>");
  BOOST_TEST_REQUIRE(body_end != std::string::npos);
  page.insert(body_end, R"(<pre id="measured"></pre><script>
const out = {};
for (const svg of document.querySelectorAll('svg')) {
  const name = svg.dataset.chart || svg.getAttribute('class') || 'svg';
  const box = svg.getBoundingClientRect();
  const paths = [...svg.querySelectorAll('path')].map(p => p.getTotalLength());
  const rects = [...svg.querySelectorAll('rect.step, rect.phase')].map(r => r.getBBox().width);
  out[name] = {width: box.width, height: box.height, paths, rects};
}
document.getElementById('measured').textContent = JSON.stringify(out);
</script>)");
  { std::ofstream(dir / "measure.html") << page; }
  const std::string common = shell_word(chromium) +
                             " --headless --no-sandbox --disable-gpu --hide-scrollbars "
                             "--user-data-dir=" +
                             shell_word((dir / "profile").string()) + " ";
  const std::string dump = common + "--dump-dom " +
                           shell_word("file://" + (dir / "measure.html").string()) + " > " +
                           shell_word((dir / "dom.html").string()) + " 2>/dev/null";
  BOOST_TEST_REQUIRE(std::system(dump.c_str()) == 0);
  const std::string dom = slurp(dir / "dom.html");
  std::smatch m;
  BOOST_TEST_REQUIRE(std::regex_search(dom, m, std::regex("<pre id=\"measured\">([^<]*)</pre>")),
                     dom);
  std::string text = m[1];
  for (std::string::size_type at; (at = text.find("&quot;")) != std::string::npos;)
    text.replace(at, 6, "\"");
  const auto measured = nlohmann::json::parse(text);
  for (const char* chart : {"rates", "in_flight", "memory"}) {
    BOOST_TEST_REQUIRE(measured.contains(chart), chart << " missing: " << text);
    BOOST_TEST(measured[chart]["width"].get<double>() > 800);
    BOOST_TEST(measured[chart]["paths"].size() >= 1);
    for (const auto& length : measured[chart]["paths"])
      BOOST_TEST(length.get<double>() > 100, chart << ": a line of " << length);
  }
  const auto& timeline = measured["timeline"];
  BOOST_TEST_REQUIRE(timeline["rects"].size() >= 8, text);  // 3 phases and the load steps
  for (const auto& width : timeline["rects"]) BOOST_TEST(width.get<double>() >= 1.0);

  // And a picture of it.
  const std::string shot =
      common + "--window-size=960,1600 --screenshot=" + shell_word((dir / "report.png").string()) +
      " " + shell_word("file://" + (dir / "report.html").string()) + " > /dev/null 2>&1";
  BOOST_TEST_REQUIRE(std::system(shot.c_str()) == 0);
  BOOST_TEST(std::filesystem::file_size(dir / "report.png") > 20000);
}

/// A PostgreSQL server of the test's own with PostgreSQL's default settings
/// (scripts/pg-server.sh start DIR --stock), stopped and removed at the end.
class StockServer {
 public:
  StockServer() {
    const std::string script = std::string(SKYPE_ETL_SOURCE_DIR) + "/scripts/pg-server.sh";
    const std::string dir = m_dir.path().string();
    const int status = std::system(("bash " + shell_word(script) + " start " + shell_word(dir) +
                                    " --stock > " + shell_word(dir + ".log") + " 2>&1")
                                       .c_str());
    BOOST_REQUIRE_MESSAGE(status == 0, slurp(dir + ".log"));
    std::filesystem::remove(dir + ".log");
    m_conninfo = "host=" + dir + " port=" + slurp(m_dir / "port").substr(0, 5) +
                 " user=postgres dbname=postgres";
  }
  ~StockServer() {
    const std::string script = std::string(SKYPE_ETL_SOURCE_DIR) + "/scripts/pg-server.sh";
    std::system(
        ("bash " + shell_word(script) + " stop " + shell_word(m_dir.path().string())).c_str());
  }
  StockServer(const StockServer&) = delete;
  StockServer& operator=(const StockServer&) = delete;
  const std::string& conninfo() const noexcept { return m_conninfo; }
  /// Runs `sql` (no transaction: ALTER SYSTEM, CREATE DATABASE).
  void exec(const std::string& sql) {
    pqxx::connection conn(m_conninfo);
    pqxx::nontransaction tx(conn);
    tx.exec(sql);
  }

 private:
  st::TempDir m_dir;
  std::string m_conninfo;
};

// Issue 18: after a load into which the server's max_wal_size forced checkpoints, one hint
// line names it and what to set; a server whose max_wal_size holds the load gets none.
BOOST_AUTO_TEST_CASE(a_small_max_wal_size_gets_one_hint_line_after_the_load) {
  StockServer server;
  server.exec("CREATE DATABASE second");
  st::TempDir dir;
  // PostgreSQL's default max_wal_size (1GB) holds the WAL of this load (about 60MB).
  const auto roomy = run_cli({"run", progress_export().string(), "--db", server.conninfo(),
                              "--report", (dir / "roomy.json").string()});
  BOOST_TEST(roomy.code == 0, roomy.err);
  BOOST_TEST(roomy.out.find("hint") == std::string::npos, roomy.out);
  BOOST_TEST(!nlohmann::json::parse(slurp(dir / "roomy.json")).contains("hint"));

  // The smallest max_wal_size there is: a checkpoint every 16MB of WAL or so.
  server.exec("ALTER SYSTEM SET max_wal_size = '32MB'");
  server.exec("SELECT pg_reload_conf()");
  const std::string second = server.conninfo() + " dbname=second";
  const auto small = run_cli({"run", progress_export().string(), "--db", second, "--report",
                              (dir / "small.json").string()});
  BOOST_TEST(small.code == 0, small.err);
  BOOST_TEST(count_of(small.out, "hint") == 1U, small.out);
  BOOST_TEST(
      std::regex_search(small.out, std::regex("\nhint: the server's max_wal_size \\(32MB\\) forced "
                                              "[0-9]+ checkpoints? during the load, which wrote "
                                              "[0-9]+MB of WAL; max_wal_size = [0-9]+GB avoids")),
      small.out);
  const auto report = nlohmann::json::parse(slurp(dir / "small.json"));
  BOOST_TEST(report.value("hint", "").find("the server's max_wal_size (32MB) forced") == 0U,
             report.dump());
  // -q: no hint line (the report still has it).
  server.exec("CREATE DATABASE third");
  const auto quiet = run_cli(
      {"run", progress_export().string(), "--db", server.conninfo() + " dbname=third", "-q"});
  BOOST_TEST(quiet.code == 0, quiet.err);
  BOOST_TEST(quiet.out.find("hint") == std::string::npos, quiet.out);
}

// Issue 18: --maintenance-work-mem reaches the load's connections, and lowers no larger
// setting of the server's.
BOOST_AUTO_TEST_CASE(maintenance_work_mem_option_reaches_the_load) {
  for (const std::string& setting : std::vector<std::string>{"64MB", "1GB"}) {
    BOOST_TEST_CONTEXT("the database's maintenance_work_mem " << setting) {
      st::TestDatabase db;
      db.text("ALTER DATABASE " + db.name() + " SET maintenance_work_mem = '" + setting + "'");
      // The schema, then a row per export of the setting its transaction had.
      BOOST_TEST_REQUIRE(run_cli({"run", sample, "--db", db.conninfo()}).code == 0);
      db.text("CREATE TABLE public.seen (mwm text)");
      db.text(
          "CREATE FUNCTION public.record() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT "
          "INTO public.seen VALUES (current_setting('maintenance_work_mem')); RETURN NEW; END $$");
      db.text(
          "CREATE TRIGGER record AFTER INSERT ON skype.exports FOR EACH ROW EXECUTE FUNCTION "
          "public.record()");
      st::TempDir dir;
      skype_etl::gen::GeneratorOptions g;
      g.messages = 50;
      skype_etl::gen::generate_export(g, dir / "small.json");
      const auto run = run_cli({"run", (dir / "small.json").string(), "--db", db.conninfo(),
                                "--maintenance-work-mem", "300MB"});
      BOOST_TEST(run.code == 0, run.err);
      BOOST_TEST(db.text("SELECT string_agg(mwm, ',') FROM public.seen") ==
                 (setting == "1GB" ? "1GB" : "300MB"));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
