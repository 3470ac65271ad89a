#include "cli/common.hpp"

#include <cstdio>

namespace skype_etl::cli {

int code(ExitCode c) {
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
  std::fprintf(stderr, "skype-etl: error: %s\n", skype_etl::printable(line, 8192).c_str());
}

void add_db_options(CLI::App& command, DbOptions& db) {
  command.add_option("--db", db.db,
                     "libpq connection string (URI or key=value); default: the PG* environment "
                     "if set, else the local database");
  command.add_option("--data-dir", db.data_dir,
                     "data directory of the local database (default: "
                     "$XDG_DATA_HOME/skype-etl/pg or ~/.local/share/skype-etl/pg)");
}

detail::LocalDatabase local_database(const DbOptions& db) {
  return db.data_dir.empty() ? detail::LocalDatabase() : detail::LocalDatabase(db.data_dir);
}

std::string resolve_conninfo(const DbOptions& db) {
  if (auto configured = detail::configured_conninfo(db.db)) return *configured;
  detail::LocalDatabase local = local_database(db);
  const bool was_running = local.is_running();
  std::string conninfo = local.ensure_running();
  if (!was_running)
    std::fprintf(stderr, "skype-etl: started the local database in %s\n", local.data_dir().c_str());
  return conninfo;
}

}  // namespace skype_etl::cli
