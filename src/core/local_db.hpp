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
  /// $XDG_DATA_HOME/skype-etl/pg when XDG_DATA_HOME is an absolute path, else
  /// ~/.local/share/skype-etl/pg ($HOME, else the passwd entry's home). As root, when the
  /// `postgres` user (which runs the server) cannot traverse the way to that directory, as
  /// with root's private /root: /var/lib/skype-etl/pg.
  static std::filesystem::path default_data_dir();

  explicit LocalDatabase(std::filesystem::path data_dir = default_data_dir());

  /// Starts the server (Unix socket in the data directory, no TCP) if it is not running; as
  /// the `postgres` user when run as root. Creates the database `skype`. Returns
  /// conninfo(). Throws DatabaseError with an actionable message.
  /// With `may_create`, a data directory holding no cluster yet (missing, or empty) gets one
  /// (initdb); without, that is a DatabaseError, and nothing is created. A first start that
  /// fails leaves nothing behind: the directories it created, and the cluster it made, are
  /// removed (a directory that was there, empty, stays, empty).
  std::string ensure_running(bool may_create = true);
  bool is_running() const;
  /// Whether the data directory holds a cluster (PG_VERSION).
  bool is_initialized() const;
  /// Stops the server if it runs. Throws DatabaseError when pg_ctl fails.
  void stop();
  /// "host=<socket dir> port=<port> dbname=skype user=<user>".
  std::string conninfo() const;
  /// {"data_dir", "running", "conninfo", "pid", "initialized", "socket_dir", "log_file",
  /// "settings"}: "settings" is the path of skype-etl.conf when postgresql.conf includes it,
  /// else a sentence saying why PostgreSQL's defaults apply (opted out, or not started since).
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

/// Why libpq cannot parse `conninfo` (its own message, one line, with the string itself
/// shown redacted where libpq quotes it), or std::nullopt when it can. "" parses (libpq's
/// defaults).
std::optional<std::string> conninfo_parse_error(const std::string& conninfo);

}  // namespace skype_etl::detail
