#include "load/partitions.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "load/pg_connection.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail {

std::string HashPart::holds(const std::string& alias) const {
  return "satisfies_hash_partition('" + parent + "'::regclass, " + std::to_string(modulus) + ", " +
         std::to_string(remainder) + ", " + alias + ".message_id)";
}

std::vector<HashPart> hash_parts(PgConnection& conn, const std::string& table) {
  const PgResult r = conn.exec_params(
      "SELECT c.oid::regclass::text, p.parentrelid::regclass::text, b[1], b[2] FROM "
      "pg_partition_tree(to_regclass($1)) p JOIN pg_class c ON c.oid = p.relid CROSS JOIN "
      "LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), "
      "'^FOR VALUES WITH \\(modulus (\\d+), remainder (\\d+)\\)$') AS b WHERE p.level = 1 "
      "AND p.isleaf AND EXISTS (SELECT 1 FROM pg_partitioned_table t WHERE t.partrelid = "
      "p.parentrelid AND t.partstrat = 'h' AND t.partnatts = 1 AND (SELECT a.attname FROM "
      "pg_attribute a WHERE a.attrelid = t.partrelid AND a.attnum = t.partattrs[0]) = "
      "'message_id') ORDER BY b[2]::int",
      std::vector<std::string>{table});
  std::vector<HashPart> parts;
  for (int k = 0; k < r.rows(); ++k)
    parts.push_back({std::string(r.text(k, 0)), std::string(r.text(k, 1)),
                     static_cast<int>(r.integer(k, 2)), static_cast<int>(r.integer(k, 3))});
  return parts;
}

bool unless_taken(PgConnection& conn, const std::string& name, const std::function<void()>& body) {
  conn.exec("SAVEPOINT " + name);
  try {
    body();
  } catch (const DatabaseError& error) {
    if (error.sqlstate() != "42P17" && error.sqlstate() != "42P07") throw;
    conn.exec("ROLLBACK TO SAVEPOINT " + name);
    return false;
  }
  conn.exec("RELEASE SAVEPOINT " + name);
  return true;
}

void AccountPartition::set_account(const std::string& account_id) {
  m_account_id = account_id;
  m_name = std::string(
      m_conn
          .exec_params("SELECT 'messages_' || left(trim(both '_' from regexp_replace(lower($1), "
                       "'[^a-z0-9]+', '_', 'g')), 20) || '_' || left(md5($1), 8)",
                       std::vector<std::string>{account_id})
          .text(0, 0));
}

std::string AccountPartition::find(bool route) {
  std::string found(
      m_conn
          .exec_params(
              "SELECT coalesce((SELECT inhrelid::regclass::text FROM pg_inherits WHERE "
              "inhparent = 'skype.messages'::regclass AND inhrelid = to_regclass('skype.' || "
              "$2)), (SELECT tableoid::regclass::text FROM skype.messages WHERE account_id = $1 "
              "LIMIT 1), '')",
              std::vector<std::string>{m_account_id, m_name})
          .text(0, 0));
  if (!found.empty() || !route) return found;
  m_conn.exec("SAVEPOINT skype_etl_route");
  try {
    found = m_conn
                .exec_params(
                    "INSERT INTO skype.messages (account_id, conversation_id, message_id, "
                    "export_id) VALUES ($1, '', '', 0) ON CONFLICT (account_id, "
                    "conversation_id, message_id) DO UPDATE SET export_id = 0 "
                    "RETURNING tableoid::regclass::text",
                    std::vector<std::string>{m_account_id})
                .text(0, 0);
  } catch (const DatabaseError& error) {
    if (error.sqlstate() != "23514") throw;  // no partition takes the account
  }
  m_conn.exec("ROLLBACK TO SAVEPOINT skype_etl_route");
  m_conn.exec("RELEASE SAVEPOINT skype_etl_route");
  return found;
}

std::string AccountPartition::ensure() {
  std::string existing = find();
  if (!existing.empty()) return existing;
  const std::string table = own();
  const bool created = unless_taken(m_conn, "skype_etl_partition", [&] {
    m_conn.exec("CREATE TABLE " + table + " (LIKE skype.messages INCLUDING ALL EXCLUDING INDEXES)");
    // Indexes of a form not planned are created by ATTACH, under names of its choosing.
    IndexPlan plan;
    if (plan_indexes(table, "", plan)) {
      for (const std::string& sql : plan.build) m_conn.exec(sql);
      for (const std::string& sql : plan.constraints) m_conn.exec(sql);
    }
    m_conn.exec(attach_sql());
  });
  // If not, the rows go to the partition that takes the account, found by routing a row.
  return created ? table : find(true);
}

