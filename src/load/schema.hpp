// Schema `skype`: versioned migrations applied in one transaction under an advisory lock.
#pragma once

#include <string>
#include <vector>

namespace skype_etl::detail {

class PgConnection;

/// One schema version: statements applied together, in order.
struct Migration {
  int version;
  const char* description;
  std::vector<std::string> statements;
};

/// Every migration, oldest first; versions are 1, 2, ... without gaps.
const std::vector<Migration>& schema_migrations();
/// The version this binary creates.
int latest_schema_version();
/// Version of the database's schema `skype` (0 when absent).
int current_schema_version(PgConnection& conn);
/// Brings the schema up to `up_to_version` (no newer) in one transaction under
/// pg_advisory_xact_lock, so concurrent processes migrate once. Returns the version found
/// before. Must not be called inside an open transaction. Throws DatabaseError when the
/// database's schema is newer than this binary knows.
int apply_migrations(PgConnection& conn, int up_to_version);
/// apply_migrations(conn, latest_schema_version()).
int ensure_schema(PgConnection& conn);

/// Advisory-lock key (first half) shared by every lock skype-etl takes: 's','k','y','p'.
inline constexpr int advisory_lock_class = 0x736b7970;
/// Second halves of the keys.
inline constexpr int migration_lock_key = 1;

}  // namespace skype_etl::detail
