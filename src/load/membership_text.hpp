// The text of membership messages ("Alice added Bob"), written again at the end of an
// export's load, with the display names its participants have once it is merged.
//
// The transform names people by id: it runs on batches in parallel and out of order, so a
// name it knew would depend on where the batches happened to end. When the export's load
// finishes, the names every batch brought are staged.
#pragma once

#include <cstdint>
#include <string>

namespace skype_etl::detail {

class PgConnection;

/// Whether a message's details JSON (as the transform writes it) may hold a membership event.
/// False positives cost one lookup; a message with details.membership is never missed.
bool may_hold_membership(const std::string& details_json) noexcept;

/// Inside the export's transaction, before its messages are merged: for every row of the
/// temporary table stage_membership_rows (this export's messages whose details may hold a
/// membership event, held back from the others) whose details->'membership' is an object,
/// writes to temporary table stage_membership_text (seq, content_text, names) the text
/// describe_membership() makes of it, when that differs from its content_text or names
/// someone. Each id is named by the display name its participant will have once the export
/// is merged (this export's, staged in stage_participants, over the stored one as the merge
/// decides): in the message's conversation first, else its latest in the account, else
/// (the owner, `account_id`) `owner_name` or the account's stored name; an id without a
/// name stays an id. The names used are `names` ({id: name}), for
/// details.membership.names. Returns how many rows it wrote.
std::uint64_t describe_membership_rows(PgConnection& conn, const std::string& account_id,
                                       const std::string& owner_name);

}  // namespace skype_etl::detail
