// One identity per person. Exports name the same person in several forms ("8:alice",
// "alice", "https://.../contacts/8:alice"; the owner's userId with or without "8:"): every
// id that names a person is stored in one canonical form, so that rows about one person
// join and group together.
//
// Thread-safety: every function here is pure and reentrant.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/model.hpp"

namespace skype_etl::detail {

/// A raw id's canonical form, as `prefix` + `tail` without copying: `tail` is a substring of
/// the raw id, `prefix` is "" or "8:" (a static string).
struct PersonId {
  std::string_view prefix;
  std::string_view tail;

  /// The raw id holds the canonical id as a substring (nothing to add).
  bool in_place() const noexcept { return prefix.empty(); }
  std::size_t size() const noexcept { return prefix.size() + tail.size(); }
  std::string str() const;
};

/// The canonical id of a person or conversation member: Skype's MRI form, with its type
/// prefix ("8:live:.cid.x", "8:alice", "28:concierge", "4:+15551234", "guest:x"):
/// - surrounding ASCII whitespace is dropped;
/// - a URL (http:// or https://, any case; e.g. "https://host/v1/users/ME/contacts/8:bob")
///   gives what follows its last '/';
/// - an id with a type prefix (ASCII digits then ':', or "guest:") is kept as it is, thread
///   ids ("19:...@thread.skype") too;
/// - "" and "*" (everyone, in mentions) are kept;
/// - any other id is a Skype user's without its prefix ("alice", "live:.cid.x"): "8:" is
///   put before it.
/// Idempotent. The SQL function skype.canonical_id() (schema migration 8) does the same;
/// schema_tests checks that they agree.
PersonId parse_person_id(std::string_view raw) noexcept;

/// parse_person_id(raw) as a string.
std::string canonical_person_id(std::string_view raw);

/// parse_person_id(raw) as a view: into `raw` when it holds the canonical id (the usual
/// case: no allocation), else into `arena`.
std::string_view canonical_person_id(std::string_view raw, TextArena& arena);

/// Whether canonical id `id` names a thread (a group conversation, "19:...") rather than a
/// person: system messages of a group carry the thread's id as their sender.
bool is_thread_id(std::string_view id) noexcept;

}  // namespace skype_etl::detail
