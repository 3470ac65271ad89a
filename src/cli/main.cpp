// skype-etl: the command line. Exit codes are those of skype_etl::ExitCode (README.md).
#include <CLI/CLI.hpp>

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/json_text.hpp"
#include "core/local_db.hpp"
#include "load/search.hpp"
#include "report.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/errors.hpp"
#include "skype_etl/graph.hpp"
#include "skype_etl/pipeline.hpp"

namespace {

namespace se = skype_etl;

int code(se::ExitCode c) {
  return static_cast<int>(c);
}

/// Errors are one line: libpq's multi-line messages are folded, and what is left of control
/// characters (in a message quoting a file name, a value or a server's text) is escaped.
void print_error(const std::string& message) {
  std::string line;
  line.reserve(message.size());
  for (char c : message) {
    if (c == '\n' || c == '\r' || c == '\t') {
      if (!line.empty() && line.back() != ' ') line += ' ';
    } else {
      line += c;
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  std::fprintf(stderr, "skype-etl: error: %s\n", se::printable(line, 8192).c_str());
}

struct DbOptions {
  std::string db;
  std::string data_dir;
};

void add_db_options(CLI::App& command, DbOptions& db) {
  command.add_option("--db", db.db,
                     "libpq connection string (URI or key=value); default: the PG* environment "
                     "if set, else the local database");
  command.add_option("--data-dir", db.data_dir,
                     "data directory of the local database (default: "
                     "$XDG_DATA_HOME/skype-etl/pg or ~/.local/share/skype-etl/pg)");
}

se::detail::LocalDatabase local_database(const DbOptions& db) {
  return db.data_dir.empty() ? se::detail::LocalDatabase() : se::detail::LocalDatabase(db.data_dir);
}

/// The connection string to use: --db, then the environment, then the local database
/// (started if needed, saying so in one line on stderr).
std::string resolve_conninfo(const DbOptions& db) {
  if (auto configured = se::detail::configured_conninfo(db.db)) return *configured;
  se::detail::LocalDatabase local = local_database(db);
  const bool was_running = local.is_running();
  std::string conninfo = local.ensure_running();
  if (!was_running)
    std::fprintf(stderr, "skype-etl: started the local database in %s\n", local.data_dir().c_str());
  return conninfo;
}

std::string seconds_text(double s) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", s);
  return buffer;
}

struct RunOptions {
  std::vector<std::string> inputs;
  DbOptions db;
  std::string user_display_name;
  std::size_t batch_size = 1000;
  std::optional<std::size_t> memory_limit_mb;
  std::size_t batches_in_flight = 8;
  std::size_t copy_streams = 2;
  bool sequential = false;
  bool with_media = false;
  std::string temp_dir;
  std::uint64_t max_gzip_ratio = se::PipelineOptions{}.max_gzip_ratio;
  std::string output_dir;
  std::vector<std::string> reports;
  bool quiet = false;
  std::optional<std::size_t> fail_after_batches;
  std::optional<std::size_t> pause_after_batches;
};

/// Loads the exports; fills result's "success", "exports", and on failure "error" and
/// "exit_code".
void load_exports(const RunOptions& o, se::ETLContext& context, nlohmann::json& result) {
  se::PipelineOptions options;
  options.user_display_name = o.user_display_name;
  options.batches_in_flight = o.batches_in_flight;
  options.copy_streams = o.copy_streams;
  options.with_media = o.with_media;
  options.temp_dir = o.temp_dir;
  options.max_gzip_ratio = o.max_gzip_ratio;
  options.fail_after_batches = o.fail_after_batches;

  std::vector<std::filesystem::path> inputs(o.inputs.begin(), o.inputs.end());
  se::EtlGraph graph(inputs, options, context);
  if (o.pause_after_batches) {
    // Test hook: stop in the middle of a load so a test can kill -9 the process. The count
    // lives in the callback: the graph calls it after this block has ended.
    const std::size_t pause = *o.pause_after_batches;
    graph.on_batch_loaded([loaded = std::size_t{0}, pause](const se::Batch&) mutable {
      if (++loaded == pause) {
        std::fprintf(stderr, "skype-etl: paused after %zu batches\n", loaded);
        std::fflush(stderr);
        while (true) std::this_thread::sleep_for(std::chrono::hours(1));
      }
    });
  }
  try {
    result["exports"] = graph.run()["exports"];
    result["success"] = true;
  } catch (const std::exception& error) {
    result["error"] = error.what();
    result["exit_code"] = code(se::exit_code_for(error));
    result["exports"] = graph.result()["exports"];
  }
}

int run_command(const RunOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  nlohmann::json result{{"success", false}, {"exports", nlohmann::json::array()}};
  std::optional<std::filesystem::path> output_dir;
  if (!o.output_dir.empty()) output_dir = o.output_dir;
  std::optional<se::ETLContext> context;
  try {
    se::DbConfig db{resolve_conninfo(o.db)};
    context.emplace(db, o.batch_size, o.memory_limit_mb, !o.sequential, output_dir);
    load_exports(o, *context, result);
  } catch (const std::exception& error) {
    // Before the run began (the local database would not start, ...).
    result["error"] = error.what();
    result["exit_code"] = code(se::exit_code_for(error));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result["statistics"] = context ? context->statistics() : nlohmann::json::object();
  result["seconds"] = seconds;
  result["totals"] = se::detail::summarize_exports(result["exports"]);

  // Reports are written whatever happened: a failed run's report says why.
  for (const std::string& report : o.reports) {
    // FILE.html: a page with the phases' timeline; anything else: the JSON.
    const bool html = std::filesystem::path(report).extension() == ".html";
    std::ofstream out(report);
    out << (html ? se::detail::render_html_report(result)
                 : se::detail::json_text(result, 2) + "\n");
    out.close();
    if (!out) print_error("cannot write report '" + report + "'");
  }
  for (const auto& e : result["exports"]) {
    const std::string file = e.value("file", "");
    const auto& m = e["messages"];
    auto n = [&m](const char* name) {
      return static_cast<unsigned long long>(m.value(name, std::uint64_t{0}));
    };
    if (!o.quiet) {
      if (e.value("status", "") == "already loaded") {
        std::printf("%s: already loaded, nothing stored", file.c_str());
        if (n("skipped") > 0)
          std::printf(" (%llu messages read, then skipped: another run loaded the file meanwhile)",
                      n("skipped"));
        std::printf("\n");
      } else {
        std::printf(
            "%s: loaded %llu conversations, %llu messages read: %llu new, %llu updated, %llu "
            "unchanged, %llu superseded",
            file.c_str(), static_cast<unsigned long long>(e.value("conversations", 0ULL)),
            n("read"), n("new"), n("updated"), n("unchanged"), n("superseded"));
        if (e.contains("export_id"))
          std::printf(" (export %lld)", static_cast<long long>(e["export_id"].get<long long>()));
        std::printf("\n");
      }
    }
    if (n("invalid_timestamps") > 0 && !o.quiet) {
      std::string where;
      const auto& transform = e.value("transform", nlohmann::json::object());
      const auto first = transform.find("first_invalid_timestamp");
      if (first != transform.end() && first->is_object()) {
        // The id and the value are the export's own text: escaped and cut.
        where = "; the first is message " + std::to_string(first->value("message_index", 0)) +
                " of conversation " + std::to_string(first->value("conversation_index", 0)) + " (" +
                se::printable(first->value("conversation_id", ""), 64) + ") at byte " +
                std::to_string(first->value("byte_offset", 0ULL)) + ": " +
                se::quoted(first->value("raw_value", ""));
      }
      std::fprintf(stderr,
                   "skype-etl: warning: %s: %llu messages have no valid timestamp "
                   "(originalarrivaltime): stored with sent_at NULL and the value found in "
                   "details.original_arrival_time%s\n",
                   se::printable(file).c_str(), n("invalid_timestamps"), where.c_str());
    }
    const auto media = e.value("media", nlohmann::json::object());
    const auto ignored = media.value("metadata_ignored", std::uint64_t{0});
    if (ignored > 0 && !o.quiet) {
      const auto first = media.value("first_ignored", nlohmann::json::object());
      // The entry's name comes from the archive: quoted, escaped and cut, it stays on one
      // short line.
      std::fprintf(stderr,
                   "skype-etl: warning: %s: %llu media metadata files (media/<docid>.json) "
                   "ignored, their attachments stored without name and content type; the "
                   "first, %s, is %s\n",
                   se::printable(file).c_str(), static_cast<unsigned long long>(ignored),
                   se::quoted(first.value("entry", ""), 256).c_str(),
                   se::printable(first.value("reason", ""), 256).c_str());
    }
  }
  if (!result["success"].get<bool>()) {
    print_error(result["error"].get<std::string>());
    return result["exit_code"].get<int>();
  }
  const auto& totals = result["totals"];
  const auto& m = totals["messages"];
  auto n = [&m](const char* name) {
    return static_cast<unsigned long long>(m.value(name, std::uint64_t{0}));
  };
  std::string exports = std::to_string(totals.value("exports", 0ULL)) +
                        (totals.value("exports", 0ULL) == 1 ? " export" : " exports");
  if (totals.value("already_loaded", 0ULL) > 0)
    exports += " (" + std::to_string(totals.value("already_loaded", 0ULL)) + " already loaded)";
  const std::string skipped =
      n("skipped") > 0 ? ", " + std::to_string(n("skipped")) + " skipped" : std::string();
  std::printf(
      "done: %s, %llu conversations, %llu messages read: %llu new, %llu updated, %llu "
      "unchanged, %llu superseded%s in %s s (%.0f messages/s)\n",
      exports.c_str(), static_cast<unsigned long long>(totals.value("conversations", 0ULL)),
      n("read"), n("new"), n("updated"), n("unchanged"), n("superseded"), skipped.c_str(),
      seconds_text(seconds).c_str(), seconds > 0 ? static_cast<double>(n("read")) / seconds : 0.0);
  return 0;
}

int run_main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx2")) {
    print_error(
        "this build needs a CPU with AVX2 (it was compiled with -march=haswell); rebuild "
        "with -DSKYPE_ETL_MARCH= (empty) or a -march your CPU supports");
    return code(se::ExitCode::internal);
  }
  CLI::App app{"skype-etl: load Skype chat-history exports into PostgreSQL"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "skype-etl 0.1.0");

  RunOptions run;
  CLI::App* run_cmd = app.add_subcommand("run",
                                         "load exports (.tar, .tar.gz, messages.json, "
                                         "or an unpacked export directory)");
  run_cmd->add_option("exports", run.inputs, "export files, loaded one after another")->required();
  add_db_options(*run_cmd, run.db);
  run_cmd->add_option("--user-display-name", run.user_display_name,
                      "name shown for your own messages (the export leaves it empty)");
  run_cmd->add_option("--batch-size", run.batch_size, "messages per batch")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  run_cmd
      ->add_option("--memory-limit-mb", run.memory_limit_mb,
                   "stop (exit 5) when private memory exceeds this many MB")
      ->check(CLI::PositiveNumber);
  run_cmd
      ->add_option("--batches-in-flight", run.batches_in_flight,
                   "batches between reader and loader at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}));
  run_cmd
      ->add_option("--copy-streams", run.copy_streams,
                   "connections that COPY a large export of an account new to the database "
                   "and build its indexes at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{16}));
  run_cmd->add_flag("--sequential", run.sequential,
                    "run extract, transform and load one after another (slower; holds the "
                    "whole export in memory)");
  run_cmd->add_flag("--with-media", run.with_media,
                    "join media/<docid>.json metadata of the tar to messages");
  run_cmd->add_option("--output-dir", run.output_dir,
                      "with --with-media: write each export's media files to DIR/<name>, "
                      "once the export is stored");
  run_cmd->add_option("--temp-dir", run.temp_dir,
                      "directory where a .tar.gz or .json.gz is decompressed, into a temporary "
                      "file deleted when read (default: $TMPDIR, else /tmp)");
  run_cmd
      ->add_option("--max-gzip-ratio", run.max_gzip_ratio,
                   "refuse gzip data that inflates to more than N times its compressed size "
                   "(plus 64 MiB); 0: no limit")
      ->capture_default_str();
  run_cmd->add_option("--report", run.reports,
                      "write the run's statistics to FILE: JSON, or an HTML page with a "
                      "timeline of the phases when FILE ends in .html (may be repeated)");
  run_cmd->add_flag("-q,--quiet", run.quiet, "print only the final summary line");
  run_cmd->add_option("--debug-fail-after-batches", run.fail_after_batches)
      ->group("");  // test hook: fail the run after N loaded batches
  run_cmd->add_option("--debug-pause-after-batches", run.pause_after_batches)
      ->group("");  // test hook: hang after N loaded batches (for kill -9 tests)

  se::detail::SearchQuery query;
  DbOptions search_db;
  CLI::App* search_cmd = app.add_subcommand("search", "full-text search of loaded messages");
  search_cmd->add_option("words", query.words, "words to find (\"a phrase\", or, -word)")
      ->required();
  search_cmd->add_option("--conversation", query.conversation_id, "only this conversation id");
  search_cmd->add_option(
      "--from", query.sender_id,
      "only messages sent by this id (any form: 8:alice, alice, a contacts URL)");
  search_cmd->add_option("--since", query.since, "only messages sent since DATE");
  search_cmd->add_option("--account", query.account_id,
                         "only this account (export owner; its id in any form)");
  search_cmd->add_option("--limit", query.limit, "at most N matches")->check(CLI::PositiveNumber);
  add_db_options(*search_cmd, search_db);

  DbOptions local_db;
  CLI::App* db_cmd = app.add_subcommand("db", "manage the local default database");
  db_cmd->require_subcommand(1);
  add_db_options(*db_cmd, local_db);
  CLI::App* db_status = db_cmd->add_subcommand("status", "is it running, where, how to connect");
  CLI::App* db_stop = db_cmd->add_subcommand("stop", "stop the local database server");
  CLI::App* db_start = db_cmd->add_subcommand("start", "start (creating it if needed)");
  CLI::App* db_psql = db_cmd->add_subcommand("psql", "open psql on the local database");
  db_psql->allow_extras();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help/version or the usage error
    return rc == 0 ? 0 : code(se::ExitCode::usage);
  }

  try {
    if (*run_cmd) return run_command(run);
    if (*search_cmd) {
      se::DbConfig db{resolve_conninfo(search_db)};
      const auto hits = se::detail::search_messages(db, query);
      for (const auto& hit : hits) std::printf("%s\n", se::detail::format_search_hit(hit).c_str());
      if (hits.empty()) std::fprintf(stderr, "skype-etl: no matches\n");
      return 0;
    }
    se::detail::LocalDatabase local = local_database(local_db);
    if (*db_status) {
      std::printf("%s\n", local.status().dump(2).c_str());
      return 0;
    }
    if (*db_stop) {
      local.stop();
      std::printf("stopped the local database in %s\n", local.data_dir().c_str());
      return 0;
    }
    if (*db_start) {
      std::printf("%s\n", local.ensure_running().c_str());
      return 0;
    }
    if (*db_psql) {
      const std::string conninfo = local.ensure_running();
      std::vector<std::string> args{"psql", conninfo};
      for (const auto& extra : db_psql->remaining()) args.push_back(extra);
      std::vector<char*> argv_psql;
      for (auto& a : args) argv_psql.push_back(a.data());
      argv_psql.push_back(nullptr);
      ::execvp("psql", argv_psql.data());
      print_error("cannot run psql: is postgresql-client installed?");
      return code(se::ExitCode::internal);
    }
  } catch (const std::exception& error) {
    print_error(error.what());
    return code(se::exit_code_for(error));
  }
  return code(se::ExitCode::usage);
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives every thread that allocates an arena of its own, and after a large buffer
  // is freed it raises the size above which buffers are mapped on their own: later large
  // buffers then come from the arenas, where freed memory fragments and stays. Private
  // memory crept up with the export's size (25.0 MB at 0.5 M messages, 28.7 MB at 5 M);
  // with two arenas and a fixed threshold it is 19.9 and 22.4 MB (benchmarks/README.md).
  // Only the command does this: a program that embeds the library keeps its own settings.
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  try {
    return run_main(argc, argv);
  } catch (const std::exception& error) {
    // Whatever escaped the commands' own handling is a bug: still one line, exit 1.
    print_error(std::string("internal error: ") + error.what());
  } catch (...) {
    print_error("internal error: unknown exception");
  }
  return code(se::ExitCode::internal);
}