bool AccountPartition::plan_indexes(const std::string& table, const std::string& prefix,
                                    IndexPlan& plan, const std::string& final_name,
                                    bool partitioned) {
  const std::string& base = final_name.empty() ? m_name : final_name;
  PgResult r = m_conn.exec_params(
      "SELECT ic.relname, pg_get_indexdef(i.indexrelid), con.conname IS NOT NULL, "
      "pg_get_constraintdef(con.oid), quote_ident($1 || CASE WHEN ic.relname LIKE 'messages%' "
      "THEN substr(ic.relname, 9) ELSE '_' || ic.relname END), am.amname FROM pg_index i "
      "JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam "
      "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND "
      "con.conrelid = i.indrelid WHERE i.indrelid = 'skype.messages'::regclass "
      "ORDER BY am.amname = 'gin' DESC, ic.relname",
      std::vector<std::string>{base});
  plan = IndexPlan();
  for (int k = 0; k < r.rows(); ++k) {
    const std::string parent_name(r.text(k, 0));
    const std::string index_name(r.text(k, 4));
    const std::string name = prefix.empty() ? index_name : prefix + "_" + std::to_string(k);
    plan.parent_names.push_back(parent_name);
    if (r.text(k, 2) == "t") {
      // A key constraint gets its unique index built like the other indexes, then becomes
      // the constraint (no scan: the columns are NOT NULL). ADD CONSTRAINT ... PRIMARY KEY
      // would lock the table against the other builds while it sorts (CREATE INDEX takes a
      // SHARE lock: the builds run side by side).
      const std::string definition(r.text(k, 3));
      std::string kind;
      for (const char* key : {"PRIMARY KEY (", "UNIQUE ("})
        if (definition.rfind(key, 0) == 0 && definition.back() == ')' &&
            definition.find("DEFERRABLE") == std::string::npos)
          kind = std::string(key, std::strlen(key) - 2);
      if (kind.empty()) return false;
      if (!prefix.empty())
        plan.renames.push_back("ALTER TABLE skype." + base + " RENAME CONSTRAINT " + name + " TO " +
                               index_name);
      if (partitioned) {
        plan.build.push_back("ALTER TABLE " + table + " ADD CONSTRAINT " + name + " " + definition);
        continue;
      }
      plan.constraints.push_back("ALTER TABLE skype." + base + " ADD CONSTRAINT " + name + " " +
                                 kind + " USING INDEX " + name);
    }
    // "CREATE [UNIQUE] INDEX <name> ON ONLY skype.messages USING ..."
    const std::string definition(r.text(k, 1));
    const std::string on = " ON ONLY skype.messages USING ";
    const std::size_t at = definition.find(on);
    const std::string head = definition.substr(0, std::min(at, definition.size()));
    std::string statement;
    for (const char* create : {"CREATE INDEX ", "CREATE UNIQUE INDEX "})
      if (at != std::string::npos && head.rfind(create, 0) == 0)
        statement = create + name + " ON " + table + " USING " + definition.substr(at + on.size());
    if (statement.empty()) return false;
    plan.build.push_back(statement);
    if (!prefix.empty() && r.text(k, 2) != "t")
      plan.renames.push_back("ALTER INDEX skype." + name + " RENAME TO " + index_name);
  }
  return true;
}

std::string AccountPartition::attach_sql() {
  return std::string(
      m_conn
          .exec_params("SELECT format('ALTER TABLE skype.messages ATTACH PARTITION skype.%I "
                       "FOR VALUES IN (%L)', $1::text, $2::text)",
                       std::vector<std::string>{m_name, m_account_id})
          .text(0, 0));
}

bool AccountPartition::statistics_stale(const std::string& partition, std::uint64_t changed_rows) {
  if (partition.empty() || changed_rows == 0) return false;
  // A tenth of the partition changed since its last ANALYZE may change a plan: this
  // export's rows plus those earlier loads changed without analyzing (n_mod_since_analyze,
  // which counts committed changes only, so never this transaction's). Counting only this
  // export's rows, a series of small later exports (each 3% newer messages, say) would
  // never analyze: the statistics would age until autovacuum, if enabled, caught up.
  // A partition split into hash partitions (a first load's, SideSplit) counts their rows.
  const PgResult r = m_conn.exec_params(
      std::string(leaf_tables_cte) +
          "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::float8, "
          "coalesce(sum(s.n_mod_since_analyze), 0), count(*) FROM leaves l JOIN pg_class c ON "
          "c.oid = l.relid LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid",
      std::vector<std::string>{partition});
  if (r.integer(0, 2) == 0) return false;
  const double known_rows = std::max(0.0, std::strtod(std::string(r.text(0, 0)).c_str(), nullptr));
  const double earlier = std::strtod(std::string(r.text(0, 1)).c_str(), nullptr);
  const double changed = static_cast<double>(changed_rows) + earlier;
  // A few rows change no plan.
  return changed > 1000 && changed > known_rows * 0.1;
}

}  // namespace skype_etl::detail
