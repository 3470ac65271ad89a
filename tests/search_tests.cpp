#define BOOST_TEST_MODULE search_tests
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <vector>

#include "load/loader.hpp"
#include "load/pg_connection.hpp"
#include "load/search.hpp"
#include "skype_etl/errors.hpp"
#include "support/test_database.hpp"

using skype_etl::DbConfig;
using skype_etl::detail::Loader;
using skype_etl::detail::search_messages;
using skype_etl::detail::SearchHit;
using skype_etl::detail::SearchQuery;
using skype_etl::test::TestDatabase;

namespace {

struct Line {
  const char* conversation;
  const char* sender;
  const char* name;
  std::int64_t sent_us;
  const char* text;
};

constexpr std::int64_t day_us = 86'400'000'000LL;
constexpr std::int64_t jan_2021 = 1609459200000000LL;  // 2021-01-01

// One conversation per chunk; each conversation's lines are contiguous in `lines`.
void load(TestDatabase& db, const std::string& user, const std::vector<Line>& lines) {
  auto batch = std::make_shared<skype_etl::Batch>();
  std::vector<std::shared_ptr<skype_etl::ConversationMeta>> metas;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const Line& l = lines[i];
    if (metas.empty() || metas.back()->id != l.conversation) {
      auto meta = std::make_shared<skype_etl::ConversationMeta>();
      meta->id = l.conversation;
      meta->display_name = std::string("Chat ") + l.conversation;
      metas.push_back(meta);
      skype_etl::ConversationChunk chunk;
      chunk.conversation = meta;
      chunk.first_message = i;
      chunk.starts_conversation = chunk.ends_conversation = true;
      batch->chunks.push_back(chunk);
      skype_etl::ConversationRow row;
      row.conversation_id = meta->id;
      row.conversation_type = "group";
      row.display_name = *meta->display_name;
      batch->conversations.push_back(row);
    }
    ++batch->chunks.back().message_count;
    skype_etl::Message m;
    m.message_id = batch->arena.store(std::to_string(i + 1));
    m.version = 1;
    m.sent_at_us = l.sent_us;
    m.sender_id = l.sender;
    m.sender_name = l.name;
    m.message_type = "RichText";
    m.content_raw = m.content_text = l.text;
    batch->messages.push_back(m);
    batch->raw.emplace_back();
  }
  skype_etl::ExportInfo info;
  info.file_name = "search.json";
  info.digest = "sha256:search-" + user;
  info.user_id = user;
  info.export_date = "2025-04-30T10:13";
  Loader loader(DbConfig{db.conninfo()});
  loader.ensure_schema();
  loader.begin_export(info, "");
  loader.load_batch(*batch);
  loader.finish_export({});
}

std::vector<std::string> ids(const std::vector<SearchHit>& hits) {
  std::vector<std::string> out;
  for (const SearchHit& h : hits) out.push_back(h.conversation_id + "/" + h.message_id);
  return out;
}

struct Fixture {
  Fixture() {
    load(db, "8:live:owner",
         {
             // Sender ids as the transform gives them: canonical.
             {"19:family@thread.skype", "8:alice", "Alice", jan_2021, "Pizza tonight?"},
             {"19:family@thread.skype", "8:bob", "Bob", jan_2021 + day_us, "no PIZZA, sushi"},
             {"19:family@thread.skype", "8:alice", "Alice", jan_2021 + 2 * day_us,
              "Привет, как дела"},
             {"8:carol", "8:carol", "Carol", jan_2021 + 3 * day_us, "pizza with carol\nlater"},
             {"8:carol", "8:live:owner", "Owner", jan_2021 + 4 * day_us, "see you at the cinema"},
         });
    load(db, "live:someone", {{"8:carol", "8:carol", "Carol", jan_2021, "pizza elsewhere"}});
  }
  TestDatabase db;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(search_tests, Fixture)

BOOST_AUTO_TEST_CASE(finds_a_word_case_insensitively_newest_first) {
  SearchQuery q;
  q.words = "pizza";
  auto hits = search_messages(DbConfig{db.conninfo()}, q);
  BOOST_TEST(ids(hits) == (std::vector<std::string>{"8:carol/4", "19:family@thread.skype/2",
                                                    "19:family@thread.skype/1", "8:carol/1"}),
             boost::test_tools::per_element());
  BOOST_TEST(hits[0].sender_name == "Carol");
  BOOST_TEST(hits[0].sent_at == "2021-01-04 00:00:00");
  BOOST_TEST(hits[1].conversation_name == "Chat 19:family@thread.skype");
  const std::string line = skype_etl::detail::format_search_hit(hits[0]);
  BOOST_TEST(line == "2021-01-04 00:00:00  Chat 8:carol (8:carol)  Carol: pizza with carol later");
}

BOOST_AUTO_TEST_CASE(filters_by_account_conversation_sender_and_date) {
  DbConfig config{db.conninfo()};
  SearchQuery q;
  q.words = "pizza";
  // Ids in any form an export writes find the same rows.
  for (const char* account : {"live:owner", "8:live:owner", " live:owner "}) {
    q.account_id = account;
    BOOST_TEST(search_messages(config, q).size() == 3u, "account " << account);
  }
  q.account_id = "live:someone";
  BOOST_TEST(search_messages(config, q).size() == 1u);
  q.account_id = "8:live:owner";
  q.conversation_id = "19:family@thread.skype";
  BOOST_TEST(search_messages(config, q).size() == 2u);
  for (const char* sender : {"8:bob", "bob", "https://host/v1/users/ME/contacts/8:bob"}) {
    q.sender_id = sender;
    BOOST_TEST(
        ids(search_messages(config, q)) == std::vector<std::string>{"19:family@thread.skype/2"},
        boost::test_tools::per_element());
  }
  q.conversation_id.clear();
  q.sender_id = "live:owner";
  BOOST_TEST(search_messages(config, q).empty());  // no pizza from the owner
  q.words = "cinema";
  BOOST_TEST(ids(search_messages(config, q)) == std::vector<std::string>{"8:carol/5"},
             boost::test_tools::per_element());
  q = SearchQuery{};
  q.words = "pizza";
  q.since = "2021-01-02";
  BOOST_TEST(ids(search_messages(config, q)) ==
                 (std::vector<std::string>{"8:carol/4", "19:family@thread.skype/2"}),
             boost::test_tools::per_element());
  q.limit = 1;
  BOOST_TEST(search_messages(config, q).size() == 1u);
}

BOOST_AUTO_TEST_CASE(every_script_is_searchable_and_words_must_all_occur) {
  DbConfig config{db.conninfo()};
  SearchQuery q;
  q.words = "привет";
  BOOST_TEST(
      ids(search_messages(config, q)) == std::vector<std::string>{"19:family@thread.skype/3"},
      boost::test_tools::per_element());
  q.words = "pizza sushi";
  BOOST_TEST(search_messages(config, q).size() == 1u);
  q.words = "\"the cinema\"";
  BOOST_TEST(search_messages(config, q).size() == 1u);
  q.words = "lasagne";
  BOOST_TEST(search_messages(config, q).empty());
}

BOOST_AUTO_TEST_CASE(a_bad_date_is_a_database_error) {
  SearchQuery q;
  q.words = "pizza";
  q.since = "not a date";
  BOOST_CHECK_THROW(search_messages(DbConfig{db.conninfo()}, q), skype_etl::DatabaseError);
}

BOOST_AUTO_TEST_SUITE_END()
