// The partitions of skype.messages, one per account (migration 6 made the old table the
// partition of the accounts it held): their names, creation, the plans that copy the
// parent's indexes onto a future partition, and attaching.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace skype_etl::detail {

class PgConnection;

/// How a future partition gets the indexes and key constraints of skype.messages:
/// statements that build them (one per index of skype.messages), the names of
/// skype.messages' indexes they match, statements that make the unique indexes of key
/// constraints those constraints (run on the partition before it is attached), and, when
/// built under temporary names, statements that give them their names once attached.
struct IndexPlan {
  std::vector<std::string> build;
  std::vector<std::string> parent_names;
  std::vector<std::string> constraints;
  std::vector<std::string> renames;
};

/// SQL: the tables that hold the rows of table $1 (a partition of skype.messages, perhaps
/// itself partitioned, or any other table) as rows of column relid: its leaf partitions,
/// else itself; none when there is no such table. Followed by the query that uses them.
constexpr const char* leaf_tables_cte =
    "WITH t AS (SELECT to_regclass($1) AS r), leaves AS (SELECT p.relid FROM t, "
    "pg_partition_tree(t.r) p WHERE p.isleaf UNION ALL SELECT t.r FROM t WHERE t.r IS NOT "
    "NULL AND NOT EXISTS (SELECT 1 FROM pg_partition_tree(t.r))) ";

/// One hash partition of a table partitioned by HASH (message_id) (a split side table,
/// SideSplit), or a table that is none (`parent` empty).
struct HashPart {
  std::string table;   ///< the partition, schema-qualified
  std::string parent;  ///< its partitioned table, schema-qualified
  int modulus = 0;
  int remainder = 0;
  /// SQL: whether the row `alias` (with a message_id) belongs in this partition.
  std::string holds(const std::string& alias) const;
};

/// The hash partitions of `table` when it is partitioned by HASH (message_id), in the order
/// of their remainders; none for any other table (or one that does not exist).
std::vector<HashPart> hash_parts(PgConnection& conn, const std::string& table);

/// Runs `body` in savepoint `name`. Returns false, with what it did rolled back, when it
/// fails because a partition already takes the account (42P17: one of several accounts,
/// without rows of this one) or a table has the name (42P07); other errors propagate.
bool unless_taken(PgConnection& conn, const std::string& name, const std::function<void()>& body);

/// The partition of skype.messages of one account, on the loader's connection.
class AccountPartition {
 public:
  explicit AccountPartition(PgConnection& conn) : m_conn(conn) {}

  /// The account the next calls are about; names its partition (name()).
  void set_account(const std::string& account_id);
  /// The name the account's partition gets when a load creates it: a readable part of the
  /// account id and a hash of all of it.
  const std::string& name() const noexcept { return m_name; }
  /// "skype.<name()>": the account's partition when a load of it created it.
  std::string own() const { return "skype." + m_name; }

  /// The partition of skype.messages that takes the account's rows, "" when there is none:
  /// own(), or the one its rows are in (the old table, which migration 6 made the
  /// partition of the accounts it held). Inside a transaction `route` asks where a row of
  /// the account would go (a row inserted and rolled back), which also finds a partition
  /// that takes the account but holds none of its rows.
  std::string find(bool route = false);
  /// Inside the export's transaction, under the account's lock: gives the account an empty
  /// partition of skype.messages, with its indexes, if it has none. Returns the account's
  /// partition, "" when no partition takes it and none could be created.
  std::string ensure();
  /// Plans how table `table`, a future partition for the account, gets the indexes and key
  /// constraints of skype.messages (the full-text index first: it takes longest). With a
  /// `prefix` they are built as <prefix>_0, _1, ... and renamed after `final_name` (the
  /// table's name in schema skype once attached; empty: name()) then; without, they get
  /// those names at once. For a `partitioned` table (whose partitions have the indexes
  /// already) key constraints are added with their columns among `build` (which attaches
  /// the partitions' matching indexes), not from a unique index. False when an index is of
  /// a form this does not know how to copy.
  bool plan_indexes(const std::string& table, const std::string& prefix, IndexPlan& plan,
                    const std::string& final_name = {}, bool partitioned = false);
  /// ALTER TABLE skype.messages ATTACH PARTITION skype.<name()> for the account.
  std::string attach_sql();
  /// Whether `partition` should be analyzed before statements join it, now that
  /// `changed_rows` of its rows were inserted or replaced: its statistics (perhaps taken
  /// while it was empty) mislead the planner once a good part of it changed, by this
  /// load and by earlier ones since its last ANALYZE. False for a table that does not exist.
  bool statistics_stale(const std::string& partition, std::uint64_t changed_rows);

 private:
  PgConnection& m_conn;
  std::string m_account_id;
  std::string m_name;
};

}  // namespace skype_etl::detail
