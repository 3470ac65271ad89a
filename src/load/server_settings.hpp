// What the load asks of the server's settings, on any server, as a user without privileges
// may: the memory of its index builds, and, after a run, the one setting that slowed it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace skype_etl::detail {

class PgConnection;

/// The tool's own maintenance_work_mem for a load's index builds when none is chosen
/// (Options::maintenance_work_mem): 256 MiB, at most a 16th of this machine's RAM for a
/// server reached through a Unix socket (it runs here), at most twice shared_buffers for
/// another (its RAM is out of sight; shared_buffers is the memory it was given).
inline constexpr std::uint64_t default_maintenance_work_mem = 256ULL << 20U;

/// The maintenance_work_mem (a PostgreSQL value, "262144kB") that the load's connections
/// set: the larger of the server's own (what `conn`'s session has: postgresql.conf, ALTER
/// ROLE/DATABASE ... SET, PGOPTIONS) and `chosen`, or when none is chosen, the default
/// bounded as above. Never lowers the server's setting.
std::string index_build_memory(PgConnection& conn, std::optional<std::uint64_t> chosen);

/// The server's WAL position and its requested checkpoints so far (pg_stat_bgwriter), which
/// any user may read.
struct WalMark {
  std::uint64_t wal_bytes = 0;        ///< pg_current_wal_lsn() as a byte count
  std::uint64_t checkpoints_req = 0;  ///< checkpoints the server started because of WAL volume
};

/// The server's mark now; nullopt when it cannot tell (a standby, a view it hides).
std::optional<WalMark> wal_mark(PgConnection& conn);

/// After a load between `before` and `after`: one line naming the server setting that slowed
/// it and what to set, or "" when none did. Today: max_wal_size, when the load wrote at least
/// 32 MiB of WAL, and half the WAL after which the server asks for a checkpoint, and the
/// server requested checkpoints meanwhile. (shared_buffers at its 128MB default made no
/// difference that could be measured: benchmarks/README.md.)
std::string slow_load_hint(PgConnection& conn, const WalMark& before, const WalMark& after);

/// `bytes` as PostgreSQL writes a size: "32MB", "4GB", "1TB" (whole units), else kB.
std::string postgres_size(std::uint64_t bytes);

}  // namespace skype_etl::detail
