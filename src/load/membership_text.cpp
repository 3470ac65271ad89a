#include "load/membership_text.hpp"

#include <cstdlib>
#include <map>
#include <set>

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
/// (its participant row seen last; the account's own name for the owner).
struct Names {
  std::map<std::pair<std::string, std::string>, std::string> in_conversation;
  std::map<std::string, std::string> in_account;
};

Names load_names(PgConnection& conn, const std::string& account_id,
                 const std::set<std::string>& ids) {
  Names names;
  if (ids.empty()) return names;
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
  return names;
}

}  // namespace

bool may_hold_membership(const std::string& details_json) noexcept {
  return !details_json.empty() && details_json.find("\"membership\":") != std::string::npos;
}

std::uint64_t describe_membership_rows(PgConnection& conn, const std::string& partition,
                                       const std::string& account_id, const std::string& export_id,
                                       const std::vector<MessageKey>& keys) {
  if (keys.empty()) return 0;
  // A message may come several times in an export (repeats of its id): once here.
  const std::set<MessageKey> distinct(keys.begin(), keys.end());
  nlohmann::json key_list = nlohmann::json::array();
  for (const auto& [conversation, message] : distinct)
    key_list.push_back({{"c", conversation}, {"m", message}});
  const PgResult rows = conn.exec_params(
      "SELECT m.conversation_id, m.message_id, m.content_text, "
      "m.details->'membership' FROM " +
          partition +
          " m JOIN jsonb_to_recordset($3::jsonb) AS k(c text, m text) ON m.conversation_id = k.c "
          "AND m.message_id = k.m WHERE m.account_id = $1 AND m.export_id = $2::bigint AND "
          "jsonb_typeof(m.details->'membership') = 'object'",
      std::vector<std::string>{account_id, export_id, dump(key_list)});

  struct Row {
    std::string conversation_id;
    std::string message_id;
    std::string content_text;
    MembershipInfo event;
  };
  std::vector<Row> events;
  std::set<std::string> ids;
  for (int i = 0; i < rows.rows(); ++i) {
    const std::string_view text = rows.text(i, 3);
    const auto membership = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (!membership.is_object()) continue;
    Row row{std::string(rows.text(i, 0)), std::string(rows.text(i, 1)),
            std::string(rows.text(i, 2)), parse_membership(membership)};
    if (!row.event.initiator.empty()) ids.insert(row.event.initiator);
    ids.insert(row.event.targets.begin(), row.event.targets.end());
    events.push_back(std::move(row));
  }
  const Names names = load_names(conn, account_id, ids);

  nlohmann::json changes = nlohmann::json::array();
  for (const Row& row : events) {
    nlohmann::json used = nlohmann::json::object();
    const NameOf name_of = [&](std::string_view id) -> std::string {
      const std::string key(id);
      auto here = names.in_conversation.find({row.conversation_id, key});
      const std::string* name = here != names.in_conversation.end() ? &here->second : nullptr;
      if (!name) {
        auto anywhere = names.in_account.find(key);
        if (anywhere != names.in_account.end()) name = &anywhere->second;
      }
      if (!name) return {};
      used[key] = *name;
      return *name;
    };
    std::string text = describe_membership(row.event, name_of);
    if (text == row.content_text && used.empty()) continue;
    nlohmann::json change = {{"c", row.conversation_id}, {"m", row.message_id}, {"t", text}};
    if (!used.empty()) change["n"] = std::move(used);  // absent: NULL
    changes.push_back(std::move(change));
  }
  if (changes.empty()) return 0;
  const PgResult updated = conn.exec_params(
      "UPDATE " + partition +
          " m SET content_text = v.t, details = CASE WHEN v.n IS NULL THEN m.details ELSE "
          "jsonb_set(m.details, '{membership,names}', v.n) END FROM jsonb_to_recordset("
          "$3::jsonb) AS v(c text, m text, t text, n jsonb) WHERE m.account_id = $1 AND "
          "m.export_id = $2::bigint AND m.conversation_id = v.c AND m.message_id = v.m",
      std::vector<std::string>{account_id, export_id, dump(changes)});
  return std::strtoull(PQcmdTuples(updated.get()), nullptr, 10);
}

}  // namespace skype_etl::detail
