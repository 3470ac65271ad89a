#define BOOST_TEST_MODULE file_name_tests
#include <boost/test/unit_test.hpp>

#include "core/file_name.hpp"

namespace sd = skype_etl::detail;

BOOST_AUTO_TEST_SUITE(file_name_tests)

BOOST_AUTO_TEST_CASE(valid_utf8_names_come_back_unchanged) {
  BOOST_TEST(sd::escape_file_name("8_live_me_export.tar") == "8_live_me_export.tar");
  BOOST_TEST(sd::escape_file_name("Ülo \u00e4\u20ac\U0001F600.tar") ==
             "Ülo \u00e4\u20ac\U0001F600.tar");
  BOOST_TEST(sd::escape_file_name("") == "");
}

BOOST_AUTO_TEST_CASE(bytes_that_are_not_utf8_are_written_as_hex_and_backslashes_doubled) {
  BOOST_TEST(sd::escape_file_name("n\xFF"
                                  "ame.tar") == "n\\xFFame.tar");
  BOOST_TEST(sd::escape_file_name("a\\b") == "a\\\\b");
  // What PostgreSQL refuses: overlong forms, surrogates, above U+10FFFF, a lone lead byte,
  // a truncated sequence at the end.
  BOOST_TEST(sd::escape_file_name("\xC0\xAF") == "\\xC0\\xAF");
  BOOST_TEST(sd::escape_file_name("\xE0\x80\xAF") == "\\xE0\\x80\\xAF");
  BOOST_TEST(sd::escape_file_name("\xED\xA0\x80") == "\\xED\\xA0\\x80");
  BOOST_TEST(sd::escape_file_name("\xF4\x90\x80\x80") == "\\xF4\\x90\\x80\\x80");
  BOOST_TEST(sd::escape_file_name("x\xC3") == "x\\xC3");
  BOOST_TEST(sd::escape_file_name("\xC3(") == "\\xC3(");
  // The escaped text tells the two apart: a name spelled with a backslash and one with the byte.
  BOOST_TEST(sd::escape_file_name("\\xFF") != sd::escape_file_name("\xFF"));
}

BOOST_AUTO_TEST_SUITE_END()
