#include "load/search.hpp"

#include "core/identity.hpp"
#include "load/pg_connection.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail {

std::vector<SearchHit> search_messages(PgConnection& conn, const SearchQuery& query) {
  if (query.words.find_first_not_of(" \t\n") == std::string::npos)
    throw UsageError("search needs a word to find (got " + skype_etl::quoted(query.words) + ")");
  // Stored ids are canonical: so is what the user typed, in whichever form.
  const std::string account = canonical_person_id(query.account_id);
  const std::string sender = canonical_person_id(query.sender_id);
  const std::string limit = std::to_string(query.limit == 0 ? 50 : query.limit);
  std::vector<const char*> params{query.words.c_str(),
                                  account.c_str(),
                                  query.conversation_id.c_str(),
                                  sender.c_str(),
                                  query.since.empty() ? nullptr : query.since.c_str(),
                                  limit.c_str()};
  // The 'simple' configuration here must match the one of the content_tsv column,
  // otherwise the GIN index cannot serve the query.
  PgResult r = conn.exec_params(
      "SELECT m.account_id, m.conversation_id, coalesce(nullif(c.display_name, ''), "
      "nullif(c.topic, ''), ''), m.message_id, coalesce(to_char(m.sent_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD HH24:MI:SS'), ''), coalesce(m.sender_id, ''), coalesce(m.sender_name, ''), "
      "coalesce(m.content_text, '') "
      "FROM skype.messages m LEFT JOIN skype.conversations c ON c.account_id = m.account_id "
      "AND c.conversation_id = m.conversation_id "
      "WHERE m.content_tsv @@ websearch_to_tsquery('simple'::regconfig, $1) "
      "AND ($2 = '' OR m.account_id = $2) AND ($3 = '' OR m.conversation_id = $3) "
      "AND ($4 = '' OR m.sender_id = $4) "
      "AND ($5::timestamptz IS NULL OR m.sent_at >= $5::timestamptz) "
      "ORDER BY m.sent_at DESC NULLS LAST, m.conversation_id, m.message_id LIMIT $6::bigint",
      params);
  std::vector<SearchHit> hits;
  hits.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    SearchHit hit;
    hit.account_id = r.text(i, 0);
    hit.conversation_id = r.text(i, 1);
    hit.conversation_name = r.text(i, 2);
    hit.message_id = r.text(i, 3);
    hit.sent_at = r.text(i, 4);
    hit.sender_id = r.text(i, 5);
    hit.sender_name = r.text(i, 6);
    hit.content_text = r.text(i, 7);
    hits.push_back(std::move(hit));
  }
  return hits;
}

std::vector<SearchHit> search_messages(const DbConfig& db, const SearchQuery& query) {
  PgConnection conn(db.conninfo);
  conn.exec("SET client_encoding = 'UTF8'");
  return search_messages(conn, query);
}

std::string format_search_hit(const SearchHit& hit) {
  std::string line = hit.sent_at.empty() ? std::string("(no time)          ") : hit.sent_at;
  line += "  ";
  if (!hit.conversation_name.empty()) line += hit.conversation_name + " ";
  line += "(" + hit.conversation_id + ")  ";
  line += hit.sender_name.empty() ? hit.sender_id : hit.sender_name;
  line += ": ";
  for (char c : hit.content_text) line += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  return line;
}

}  // namespace skype_etl::detail
