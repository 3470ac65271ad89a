// The local default database: a PostgreSQL cluster of skype-etl's own, used when the user
// configured no database (no --db, no PGHOST/PGDATABASE/PGSERVICE/DATABASE_URL).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace skype_etl::detail {

class LocalDatabase {
 public:
  /// $XDG_DATA_HOME/skype-etl/pg, else ~/.local/share/skype-etl/pg.
  static std::filesystem::path default_data_dir();

  explicit LocalDatabase(std::filesystem::path data_dir = default_data_dir());

  /// Runs initdb on first use and starts the server (Unix socket in the data directory,
  /// no TCP) if it is not running; as the `postgres` user when run as root. Creates the
  /// database `skype`. Returns conninfo(). Throws DatabaseError with an actionable message.
  std::string ensure_running();
  bool is_running() const;
  /// Stops the server if it runs. Throws DatabaseError when pg_ctl fails.
  void stop();
  /// "host=<socket dir> port=<port> dbname=skype user=<user>".
  std::string conninfo() const;
  /// {"data_dir", "running", "conninfo", "pid"}.
  nlohmann::json status() const;
  const std::filesystem::path& data_dir() const noexcept { return m_data_dir; }

 private:
  std::filesystem::path m_data_dir;
};

/// The connection string the user configured: `db_option` when not empty, else
/// DATABASE_URL, else "" (libpq's PG* environment) when PGHOST, PGDATABASE or PGSERVICE is
/// set; std::nullopt when nothing is configured (use the LocalDatabase).
std::optional<std::string> configured_conninfo(const std::string& db_option);

/// The connection string with any password replaced by "***" (URI and key=value forms),
/// for logs and error messages.
std::string redact_conninfo(std::string_view conninfo);

}  // namespace skype_etl::detail
