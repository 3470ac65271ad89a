#include "load/server_settings.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "load/pg_connection.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail {
namespace {

constexpr std::uint64_t kb = 1ULL << 10U;
constexpr std::uint64_t mb = 1ULL << 20U;
constexpr std::uint64_t gb = 1ULL << 30U;

std::uint64_t as_bytes(std::string_view text) {
  return std::strtoull(std::string(text).c_str(), nullptr, 10);
}

/// Whether the server runs on this machine: libpq reached it through a Unix socket (its
/// host is then the socket's directory, or an abstract socket's @name).
bool server_is_here(const PgConnection& conn) {
  const char* host = PQhost(conn.get());
  return host != nullptr && (host[0] == '/' || host[0] == '@');
}

std::uint64_t physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

}  // namespace

std::string postgres_size(std::uint64_t bytes) {
  if (bytes >= 1024 * gb && bytes % (1024 * gb) == 0)
    return std::to_string(bytes / gb / 1024) + "TB";
  if (bytes >= gb && bytes % gb == 0) return std::to_string(bytes / gb) + "GB";
  if (bytes >= mb && bytes % mb == 0) return std::to_string(bytes / mb) + "MB";
  return std::to_string(bytes / kb) + "kB";
}

std::string index_build_memory(PgConnection& conn, std::optional<std::uint64_t> chosen) {
  PgResult settings = conn.exec(
      "SELECT pg_size_bytes(current_setting('maintenance_work_mem')), "
      "pg_size_bytes(current_setting('shared_buffers'))");
  const std::uint64_t server = as_bytes(settings.text(0, 0));
  const std::uint64_t shared_buffers = as_bytes(settings.text(0, 1));
  std::uint64_t tool = default_maintenance_work_mem;
  if (chosen) {
    tool = *chosen;
  } else {
    // The builds run on up to copy_streams + 1 connections at once, beside the server's
    // own work: bounded by what the server has to give.
    const std::uint64_t ram = server_is_here(conn) ? physical_memory() : 0;
    tool = std::min(tool, ram > 0 ? ram / 16 : 2 * shared_buffers);
  }
  // PostgreSQL takes 1MB at least; whole kB.
  const std::uint64_t bytes = std::max({server, tool, mb});
  return std::to_string(bytes / kb) + "kB";
}

std::optional<WalMark> wal_mark(PgConnection& conn) {
  try {
    PgResult r = conn.exec(
        "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint, checkpoints_req "
        "FROM pg_stat_bgwriter");
    if (r.rows() != 1 || r.is_null(0, 0) || r.is_null(0, 1)) return std::nullopt;
    return WalMark{static_cast<std::uint64_t>(r.integer(0, 0)),
                   static_cast<std::uint64_t>(r.integer(0, 1))};
  } catch (const DatabaseError&) {
    return std::nullopt;  // a standby has no current WAL position: nothing to tell
  }
}

std::string slow_load_hint(PgConnection& conn, const WalMark& before, const WalMark& after) {
  if (after.checkpoints_req <= before.checkpoints_req || after.wal_bytes < before.wal_bytes)
    return {};
  const std::uint64_t wal = after.wal_bytes - before.wal_bytes;
  // A small load's checkpoint costs little: only a large one is worth a word.
  if (wal < 32 * mb) return {};
  PgResult r = conn.exec(
      "SELECT pg_size_bytes(current_setting('max_wal_size')), "
      "current_setting('checkpoint_completion_target')::float8");
  const std::uint64_t max_wal_size = as_bytes(r.text(0, 0));
  const double completion_target = std::strtod(std::string(r.text(0, 1)).c_str(), nullptr);
  // The server asks for a checkpoint once max_wal_size / (1 + checkpoint_completion_target)
  // of WAL was written since the last one. A load that wrote less than half of that was
  // not what filled it: requested checkpoints also count CHECKPOINT, CREATE DATABASE ...
  const double distance = static_cast<double>(max_wal_size) / (1.0 + completion_target);
  if (static_cast<double>(wal) < distance / 2) return {};
  // Room for the load's WAL, and a quarter more.
  const double needed = static_cast<double>(wal) * (1.0 + completion_target) * 1.25;
  std::uint64_t suggested = gb;
  while (static_cast<double>(suggested) < needed || suggested < 2 * max_wal_size) suggested *= 2;
  const std::uint64_t checkpoints = after.checkpoints_req - before.checkpoints_req;
  return "the server's max_wal_size (" + postgres_size(max_wal_size) + ") forced " +
         std::to_string(checkpoints) + (checkpoints == 1 ? " checkpoint" : " checkpoints") +
         " during the load, which wrote " + std::to_string((wal + mb / 2) / mb) +
         "MB of WAL; max_wal_size = " + postgres_size(suggested) +
         (checkpoints == 1 ? " avoids it" : " avoids them") +
         " (postgresql.conf or ALTER SYSTEM, then reload)";
}

}  // namespace skype_etl::detail
