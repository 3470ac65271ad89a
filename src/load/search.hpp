// Full-text search over skype.messages (the `skype-etl search` command).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "skype_etl/options.hpp"

namespace skype_etl::detail {

class PgConnection;

struct SearchQuery {
  /// Words to find, in websearch_to_tsquery syntax: words (all must occur), "a phrase",
  /// `or`, -excluded. Matched with the 'simple' configuration (no stemming).
  std::string words;
  /// Ids in any form an export writes ("8:bob", "bob", a contact URL): compared in their
  /// canonical form (core/identity.hpp), as stored.
  std::string account_id;       ///< empty: every account
  std::string conversation_id;  ///< empty: every conversation
  std::string sender_id;        ///< empty: every sender
  std::string since;            ///< empty, or a timestamptz (the command: cli::parse_date)
  std::size_t limit = 50;
};

struct SearchHit {
  std::string account_id;
  std::string conversation_id;
  std::string conversation_name;  ///< display name, else topic, else ""
  std::string message_id;
  std::string sent_at;  ///< "YYYY-MM-DD HH:MM:SS" UTC, or "" when unknown
  std::string sender_id;
  std::string sender_name;
  std::string content_text;
};

/// Newest matches first. Throws UsageError when `words` holds no word, DatabaseError (e.g.
/// schema missing, a `since` PostgreSQL cannot read: the command checks it first).
std::vector<SearchHit> search_messages(PgConnection& conn, const SearchQuery& query);
std::vector<SearchHit> search_messages(const DbConfig& db, const SearchQuery& query);

/// One line for a terminal: "2021-09-02 06:49:55  Family (19:abc@thread.skype)  Alice: text"
/// with newlines in the text shown as spaces.
std::string format_search_hit(const SearchHit& hit);

}  // namespace skype_etl::detail
