#include "load/membership_text.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "core/membership.hpp"
#include "load/pg_connection.hpp"

namespace skype_etl::detail {
namespace {

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

/// Adds the names of `wanted` ids not looked up yet to `names`: as skype.participants will
/// have them once the export's staged participants are merged (the loader's upsert: a
/// staged name wins when it is seen no earlier than the stored one), and for the owner the
/// name the account will have.
void load_names(PgConnection& conn, const std::string& account_id, const std::string& owner_name,
                const std::set<std::string>& wanted, Names& names) {
  std::set<std::string> ids;
  for (const std::string& id : wanted)
    if (names.loaded.insert(id).second) ids.insert(id);
  if (ids.empty()) return;
  nlohmann::json id_list = nlohmann::json::array();
  for (const std::string& id : ids) id_list.push_back(id);
  const PgResult r = conn.exec_params(
      "WITH ids AS (SELECT jsonb_array_elements_text($2::jsonb) AS id), "
      "staged AS (SELECT conversation_id, participant_id, (array_agg(display_name ORDER BY "
      "last_seen_at DESC NULLS LAST) FILTER (WHERE display_name IS NOT NULL))[1] AS "
      "display_name, max(last_seen_at) AS last_seen_at FROM stage_participants WHERE "
      "participant_id IN (SELECT id FROM ids) GROUP BY 1, 2), "
      "stored AS (SELECT conversation_id, participant_id, display_name, last_seen_at FROM "
      "skype.participants WHERE account_id = $1 AND participant_id IN (SELECT id FROM ids)), "
      "merged AS (SELECT coalesce(s.participant_id, p.participant_id) AS participant_id, "
      "coalesce(s.conversation_id, p.conversation_id) AS conversation_id, CASE WHEN "
      "s.display_name IS NOT NULL AND (p.last_seen_at IS NULL OR s.last_seen_at >= "
      "p.last_seen_at) THEN s.display_name ELSE p.display_name END AS display_name, "
      "greatest(s.last_seen_at, p.last_seen_at) AS last_seen_at FROM staged s FULL JOIN "
      "stored p ON p.conversation_id = s.conversation_id AND p.participant_id = "
      "s.participant_id) "
      "SELECT participant_id, conversation_id, display_name FROM merged WHERE "
      "coalesce(display_name, '') <> '' ORDER BY last_seen_at DESC NULLS LAST, conversation_id",
      std::vector<std::string>{account_id, json_text(id_list)});
  for (int i = 0; i < r.rows(); ++i) {
    std::string id(r.text(i, 0));
    std::string name(r.text(i, 2));
    names.in_conversation.emplace(std::make_pair(std::string(r.text(i, 1)), id), name);
    names.in_account.emplace(std::move(id), std::move(name));  // the first: seen last
  }
  if (ids.count(account_id) > 0 && names.in_account.count(account_id) == 0) {
    if (!owner_name.empty()) {
      names.in_account.emplace(account_id, owner_name);
      return;
    }
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

std::uint64_t describe_membership_rows(PgConnection& conn, const std::string& account_id,
                                       const std::string& owner_name) {
  // A chunk at a time (a cursor), so that memory stays flat however many events an export
  // holds: the names of the people a chunk names are looked up (once per person), then its
  // new texts are written (to stage_membership_text, read where the rows go on) before the
  // next chunk is read.
  conn.exec(
      "DECLARE skype_etl_membership NO SCROLL CURSOR FOR SELECT seq, conversation_id, "
      "content_text, details->'membership' FROM stage_membership_rows WHERE "
      "jsonb_typeof(details->'membership') = 'object'");
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
    load_names(conn, account_id, owner_name, ids, names);
    nlohmann::json changes = nlohmann::json::array();
    for (int i = 0; i < rows.rows(); ++i) {
      if (!chunk[static_cast<std::size_t>(i)]) continue;
      const MembershipInfo& event = *chunk[static_cast<std::size_t>(i)];
      const std::string conversation_id(rows.text(i, 1));
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
      nlohmann::json change = {{"s", std::stoll(std::string(rows.text(i, 0)))},
                               {"t", std::move(line)}};
      if (!used.empty()) change["n"] = std::move(used);  // absent: NULL
      changes.push_back(std::move(change));
    }
    if (!changes.empty()) {
      const PgResult written = conn.exec_params(
          "INSERT INTO stage_membership_text (seq, content_text, names) SELECT v.s, v.t, v.n "
          "FROM jsonb_to_recordset($1::jsonb) AS v(s bigint, t text, n jsonb)",
          std::vector<std::string>{json_text(changes)});
      changed += written.affected_rows();
    }
    if (rows.rows() < k_chunk) break;
  }
  conn.exec("CLOSE skype_etl_membership");
  return changed;
}

}  // namespace skype_etl::detail
