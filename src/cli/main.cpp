// skype-etl: the command line. Exit codes are those of skype_etl::ExitCode (README.md).
#include <CLI/CLI.hpp>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cli/common.hpp"
#include "cli/export_command.hpp"
#include "cli/run_command.hpp"
#include "core/local_db.hpp"
#include "load/search.hpp"
#include "load/server_settings.hpp"
#include "skype_etl/errors.hpp"

namespace {

namespace se = skype_etl;
using se::cli::code;
using se::cli::print_error;

/// The commands, as README and --help list them.
const std::vector<std::string> k_commands{"run", "search", "export", "stats", "db"};
const std::vector<std::string> k_db_commands{"status", "start", "stop", "psql"};

std::string listed(const std::vector<std::string>& names) {
  std::string text;
  for (std::size_t i = 0; i < names.size(); ++i)
    text += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return text;
}

/// The first word of argv[from..] that is not an option (nor the value of one of
/// `valued`, the options that take a separate value there), or nullopt. `help` is set when
/// a --help, -h or --version comes first.
std::optional<std::string> first_word(int argc, char** argv, int& from,
                                      const std::set<std::string>& valued, bool& help) {
  for (; from < argc; ++from) {
    const std::string arg = argv[from];
    if (arg == "--help" || arg == "-h" || arg == "--version") help = true;
    if (arg.empty() || arg[0] != '-') return arg;
    if (valued.count(arg)) ++from;
  }
  return std::nullopt;
}

/// CLI11 answers a misspelt command with "A subcommand is required" or "The following
/// arguments were not expected": say which command is unknown and which there are. Returns
/// the usage error's message, or nullopt when the command words are known.
std::optional<std::string> check_command_words(int argc, char** argv) {
  bool help = false;
  int at = 1;
  const auto command = first_word(argc, argv, at, {"--log-level"}, help);
  if (!command) {
    if (help) return std::nullopt;
    return "a command is needed: " + listed(k_commands) + " (see skype-etl --help)";
  }
  if (std::find(k_commands.begin(), k_commands.end(), *command) == k_commands.end()) {
    return "unknown command '" + se::printable(*command, 64) + "': the commands are " +
           listed(k_commands) + " (see skype-etl --help)";
  }
  if (*command != "db") return std::nullopt;
  ++at;
  const auto db_command = first_word(argc, argv, at, {"--log-level", "--data-dir"}, help);
  if (!db_command) {
    if (help) return std::nullopt;
    return "db needs a command: " + listed(k_db_commands) + " (see skype-etl db --help)";
  }
  if (std::find(k_db_commands.begin(), k_db_commands.end(), *db_command) == k_db_commands.end()) {
    return "unknown command 'db " + se::printable(*db_command, 64) + "': the db commands are " +
           listed(k_db_commands) + " (see skype-etl db --help)";
  }
  return std::nullopt;
}

/// The name of the (sub)command whose parse failed, for "see skype-etl NAME --help".
std::string parsed_command(const CLI::App& app) {
  std::string name;
  for (const CLI::App* at = &app;;) {
    const auto chosen = at->get_subcommands();
    if (chosen.empty()) break;
    at = chosen.front();
    name += (name.empty() ? "" : " ") + at->get_name();
  }
  return name;
}

int run_psql(const std::string& conninfo, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"psql"};
  // Empty: the PG* environment, which psql reads itself.
  if (!conninfo.empty()) args.push_back(conninfo);
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv_psql;
  for (auto& a : args) argv_psql.push_back(a.data());
  argv_psql.push_back(nullptr);
  std::fflush(nullptr);
  ::execvp("psql", argv_psql.data());
  // A machine without psql: not a bug of skype-etl (exit 1) but what it was asked to do
  // there, a usage error (README, "Exit codes").
  throw se::UsageError(std::string("cannot run psql: ") + std::strerror(errno) +
                       " (is postgresql-client installed?)");
}

/// Numeric options: CLI11's own messages ("Value 0 not in range 0.000000 to ...") never
/// reach the user; the validator says what is allowed.
void whole_number(CLI::Option* option, std::uint64_t min, std::uint64_t max) {
  option->type_name("N")->check(se::cli::whole_number(min, max));
}

