#define BOOST_TEST_MODULE repeat_tracker_tests
#include <boost/test/unit_test.hpp>

#include <string>

#include "load/repeat_tracker.hpp"

using skype_etl::detail::RepeatTracker;

BOOST_AUTO_TEST_SUITE(repeat_tracker_tests)

BOOST_AUTO_TEST_CASE(an_id_seen_again_in_its_conversation_is_a_repeat) {
  RepeatTracker t;
  t.start_conversation("19:a");
  BOOST_TEST(!t.is_repeat("1"));
  BOOST_TEST(!t.is_repeat("2"));
  BOOST_TEST(t.is_repeat("1"));
  BOOST_TEST(t.repeats() == 1U);
  // The same conversation, contiguous (its next chunk): its hashes are kept.
  t.start_conversation("19:a");
  BOOST_TEST(t.is_repeat("2"));
  BOOST_TEST(!t.is_repeat("3"));
  BOOST_TEST(t.repeats() == 2U);
}

BOOST_AUTO_TEST_CASE(ids_are_per_conversation) {
  RepeatTracker t;
  t.start_conversation("19:a");
  BOOST_TEST(!t.is_repeat("1"));
  t.start_conversation("19:b");
  BOOST_TEST(!t.is_repeat("1"));
  BOOST_TEST(t.repeats() == 0U);
}

BOOST_AUTO_TEST_CASE(every_message_of_a_conversation_that_comes_back_is_a_repeat) {
  RepeatTracker t;
  t.start_conversation("19:a");
  BOOST_TEST(!t.is_repeat("1"));
  t.start_conversation("19:b");
  BOOST_TEST(!t.is_repeat("1"));
  t.start_conversation("19:a");  // its hashes are gone: any id may repeat one of them
  BOOST_TEST(t.is_repeat("new"));
  BOOST_TEST(t.is_repeat("1"));
  t.finish_conversation();
  BOOST_TEST(t.repeats() == 2U);
}

BOOST_AUTO_TEST_CASE(clear_forgets_the_export) {
  RepeatTracker t;
  t.start_conversation("19:a");
  BOOST_TEST(!t.is_repeat("1"));
  BOOST_TEST(t.is_repeat("1"));
  t.start_conversation("19:b");
  t.clear();
  BOOST_TEST(t.repeats() == 0U);
  t.start_conversation("19:a");
  BOOST_TEST(!t.is_repeat("1"));
}

BOOST_AUTO_TEST_SUITE_END()
