#include "core/membership.hpp"

namespace skype_etl::detail {
namespace {

/// What an event of `kind` is called when it has nothing else to show.
std::string change_noun(const std::string& kind) {
  if (kind == "add_member" || kind == "delete_member" || kind == "member_joined" ||
      kind == "member_left")
    return "Membership change";
  if (kind == "topic_update") return "Topic change";
  if (kind == "picture_update") return "Picture change";
  if (kind == "role_update") return "Role change";
  if (kind == "history_disclosed_update") return "History setting change";
  if (kind == "joining_enabled_update") return "Joining setting change";
  std::string noun = kind.empty() ? std::string("Conversation change") : kind;
  for (char& c : noun)
    if (c == '_') c = ' ';
  if (noun[0] >= 'a' && noun[0] <= 'z') noun[0] = static_cast<char>(noun[0] - 32);
  return noun;
}

std::string no_details(const std::string& kind) {
  return change_noun(kind) + " with no details in the export";
}

}  // namespace

std::string describe_membership(const MembershipInfo& m, const NameOf& name_of) {
  auto shown = [&name_of](const std::string& id) {
    if (name_of) {
      std::string name = name_of(id);
      if (!name.empty()) return name;
    }
    return id;
  };
  const std::string who = m.initiator.empty() ? std::string() : shown(m.initiator);
  std::string targets;
  for (const std::string& t : m.targets) {
    if (t.empty()) continue;
    if (!targets.empty()) targets += ", ";
    targets += shown(t);
  }
  const bool self = m.targets.size() == 1 && m.targets[0] == m.initiator;
  const bool has_who = !who.empty();
  const bool has_targets = !targets.empty();

  if (m.kind == "add_member" || m.kind == "delete_member") {
    const bool add = m.kind == "add_member";
    if (has_who && self) return who + (add ? " joined" : " left");
    if (has_who && has_targets) return who + (add ? " added " : " removed ") + targets;
    if (has_targets)
      return std::string(add ? "Added to the conversation: " : "Removed from the conversation: ") +
             targets;
    if (has_who) return who + (add ? " added" : " removed") + " members not named in the export";
    return no_details(m.kind);
  }
  if (m.kind == "member_joined" || m.kind == "member_left") {
    // Teams-era events (JSON bodies): the members who joined or left, else the initiator.
    const std::string& who_moved = has_targets ? targets : who;
    if (who_moved.empty()) return no_details(m.kind);
    return who_moved + (m.kind == "member_joined" ? " joined" : " left");
  }
  if (m.kind == "topic_update") {
    if (has_who)
      return m.value.empty() ? who + " changed the topic"
                             : who + " changed the topic to: " + m.value;
    if (!m.value.empty()) return "The topic was changed to: " + m.value;
    return no_details(m.kind);
  }
  if (m.kind == "picture_update")
    return has_who ? who + " changed the conversation picture"
                   : std::string("The conversation picture was changed");
  if (m.kind == "role_update") {
    if (has_targets) {
      if (m.role.empty())
        return has_who ? who + " changed the role of " + targets
                       : "The role of " + targets + " was changed";
      return has_who ? who + " made " + targets + " " + m.role : targets + " became " + m.role;
    }
    return has_who ? who + " changed a role" : no_details(m.kind);
  }
  if (m.kind == "history_disclosed_update" || m.kind == "joining_enabled_update") {
    const std::string setting =
        m.kind == "history_disclosed_update" ? "history disclosed" : "joining enabled";
    if (!m.value.empty())
      return has_who ? who + " set " + setting + " to " + m.value
                     : "The setting " + setting + " was set to " + m.value;
    return has_who ? who + " changed the setting " + setting : no_details(m.kind);
  }
  // A kind this code does not know: what there is, in order.
  std::string text = has_who ? who + ": " + change_noun(m.kind) : change_noun(m.kind);
  if (has_targets) text += " " + targets;
  if (!m.value.empty()) text += " " + m.value;
  return has_who || has_targets || !m.value.empty() ? text : no_details(m.kind);
}

}  // namespace skype_etl::detail
