#define BOOST_TEST_MODULE identity_tests
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/identity.hpp"
#include "support/identity_cases.hpp"

using skype_etl::TextArena;
using skype_etl::detail::canonical_person_id;
using skype_etl::detail::is_thread_id;
using skype_etl::detail::parse_person_id;

BOOST_AUTO_TEST_SUITE(identity_tests)

BOOST_AUTO_TEST_CASE(every_form_of_an_id_gives_its_canonical_form) {
  for (const auto& c : skype_etl::test::k_identity_cases) {
    BOOST_TEST_CONTEXT("raw id '" << c.raw << "'") {
      BOOST_TEST(canonical_person_id(c.raw) == c.canonical);
      // Idempotent: a canonical id stays as it is, in place.
      BOOST_TEST(canonical_person_id(c.canonical) == c.canonical);
      BOOST_TEST(parse_person_id(c.canonical).in_place());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_canonical_id_is_a_view_of_the_raw_one_without_copy) {
  TextArena arena;
  const std::string raw = " 8:alice ";
  const std::string_view id = canonical_person_id(raw, arena);
  BOOST_TEST(id == "8:alice");
  BOOST_TEST(id.data() == raw.data() + 1);
  BOOST_TEST(arena.bytes_used() == 0u);
  const std::string url = "https://host/v1/users/ME/contacts/8:bob";
  BOOST_TEST(canonical_person_id(url, arena).data() == url.data() + url.size() - 5);
  BOOST_TEST(arena.bytes_used() == 0u);
  // A bare id gets its prefix in the arena.
  const std::string_view bare = canonical_person_id("live:.cid.x", arena);
  BOOST_TEST(bare == "8:live:.cid.x");
  BOOST_TEST(arena.bytes_used() == bare.size());
}

BOOST_AUTO_TEST_CASE(threads_are_not_persons) {
  BOOST_TEST(is_thread_id("19:abc@thread.skype"));
  BOOST_TEST(is_thread_id("19:abc@thread.v2"));
  BOOST_TEST(is_thread_id("19:abc@cast.skype"));
  BOOST_TEST(is_thread_id("19:Xy0=@p2p.thread.skype"));
  BOOST_TEST(!is_thread_id("8:alice"));
  BOOST_TEST(!is_thread_id("8:19:x"));
  BOOST_TEST(!is_thread_id("28:bot"));
  BOOST_TEST(!is_thread_id(""));
  BOOST_TEST(!is_thread_id("19"));
}

BOOST_AUTO_TEST_SUITE_END()
