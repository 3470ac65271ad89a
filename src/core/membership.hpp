// Membership events of group conversations (members added or removed, topic, picture,
// role and setting changes) and the sentence each shows as its message's text.
//
// The transform describes an event with ids (it sees one batch, not the export's names);
// the loader describes it again with the display names the participants have once the
// export is merged (Loader: describe_membership_rows). Both call describe_membership, so
// the sentences are the same apart from the names.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace skype_etl::detail {

/// One event, as in a message's details.membership. Ids are canonical (core/identity.hpp).
struct MembershipInfo {
  /// add_member, delete_member, topic_update, picture_update, role_update,
  /// history_disclosed_update, joining_enabled_update; member_joined, member_left (JSON
  /// bodies of Teams-era exports); others are described with what they hold.
  std::string kind;
  std::string initiator;             ///< "" when the export does not say
  std::vector<std::string> targets;  ///< members added, removed, or whose role changed
  std::string value;                 ///< topic, picture URL (without "URL@"), or flag value
  std::string role;
  std::optional<std::int64_t> time_us;
};

/// The display name to show for id `id`, or "" to show the id.
using NameOf = std::function<std::string(std::string_view id)>;

/// The text of event `event`, naming people by `name_of` where it gives a name, else by id:
/// "Alice added Bob, Carol", "Bob left", "Alice changed the topic to: Trip". An event that
/// lacks what its sentence needs says so plainly ("Membership change with no details in the
/// export", "Added to the conversation: Bob") rather than inventing someone.
std::string describe_membership(const MembershipInfo& event, const NameOf& name_of = {});

}  // namespace skype_etl::detail