/// `skype-etl run` and its options, into `o`.
CLI::App* add_run_command(CLI::App& app, se::cli::RunOptions& o, se::cli::LogOptions& log) {
  CLI::App* command = app.add_subcommand("run",
                                         "load exports (.tar, .tar.gz, messages.json, "
                                         ".json.gz, or an unpacked export directory)");
  command
      ->add_option("exports", o.inputs,
                   "exports to load one after another: files (.tar, .tar.gz, .json, .json.gz), "
                   "unpacked export directories, directories of exports, patterns (quoted), or "
                   "- for a list on standard input")
      ->type_name("EXPORT");
  command
      ->add_option("--files-from", o.files_from,
                   "also load the exports listed in FILE, one a line (- for standard input); "
                   "default: none")
      ->type_name("FILE");
  command->add_flag("--fail-fast", o.run.fail_fast,
                    "stop at the first export that fails; default: off (load the others, and "
                    "exit with the first failure's code)");
  se::cli::add_db_options(*command, o.db);
  command
      ->add_option("--user-display-name", o.run.user_display_name,
                   "name stored for your own messages (exports leave it empty); default: none")
      ->type_name("NAME");
  whole_number(command->add_option("--batch-size", o.run.batch_size,
                                   "messages per batch travelling through the graph (a batch "
                                   "also ends once its messages span 1 MiB); default: " +
                                       std::to_string(se::Options{}.batch_size)),
               1, 1000000);
  whole_number(command->add_option("--batches-in-flight", o.run.batches_in_flight,
                                   "batches alive between reader and loader at once; default: " +
                                       std::to_string(se::Options{}.batches_in_flight)),
               1, 1024);
  whole_number(command->add_option("--copy-streams", o.run.copy_streams,
                                   "connections that COPY a large first export of an account and "
                                   "build its indexes at once; default: " +
                                       std::to_string(se::Options{}.copy_streams)),
               1, 16);
  command
      ->add_option_function<std::string>(
          "--maintenance-work-mem",
          [&o](const std::string& value) {
            o.run.maintenance_work_mem = se::cli::parse_size(value);
          },
          "maintenance_work_mem of the load's index builds (a server whose own is larger keeps "
          "its own); default: " +
              se::detail::postgres_size(se::detail::default_maintenance_work_mem) +
              ", at most a 16th of the RAM for a server on this machine (Unix socket), at most "
              "twice its shared_buffers for another")
      ->type_name("SIZE")
      ->check(se::cli::size_value(1ULL << 20U, 1ULL << 40U));
  whole_number(command->add_option("--memory-limit-mb", o.run.memory_limit_mb,
                                   "stop with exit code 5 when private memory exceeds N MB, or "
                                   "would; default: no limit"),
               1, 1000000000);
  command->add_flag("--sequential", o.sequential,
                    "run extract, transform and load one after another (holds the whole export "
                    "in memory); default: off (parallel)");
  command->add_flag("--with-media", o.run.with_media,
                    "join media/<docid>.json metadata of the tar to messages' attachments; with "
                    "--output-dir, also write the media files there; default: off");
  command
      ->add_option("--output-dir", o.output_dir,
                   "with --with-media: where each export's media files go, in a directory of "
                   "its own; default: none")
      ->type_name("DIR");
  command
      ->add_option("--report", o.reports,
                   "write the run's statistics to FILE: JSON, or an HTML page when FILE ends in "
                   ".html or .htm (any case); may be given more than once; default: none")
      ->type_name("FILE")
      ->allow_extra_args(false);  // --report FILE a.tar: a.tar is an export, not a report
  command
      ->add_option("--temp-dir", o.temp_dir,
                   "where a .tar.gz or .json.gz is decompressed, into a temporary file; "
                   "default: $TMPDIR, else /tmp")
      ->type_name("DIR");
  whole_number(command->add_option("--max-gzip-ratio", o.run.max_gzip_ratio,
                                   "refuse (exit 3) gzip data that inflates to more than N times "
                                   "its compressed size, plus 64 MiB; 0: no limit; default: " +
                                       std::to_string(se::Options{}.max_gzip_ratio)),
               0, 1000000);
  command
      ->add_option("--progress", o.progress,
                   "live progress on stderr: bar (one line per running export, redrawn; only "
                   "on a terminal), plain (a line every --progress-interval seconds, for "
                   "logs), none; -q means none; default: bar on a terminal, none otherwise")
      ->type_name("MODE")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            if (value == "none" || value == "bar" || value == "plain") return {};
            return "must be none, bar or plain (got " + se::quoted(value) + ")";
          },
          "", "MODE"));
  command
      ->add_option("--progress-interval", o.progress_interval,
                   "seconds between the lines of --progress=plain; default: 10")
      ->type_name("SECONDS")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            char* end = nullptr;
            const double seconds = std::strtod(value.c_str(), &end);
            if (!value.empty() && end == value.c_str() + value.size() && seconds >= 0.1 &&
                seconds <= 86400)
              return {};
            return "must be a number of seconds from 0.1 to 86400 (got " + se::quoted(value) + ")";
          },
          "", "SECONDS"));
  se::cli::add_log_options(*command, log);
  command->add_option("--debug-fail-after-batches", o.run.fail_after_batches)
      ->group("");  // test hook: fail the run after N loaded batches
  command->add_option("--debug-pause-after-batches", o.pause_after_batches)
      ->group("");  // test hook: hang after N loaded batches (for kill -9 tests)
  return command;
}

