// JSON bodies: message content that is a JSON object or array (Notice, PopCard, Poll, and
// the thread activity of Teams-era exports such as ThreadActivity/MemberJoined). What they
// say is read into the structures markup gives for the same event, and into a line to read.
//
// Thread-safety: every function here is reentrant.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "transform/markup.hpp"

namespace skype_etl::detail {

/// Fills `info` (in the shape <addmember> etc. give) from a JSON body that reports members
/// joining, leaving, added or removed, as the message type's last part says (MemberJoined,
/// MemberLeft, AddMember, DeleteMember, ...): {"initiator", "members": [{"id",
/// "friendlyname"}] (or "targets"), "eventtime"}. False, and `info` untouched, otherwise.
bool membership_from_json(std::string_view message_type, const nlohmann::json& body,
                          MembershipInfo& info);

/// A poll's question and options as a JSON body (or properties.poll) gives them.
PollInfo poll_info_from_json(const nlohmann::json& poll);

/// A line to read from a JSON body with no known meaning: the strings of its text keys
/// (title, text, body, ...: "Hello - x"), else its top-level values ("state: done").
/// Markup in the strings is removed; the JSON must hold no NUL.
std::string readable_json_text(const nlohmann::json& body);

}  // namespace skype_etl::detail
