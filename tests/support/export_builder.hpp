// Small exports written by the tests themselves: a message/conversation/export JSON builder
// that keeps the text exactly as written, so tests can place every quirk by hand.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace skype_etl::test {

/// A message object's JSON with the given id/content (content is a JSON string literal's
/// inside, already escaped) and extra members appended verbatim; a default member
/// (displayName, originalarrivaltime, messagetype, version, content, from) whose key
/// extra_members gives is left out.
std::string message_json(const std::string& id, const std::string& content_escaped,
                         const std::string& extra_members = "");

/// A conversation object with `messages` (JSON texts) in its MessageList.
std::string conversation_json(const std::string& id, const std::vector<std::string>& messages,
                              const std::string& extra_members = "");

/// A whole messages.json.
std::string export_json(const std::vector<std::string>& conversations,
                        const std::string& user_id = "8:live:.cid.tester");

/// A conversation with `count` generated RichText messages (ids "<prefix>1".."<prefix>N").
std::string numbered_conversation(const std::string& id, int count,
                                  const std::string& prefix = "m");

/// The `*messages*.json` exports in ../shared/samples beside the repository, sorted; nullopt
/// when that folder is absent (it is in CI; tests then say they skipped them).
std::optional<std::vector<std::filesystem::path>> shared_sample_exports();

}  // namespace skype_etl::test
