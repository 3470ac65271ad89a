#include "load/membership_text.hpp"

#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/membership.hpp"
#include "load/pg_connection.hpp"

namespace skype_etl::detail {
namespace {

std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string string_of(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// details.membership as stored (the transform's shape; unknown members ignored).
MembershipInfo parse_membership(const nlohmann::json& m) {
  MembershipInfo info;
  info.kind = string_of(m, "kind");
  info.initiator = string_of(m, "initiator");
  info.value = string_of(m, "value");
  info.role = string_of(m, "role");
  const auto targets = m.find("targets");
  if (targets != m.end() && targets->is_array())
    for (const auto& t : *targets)
      if (t.is_string()) info.targets.push_back(t.get<std::string>());
  return info;
}

/// The display names of the ids involved: per (conversation, id), and per id in the account
/// (its participant row seen last; the account's own name for the owner). `loaded`: the
/// ids looked up so far (with or without a name).
struct Names {
  std::map<std::pair<std::string, std::string>, std::string> in_conversation;
  std::map<std::string, std::string> in_account;
  std::set<std::string> loaded;
};

/// Adds the names of `ids` not looked up yet to `names`.
void load_names(PgConnection& conn, const std::string& account_id,
                const std::set<std::string>& wanted, Names& names) {
  std::set<std::string> ids;
  for (const std::string& id : wanted)
    if (names.loaded.insert(id).second) ids.insert(id);
  if (ids.empty()) return;
  nlohmann::json id_list = nlohmann::json::array();
  for (const std::string& id : ids) id_list.push_back(id);
  const PgResult r = conn.exec_params(
      "SELECT p.participant_id, p.conversation_id, p.display_name FROM skype.participants p "
      "WHERE p.account_id = $1 AND p.participant_id IN (SELECT jsonb_array_elements_text("
      "$2::jsonb)) AND coalesce(p.display_name, '') <> '' "
      "ORDER BY p.last_seen_at DESC NULLS LAST, p.conversation_id",
      std::vector<std::string>{account_id, dump(id_list)});
  for (int i = 0; i < r.rows(); ++i) {
    std::string id(r.text(i, 0));
    std::string name(r.text(i, 2));
    names.in_conversation.emplace(std::make_pair(std::string(r.text(i, 1)), id), name);
    names.in_account.emplace(std::move(id), std::move(name));  // the first: seen last
  }
  if (ids.count(account_id) > 0 && names.in_account.count(account_id) == 0) {
    const PgResult owner = conn.exec_params(
        "SELECT coalesce(display_name, '') FROM skype.accounts WHERE account_id = $1",
        std::vector<std::string>{account_id});
    if (owner.rows() > 0 && !owner.text(0, 0).empty())
      names.in_account.emplace(account_id, std::string(owner.text(0, 0)));
  }
}

}  // namespace

bool may_hold_membership(const std::string& details_json) noexcept {
  return !details_json.empty() && details_json.find("\"membership\":") != std::string::npos;
}

std::uint64_t describe_membership_rows(PgConnection& conn, const std::string& partition,
                                       const std::string& account_id,
                                       const std::string& export_id) {
  const std::vector<std::string> params{account_id, export_id};
  // This export's stored rows of the staged keys (a message may come several times in an
  // export, as repeats of its id: once here) with a membership event.
  const std::string events =
      "SELECT m.conversation_id, m.message_id, m.content_text, m.details->'membership' AS e "
      "FROM (SELECT DISTINCT conversation_id, message_id FROM stage_membership) k JOIN " +
      partition +
      " m ON m.conversation_id = k.conversation_id AND m.message_id = k.message_id WHERE "
      "m.account_id = $1 AND m.export_id = $2::bigint AND "
      "jsonb_typeof(m.details->'membership') = 'object'";

  // A chunk at a time (a cursor), so that memory stays flat however many events an export
  // holds: the names of the people a chunk names are looked up (once per person), then its
  // new texts are written before the next chunk is read.
  conn.exec_params("DECLARE skype_etl_membership NO SCROLL CURSOR FOR " + events, params);
  constexpr int k_chunk = 2000;
  std::uint64_t changed = 0;
  Names names;
  while (true) {
    const PgResult rows =
        conn.exec("FETCH " + std::to_string(k_chunk) + " FROM skype_etl_membership");
    std::vector<std::optional<MembershipInfo>> chunk(static_cast<std::size_t>(rows.rows()));
    std::set<std::string> ids;
    for (int i = 0; i < rows.rows(); ++i) {
      const std::string_view text = rows.text(i, 3);
      const auto membership = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
      if (!membership.is_object()) continue;
      const MembershipInfo& event =
          chunk[static_cast<std::size_t>(i)].emplace(parse_membership(membership));
      if (!event.initiator.empty()) ids.insert(event.initiator);
      ids.insert(event.targets.begin(), event.targets.end());
    }
    load_names(conn, account_id, ids, names);
    nlohmann::json changes = nlohmann::json::array();
    for (int i = 0; i < rows.rows(); ++i) {
      if (!chunk[static_cast<std::size_t>(i)]) continue;
      const MembershipInfo& event = *chunk[static_cast<std::size_t>(i)];
      const std::string conversation_id(rows.text(i, 0));
      nlohmann::json used = nlohmann::json::object();
      const NameOf name_of = [&](std::string_view id) -> std::string {
        const std::string key(id);
        auto here = names.in_conversation.find({conversation_id, key});
        const std::string* name = here != names.in_conversation.end() ? &here->second : nullptr;
        if (!name) {
          auto anywhere = names.in_account.find(key);
          if (anywhere != names.in_account.end()) name = &anywhere->second;
        }
        if (!name) return {};
        used[key] = *name;
        return *name;
      };
      std::string line = describe_membership(event, name_of);
      if (line == rows.text(i, 2) && used.empty()) continue;
      nlohmann::json change = {
          {"c", conversation_id}, {"m", std::string(rows.text(i, 1))}, {"t", std::move(line)}};
      if (!used.empty()) change["n"] = std::move(used);  // absent: NULL
      changes.push_back(std::move(change));
    }
    if (!changes.empty()) {
      const PgResult updated = conn.exec_params(
          "UPDATE " + partition +
              " m SET content_text = v.t, details = CASE WHEN v.n IS NULL THEN m.details ELSE "
              "jsonb_set(m.details, '{membership,names}', v.n) END FROM jsonb_to_recordset("
              "$3::jsonb) AS v(c text, m text, t text, n jsonb) WHERE m.account_id = $1 AND "
              "m.export_id = $2::bigint AND m.conversation_id = v.c AND m.message_id = v.m",
          std::vector<std::string>{account_id, export_id, dump(changes)});
      changed += std::strtoull(PQcmdTuples(updated.get()), nullptr, 10);
    }
    if (rows.rows() < k_chunk) break;
  }
  conn.exec("CLOSE skype_etl_membership");
  return changed;
}

}  // namespace skype_etl::detail
