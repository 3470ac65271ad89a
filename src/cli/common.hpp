// What the subcommands of the command line share: exit codes, the one-line error, logging,
// option values, the files they write, and how the database to use is chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "core/local_db.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::cli {

int code(ExitCode c);

/// A bad command line found after parsing (exit code 2): the library's UsageError, which
/// exit_code_for maps to 2 like the checks of parse_date and choose_database.
using UsageError = skype_etl::UsageError;

/// Prints `message` as one line on stderr: "skype-etl: error: <message>". Shown whatever the
/// log level.
void print_error(const std::string& message);

/// Prints a warning line, "skype-etl: warning: <message>", unless the log level (or -q)
/// hides warnings.
void print_warning(const std::string& message);

/// The one-line message for a failure, and its exit code: what() for the errors skype-etl
/// raises on purpose; for anything else (a bug) "internal error: ..." and, for
/// std::bad_alloc, "out of memory".
std::string error_message(const std::exception& error);

// --- logging ---------------------------------------------------------------------------

struct LogOptions {
  int verbose = 0;        ///< -v: info, -vv: debug
  std::string log_level;  ///< --log-level; empty: warn
  bool quiet = false;     ///< -q: errors and the final result only
};

/// -v, --log-level and -q (`with_short_flags` false: --verbose and --quiet only, for
/// `db psql`, whose -v and -q are psql's).
void add_log_options(CLI::App& command, LogOptions& log, bool with_short_flags = true);

/// Makes spdlog's default logger the command's: on stderr, "skype-etl: LEVEL: message", at
/// warn until apply_log_options() is called (errors of the command line itself are shown).
/// Called once, first thing in main; the command hands the same logger to its ETLContext.
void start_logging();
/// Sets the level from the parsed options.
void apply_log_options(const LogOptions& log);

// --- option values ---------------------------------------------------------------------

/// Accepts a whole number from `min` to `max` (digits only), else says so:
/// "--batch-size must be a whole number from 1 to 1000000 (got '0')".
CLI::Validator whole_number(std::uint64_t min, std::uint64_t max);

/// A size as PostgreSQL writes one, a whole number and its unit: "512MB", "2GB", "65536kB"
/// (kB, MB, GB, TB, any case); its bytes, or nullopt for anything else.
std::optional<std::uint64_t> parse_size(const std::string& text);
/// Accepts a size (parse_size) from `min` to `max` bytes, else says so: "--maintenance-work-mem
/// must be a size from 1MB to 1TB such as 512MB or 2GB (got "lots")".
CLI::Validator size_value(std::uint64_t min, std::uint64_t max);

/// The date formats parse_date accepts, in words.
extern const char* const k_date_formats;

/// `text` as a timestamp PostgreSQL reads the same whatever its TimeZone: a date alone is
/// midnight UTC, a time without a zone gets Z. Throws UsageError naming `option` and the
/// accepted formats when it is no date (checked here, digit by digit: month, day of the
/// month, leap years, hours, minutes, seconds, zone).
std::string parse_date(const std::string& option, const std::string& text);

/// The one-line message for a command-line error of CLI11: its text, with "NAME: must ..." of
/// our validators made "NAME must ...", and where to look for help.
std::string usage_message(const CLI::ParseError& error, const std::string& command);

// --- files the commands write ----------------------------------------------------------

/// Whether a --report FILE is the HTML page: its name ends in .html or .htm, in any case.
bool is_html_report(const std::string& file);

/// Throws OutputError (naming `what`) unless `file` can be written: its directory exists
/// and lets us create it, or it exists and we may write it. Leaves no file behind.
void check_writable(const std::string& what, const std::string& file);

/// Writes `text` to `file` (replacing it); throws OutputError saying why it cannot.
void write_text_file(const std::string& what, const std::string& file, const std::string& text);

// --- choosing the database -------------------------------------------------------------

struct DbOptions {
  std::string db;
  std::string data_dir;
};

/// --db and --data-dir of a subcommand (`with_db` false: --data-dir only, for the db
/// commands that manage the local database).
void add_db_options(CLI::App& command, DbOptions& db, bool with_db = true);

detail::LocalDatabase local_database(const DbOptions& db);

/// The database a command uses, and why (README, "Choosing the database"). The rule, first
/// that applies: --db; --data-dir (the local database there); DATABASE_URL; the PG*
/// environment when PGHOST, PGDATABASE or PGSERVICE is set; the local database in its
/// default directory. Throws UsageError for --db with --data-dir, and for a --db or
/// DATABASE_URL that libpq cannot parse.
struct DatabaseChoice {
  std::string conninfo;  ///< empty for the local database (see local) and the PG* environment
  std::string source;    ///< "--db", "--data-dir", "DATABASE_URL", "the PG* environment", "default"
  std::optional<detail::LocalDatabase> local;  ///< set when it is the local database
};
DatabaseChoice choose_database(const DbOptions& db);

/// Whether a command may create the local database when there is none yet: `run` and
/// `db start` may; the others say there is none.
enum class LocalCreate { allowed, refused };

/// The connection string of the chosen database (choose_database). The local database is
/// started if it is not running (info line), created if allowed and missing (warning line);
/// when creating is refused and there is none, DatabaseError says how to make one.
std::string resolve_conninfo(const DbOptions& db, LocalCreate create);

/// Starts the local database `local` (resolve_conninfo's second half, for `db start`, which
/// always means the local one); `source` says why it was chosen, for the log.
std::string start_local(detail::LocalDatabase& local, LocalCreate create,
                        const std::string& source);

/// Which database the commands would use with `db`, and why, in words for `db status`
/// (password hidden); a choice that cannot be made says why.
std::string describe_choice(const DbOptions& db);

/// The conninfo with its password hidden, or what it stands for when empty.
std::string describe_conninfo(const std::string& conninfo);

}  // namespace skype_etl::cli
