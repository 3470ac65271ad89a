// What the subcommands of the command line share: exit codes, the one-line error, and how
// the database to use is chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <stdexcept>
#include <string>

#include "core/local_db.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::cli {

int code(ExitCode c);

/// A bad command line found after parsing (exit code 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Prints `message` as one line on stderr: "skype-etl: error: <message>".
void print_error(const std::string& message);

struct DbOptions {
  std::string db;
  std::string data_dir;
};

/// --db and --data-dir of a subcommand.
void add_db_options(CLI::App& command, DbOptions& db);

detail::LocalDatabase local_database(const DbOptions& db);

/// The connection string to use: --db, then the environment, then the local database
/// (started if needed, saying so in one line on stderr).
std::string resolve_conninfo(const DbOptions& db);

}  // namespace skype_etl::cli
