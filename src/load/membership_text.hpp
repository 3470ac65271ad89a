// The text of membership messages ("Alice added Bob"), written again once an export is
// merged, with the display names its participants then have.
//
// The transform names people by id: it runs on batches in parallel and out of order, so a
// name it knew would depend on where the batches happened to end. After the merge, in the
// export's transaction, the names every batch brought are in skype.participants.
#pragma once

#include <cstdint>
#include <string>

namespace skype_etl::detail {

class PgConnection;

/// Whether a message's details JSON (as the transform writes it) may hold a membership event.
/// False positives cost one lookup; a message with details.membership is never missed.
bool may_hold_membership(const std::string& details_json) noexcept;

/// Inside the export's transaction, once its messages and participants are merged: for the
/// messages in temporary table stage_membership (conversation_id, message_id; repeats
/// allowed) whose stored row in `partition` (the account's) is export `export_id`'s and has
/// an object details->'membership', sets content_text to describe_membership() of
/// it, naming each id by the display name its participant has in the message's
/// conversation, else its latest one in the account, else (the owner) the account's; ids
/// without a name stay ids. The names used go into details.membership.names ({id: name}).
/// Returns how many rows changed.
std::uint64_t describe_membership_rows(PgConnection& conn, const std::string& partition,
                                       const std::string& account_id, const std::string& export_id);

}  // namespace skype_etl::detail