/// What `skype-etl search` is given.
struct SearchOptions {
  se::detail::SearchQuery query;
  std::string since;  ///< as typed: parse_date checks it
  se::cli::DbOptions db;
};

/// `skype-etl search` and its options, into `o`.
CLI::App* add_search_command(CLI::App& app, SearchOptions& o, se::cli::LogOptions& log) {
  CLI::App* command = app.add_subcommand("search", "full-text search of loaded messages");
  command
      ->add_option("words", o.query.words,
                   "words to find: all of them (\"a phrase\", or, -word to exclude)")
      ->required()
      ->type_name("WORDS")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            if (value.find_first_not_of(" \t\n") != std::string::npos) return {};
            return "must hold a word to find (got " + se::quoted(value) + ")";
          },
          "", "WORDS"));
  command
      ->add_option("--conversation", o.query.conversation_id,
                   "only this conversation id; default: every conversation")
      ->type_name("ID");
  command
      ->add_option("--from", o.query.sender_id,
                   "only messages sent by this id, in any form (8:alice, alice, a contacts "
                   "URL); default: every sender")
      ->type_name("ID");
  command
      ->add_option("--since", o.since,
                   std::string("only messages sent since DATE: ") + se::cli::k_date_formats +
                       "; default: any time")
      ->type_name("DATE");
  command
      ->add_option("--account", o.query.account_id,
                   "only this account (an export's owner), its id in any form; default: every "
                   "account")
      ->type_name("ID");
  whole_number(command->add_option("--limit", o.query.limit, "at most N matches; default: 50"), 1,
               1000000);
  se::cli::add_db_options(*command, o.db);
  se::cli::add_log_options(*command, log);
  return command;
}

/// The db commands.
struct DbCommands {
  CLI::App* status = nullptr;
  CLI::App* start = nullptr;
  CLI::App* stop = nullptr;
  CLI::App* psql = nullptr;
};

/// `skype-etl db status|start|stop|psql` and their options, into `o`.
DbCommands add_db_commands(CLI::App& app, se::cli::DbOptions& o, se::cli::LogOptions& log) {
  // db: --data-dir before or after the db command (db --data-dir X status, db status
  // --data-dir X); both bind the same value.
  CLI::App* db_cmd = app.add_subcommand("db",
                                        "manage the local database (README: \"The local "
                                        "default database\")");
  db_cmd->require_subcommand(1);
  se::cli::add_db_options(*db_cmd, o, false);
  se::cli::add_log_options(*db_cmd, log);
  DbCommands c;
  c.status = db_cmd->add_subcommand("status",
                                    "is there a local database, is it running, where, how "
                                    "to connect, and which database the commands use");
  c.start = db_cmd->add_subcommand(
      "start",
      "start the local database (creating it if there is none, and saying so) and "
      "print its connection string");
  c.stop = db_cmd->add_subcommand("stop", "stop the local database's server");
  c.psql = db_cmd->add_subcommand(
      "psql",
      "open psql on the database the commands use (--db, else README's \"Choosing the "
      "database\"); arguments it does not know go to psql");
  for (CLI::App* command : {c.status, c.start, c.stop}) {
    se::cli::add_db_options(*command, o, false);
    se::cli::add_log_options(*command, log);
  }
  se::cli::add_db_options(*c.psql, o, true);
  // psql's own -v and -q stay psql's.
  se::cli::add_log_options(*c.psql, log, false);
  c.psql->allow_extras();
  return c;
}

