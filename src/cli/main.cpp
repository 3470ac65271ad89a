// skype-etl: the command line. Exit codes are those of skype_etl::ExitCode (README.md).
#include <CLI/CLI.hpp>

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "cli/run_command.hpp"
#include "core/local_db.hpp"
#include "load/search.hpp"
#include "skype_etl/errors.hpp"

namespace {

namespace se = skype_etl;
using se::cli::code;
using se::cli::print_error;

int run_main(int argc, char** argv) {
#ifdef __AVX2__
  // Only a build for a given CPU family (-DSKYPE_ETL_MARCH=haswell, ...) needs this: the
  // default build runs on any x86-64 and picks its AVX2 code at run time.
  if (!__builtin_cpu_supports("avx2")) {
    print_error(
        "this build needs a CPU with AVX2 (it was compiled with -DSKYPE_ETL_MARCH); rebuild "
        "without it for one that runs on any x86-64");
    return code(se::ExitCode::internal);
  }
#endif
  CLI::App app{"skype-etl: load Skype chat-history exports into PostgreSQL"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "skype-etl " SKYPE_ETL_VERSION);

  se::cli::RunOptions run;
  CLI::App* run_cmd = app.add_subcommand("run",
                                         "load exports (.tar, .tar.gz, messages.json, "
                                         "or an unpacked export directory)");
  run_cmd->add_option("exports", run.inputs,
                      "exports to load one after another: files (.tar, .tar.gz, .json, "
                      ".json.gz), unpacked export directories, directories of exports, "
                      "patterns (quoted), or - for a list on standard input");
  run_cmd->add_option("--files-from", run.files_from,
                      "also load the exports listed in FILE, one a line (- for standard input)");
  run_cmd->add_flag("--fail-fast", run.fail_fast,
                    "stop at the first export that fails (default: load the others, and exit "
                    "with the first failure's code)");
  se::cli::add_db_options(*run_cmd, run.db);
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
  run_cmd
      ->add_option("--report", run.reports,
                   "write the run's statistics to FILE: JSON, or an HTML page with a "
                   "timeline of the phases when FILE ends in .html (may be repeated)")
      ->allow_extra_args(false);  // --report FILE a.tar: a.tar is an export, not a report
  run_cmd->add_flag("-q,--quiet", run.quiet, "print only the final summary line (and no progress)");
  run_cmd
      ->add_option("--progress", run.progress,
                   "live progress on stderr: bar (one line per running export, redrawn; only "
                   "on a terminal), plain (a line every --progress-interval seconds, for "
                   "logs), none (default: bar on a terminal, none otherwise)")
      ->check(CLI::IsMember({"none", "bar", "plain"}));
  run_cmd
      ->add_option("--progress-interval", run.progress_interval,
                   "seconds between the lines of --progress=plain")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  run_cmd->add_option("--debug-fail-after-batches", run.fail_after_batches)
      ->group("");  // test hook: fail the run after N loaded batches
  run_cmd->add_option("--debug-pause-after-batches", run.pause_after_batches)
      ->group("");  // test hook: hang after N loaded batches (for kill -9 tests)

  se::detail::SearchQuery query;
  se::cli::DbOptions search_db;
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
  se::cli::add_db_options(*search_cmd, search_db);

  se::cli::DbOptions local_db;
  CLI::App* db_cmd = app.add_subcommand("db", "manage the local default database");
  db_cmd->require_subcommand(1);
  se::cli::add_db_options(*db_cmd, local_db);
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
    if (*run_cmd) return se::cli::run_command(run);
    if (*search_cmd) {
      se::DbConfig db{se::cli::resolve_conninfo(search_db)};
      const auto hits = se::detail::search_messages(db, query);
      for (const auto& hit : hits) std::printf("%s\n", se::detail::format_search_hit(hit).c_str());
      if (hits.empty()) std::fprintf(stderr, "skype-etl: no matches\n");
      return 0;
    }
    se::detail::LocalDatabase local = se::cli::local_database(local_db);
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