int run_main(int argc, char** argv) {
  se::cli::start_logging();
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
  if (auto problem = check_command_words(argc, argv)) {
    print_error(*problem);
    return code(se::ExitCode::usage);
  }
  CLI::App app{
      "skype-etl: load Skype chat-history exports into PostgreSQL (README.md says more: "
      "\"Using it\", \"Choosing the database\", \"Exit codes\")"};
  app.require_subcommand(1);
  app.footer(
      "Exit codes, the same for every command: 0 done, 1 internal error (a bug), 2 bad "
      "command line, 3 the export cannot be read, 4 the database refused or failed, 5 "
      "--memory-limit-mb exceeded, 6 a file or directory skype-etl writes cannot be written "
      "(--report, --output-dir, export's DIR).");
  app.set_version_flag("--version", "skype-etl " SKYPE_ETL_VERSION);
  se::cli::LogOptions log;
  se::cli::add_log_options(app, log);
  se::cli::RunOptions run;
  CLI::App* run_cmd = add_run_command(app, run, log);
  SearchOptions search;
  CLI::App* search_cmd = add_search_command(app, search, log);
  se::cli::ExportOptions export_options;
  CLI::App* export_cmd = se::cli::add_export_command(app, export_options, log);
  se::cli::StatsOptions stats_options;
  CLI::App* stats_cmd = se::cli::add_stats_command(app, stats_options, log);
  se::cli::DbOptions db_options;
  const DbCommands db = add_db_commands(app, db_options, log);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --version
  } catch (const CLI::ParseError& e) {
    print_error(se::cli::usage_message(e, parsed_command(app)));
    return code(se::ExitCode::usage);
  }
  se::cli::apply_log_options(log);
  run.quiet = log.quiet;

  try {
    if (*run_cmd) return se::cli::run_command(run);
    if (*search_cmd) {
      if (!search.since.empty()) search.query.since = se::cli::parse_date("--since", search.since);
      se::DbConfig config{se::cli::resolve_conninfo(search.db, se::cli::LocalCreate::refused)};
      const auto hits = se::detail::search_messages(config, search.query);
      for (const auto& hit : hits) std::printf("%s\n", se::detail::format_search_hit(hit).c_str());
      if (hits.empty() && !log.quiet) std::fprintf(stderr, "skype-etl: no matches\n");
      return 0;
    }
    if (*export_cmd) {
      export_options.quiet = log.quiet;
      return se::cli::export_command(export_options);
    }
    if (*stats_cmd) return se::cli::stats_command(stats_options);
    if (*db.psql) {
      return run_psql(se::cli::resolve_conninfo(db_options, se::cli::LocalCreate::refused),
                      db.psql->remaining());
    }
    se::detail::LocalDatabase local = se::cli::local_database(db_options);
    if (*db.status) {
      nlohmann::json status = local.status();
      if (!local.is_initialized())
        status["hint"] = "there is no local database here: skype-etl run or db start creates one";
      status["used_by_the_commands"] = se::cli::describe_choice(db_options);
      std::printf("%s\n", status.dump(2).c_str());
      return 0;
    }
    if (*db.stop) {
      if (!local.is_initialized()) {
        throw se::DatabaseError("there is no local database in " +
                                se::quoted(local.data_dir().string(), 1024) +
                                ": nothing to stop (is --data-dir right?)");
      }
      const bool was_running = local.is_running();
      local.stop();
      std::printf("%s the local database in %s\n",
                  was_running ? "stopped" : "not running:", local.data_dir().c_str());
      return 0;
    }
    if (*db.start) {
      // db start always means the local database, whatever the environment chooses.
      const std::string source = db_options.data_dir.empty() ? "default" : "--data-dir";
      std::printf("%s\n",
                  se::cli::start_local(local, se::cli::LocalCreate::allowed, source).c_str());
      return 0;
    }
  } catch (const std::exception& error) {
    print_error(se::cli::error_message(error));
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
    print_error(se::cli::error_message(error));
  } catch (...) {
    print_error("internal error: unknown exception");
  }
  return code(se::ExitCode::internal);
}
