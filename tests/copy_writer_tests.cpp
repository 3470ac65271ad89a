#define BOOST_TEST_MODULE copy_writer_tests
#include <boost/test/unit_test.hpp>

#include <ctime>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "load/copy_writer.hpp"
#include "skype_etl/errors.hpp"

using skype_etl::detail::binary_copy_header;
using skype_etl::detail::binary_copy_trailer;
using skype_etl::detail::binary_row_field;
using skype_etl::detail::CopyBuffer;
using skype_etl::detail::CopyFormat;
using skype_etl::detail::format_timestamp_us;
using skype_etl::detail::replace_json_nul_escapes;

namespace {

// The obvious byte-at-a-time escaper, to check the vectorised one against.
std::string reference_escape(const std::string& in) {
  std::string out;
  for (char c : in) {
    switch (c) {
      case '\0':
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string gmtime_reference(std::int64_t us) {
  std::int64_t secs = us / 1000000, micro = us % 1000000;
  if (micro < 0) {
    micro += 1000000;
    --secs;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(micro));
  return buf;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(copy_writer_tests)

BOOST_AUTO_TEST_CASE(escapes_special_characters_and_separates_fields) {
  CopyBuffer b;
  b.text("a\tb\nc\rd\\e");
  b.text("plain \"quoted\" 'single'");
  b.text("\\.");
  b.text("\\N");
  b.null();
  b.end_row();
  BOOST_TEST(std::string(b.view()) ==
             "a\\tb\\nc\\rd\\\\e\tplain \"quoted\" 'single'\t\\\\.\t\\\\N\t\\N\n");
  BOOST_TEST(b.rows() == 1u);
}

BOOST_AUTO_TEST_CASE(drops_and_counts_nul_bytes) {
  CopyBuffer b;
  b.text(std::string("a\0b\0", 4));
  b.end_row();
  BOOST_TEST(std::string(b.view()) == "ab\n");
  BOOST_TEST(b.nul_bytes_removed() == 2u);
}

BOOST_AUTO_TEST_CASE(vectorised_escaping_matches_reference_on_random_text) {
  std::mt19937 rng(42);
  const std::string alphabet = std::string("ab\t\n\r\\ \xc3\xa9\xf0\x9f\x98\x80", 14) + '\0';
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    const int length = static_cast<int>(rng() % 200);
    for (int i = 0; i < length; ++i) {
      // Mostly plain letters, so runs longer than 32 bytes occur.
      text += (rng() % 8 == 0) ? alphabet[rng() % alphabet.size()]
                               : static_cast<char>('a' + rng() % 26);
    }
    CopyBuffer b;
    b.text(text);
    BOOST_TEST_REQUIRE(std::string(b.view()) == reference_escape(text));
  }
}

BOOST_AUTO_TEST_CASE(empty_text_is_empty_string_and_text_or_null_is_null) {
  CopyBuffer b;
  b.text("");
  b.text_or_null("");
  b.text_or_null("x");
  b.end_row();
  BOOST_TEST(std::string(b.view()) == "\t\\N\tx\n");
}

BOOST_AUTO_TEST_CASE(integers_booleans_floats) {
  CopyBuffer b;
  b.integer(std::numeric_limits<std::int64_t>::min());
  b.integer(std::numeric_limits<std::int64_t>::max());
  b.integer(std::optional<std::int64_t>{});
  b.boolean(true);
  b.boolean(false);
  b.floating(84.82);
  b.floating(std::numeric_limits<double>::quiet_NaN());
  b.end_row();
  BOOST_TEST(std::string(b.view()) ==
             "-9223372036854775808\t9223372036854775807\t\\N\tt\tf\t84.82\t\\N\n");
}

BOOST_AUTO_TEST_CASE(timestamps_known_values) {
  BOOST_TEST(format_timestamp_us(0) == "1970-01-01 00:00:00.000000+00");
  BOOST_TEST(format_timestamp_us(-1) == "1969-12-31 23:59:59.999999+00");
  // 2000-02-29 (a leap day in a year divisible by 400).
  BOOST_TEST(format_timestamp_us(951782400000000LL) == "2000-02-29 00:00:00.000000+00");
  // 2024-02-29T12:34:56.789012Z
  BOOST_TEST(format_timestamp_us(1709210096789012LL) == "2024-02-29 12:34:56.789012+00");
  // 1900 is not a leap year: 1900-03-01 follows 1900-02-28.
  BOOST_TEST(format_timestamp_us(-2203891200000000LL) == "1900-03-01 00:00:00.000000+00");
  BOOST_TEST(format_timestamp_us(1630565395104000LL) == "2021-09-02 06:49:55.104000+00");
  // Years PostgreSQL would need BC or 5 digits for: no text.
  BOOST_TEST(format_timestamp_us(-62135596800000000LL) == "0001-01-01 00:00:00.000000+00");
  BOOST_TEST(format_timestamp_us(-62135596800000001LL) == "");
  BOOST_TEST(format_timestamp_us(253402300799999999LL) == "9999-12-31 23:59:59.999999+00");
  BOOST_TEST(format_timestamp_us(253402300800000000LL) == "");
}

BOOST_AUTO_TEST_CASE(timestamps_match_gmtime_on_random_values) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> range(-62135596800000000LL, 253402300799999999LL);
  for (int i = 0; i < 100000; ++i) {
    const std::int64_t us = range(rng);
    BOOST_TEST_REQUIRE(format_timestamp_us(us) == gmtime_reference(us));
  }
}

BOOST_AUTO_TEST_CASE(timestamp_field_and_out_of_range_null) {
  CopyBuffer b;
  b.timestamp_us(std::optional<std::int64_t>{0});
  b.timestamp_us(std::optional<std::int64_t>{});
  b.timestamp_us(std::int64_t{-62135596800000001LL});
  b.end_row();
  BOOST_TEST(std::string(b.view()) == "1970-01-01 00:00:00.000000+00\t\\N\t\\N\n");
}

BOOST_AUTO_TEST_CASE(json_empty_or_null_is_sql_null_and_escapes_are_doubled) {
  CopyBuffer b;
  b.json("");
  b.json("null");
  b.json(R"({"a":"x\ny"})");
  b.end_row();
  BOOST_TEST(std::string(b.view()) == "\\N\t\\N\t{\"a\":\"x\\\\ny\"}\n");
  BOOST_TEST(b.json_nul_escapes_replaced() == 0u);
}

BOOST_AUTO_TEST_CASE(json_nul_escape_is_replaced_but_escaped_backslash_is_not) {
  std::string out;
  BOOST_TEST(replace_json_nul_escapes(R"({"a":"x\u0000y\u0000"})", out) == 2u);
  BOOST_TEST(out == R"({"a":"x\ufffdy\ufffd"})");
  // "\\u0000" is a backslash followed by the letters u0000: left alone.
  BOOST_TEST(replace_json_nul_escapes(R"({"a":"\\u0000"})", out) == 0u);
  BOOST_TEST(replace_json_nul_escapes(R"({"a":"\\\u0000"})", out) == 1u);
  BOOST_TEST(out == R"({"a":"\\\ufffd"})");

  CopyBuffer b;
  b.json(R"({"a":"\u0000"})");
  b.end_row();
  BOOST_TEST(std::string(b.view()) == "{\"a\":\"\\\\ufffd\"}\n");
  BOOST_TEST(b.json_nul_escapes_replaced() == 1u);
}

// Binary format: every field is a big-endian 32-bit length and the bytes; a row starts with
// its big-endian 16-bit field count.
std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string be64(std::uint64_t v) {
  return be32(static_cast<std::uint32_t>(v >> 32)) + be32(static_cast<std::uint32_t>(v));
}

BOOST_AUTO_TEST_CASE(binary_rows_are_counted_fields_of_big_endian_lengths) {
  CopyBuffer b(CopyFormat::binary);
  BOOST_TEST(b.binary());
  b.text("a\tb\\");  // no escaping in binary
  b.text_or_null("");
  b.integer(-2);
  b.boolean(true);
  b.end_row();
  b.text("");
  b.end_row();
  const std::string expected = std::string("\0\4", 2) + be32(4) + "a\tb\\" + be32(0xffffffffU) +
                               be32(8) + be64(static_cast<std::uint64_t>(-2)) + be32(1) +
                               std::string("\1", 1) + std::string("\0\1", 2) + be32(0);
  BOOST_TEST(std::string(b.view()) == expected);
  BOOST_TEST(b.rows() == 2u);
}

BOOST_AUTO_TEST_CASE(binary_stream_header_and_trailer) {
  BOOST_TEST(std::string(binary_copy_header()) ==
             std::string("PGCOPY\n\377\r\n\0", 11) + std::string(8, '\0'));
  BOOST_TEST(std::string(binary_copy_trailer()) == "\377\377");
}

BOOST_AUTO_TEST_CASE(binary_text_drops_and_counts_nul_bytes) {
  CopyBuffer b(CopyFormat::binary);
  b.text(std::string("\0x\0\0y\0", 6));
  b.end_row();
  BOOST_TEST(std::string(b.view()) == std::string("\0\1", 2) + be32(2) + "xy");
  BOOST_TEST(b.nul_bytes_removed() == 4u);
}

BOOST_AUTO_TEST_CASE(binary_timestamps_count_from_2000_and_keep_the_text_range) {
  CopyBuffer b(CopyFormat::binary);
  b.timestamp_us(std::int64_t{946684800000000LL});  // 2000-01-01 00:00:00 UTC
  b.timestamp_us(std::int64_t{0});                  // 1970-01-01
  b.timestamp_us(std::int64_t{-62135596800000000LL});
  b.timestamp_us(std::int64_t{-62135596800000001LL});  // before year 1: NULL, as in text
  b.timestamp_us(std::int64_t{253402300799999999LL});
  b.timestamp_us(std::int64_t{253402300800000000LL});  // year 10000: NULL
  b.timestamp_us(std::optional<std::int64_t>{});
  b.end_row();
  const std::string null = be32(0xffffffffU);
  const std::string expected =
      std::string("\0\7", 2) + be32(8) + be64(0) + be32(8) +
      be64(static_cast<std::uint64_t>(-946684800000000LL)) + be32(8) +
      be64(static_cast<std::uint64_t>(-62135596800000000LL - 946684800000000LL)) + null + be32(8) +
      be64(static_cast<std::uint64_t>(253402300799999999LL - 946684800000000LL)) + null + null;
  BOOST_TEST(std::string(b.view()) == expected);
}

BOOST_AUTO_TEST_CASE(binary_json_has_version_1_and_replaced_nul_escapes) {
  CopyBuffer b(CopyFormat::binary);
  b.json("");
  b.json("null");
  b.json(R"({"a":"\u0000"})");
  b.end_row();
  const std::string json = R"({"a":"\ufffd"})";
  BOOST_TEST(std::string(b.view()) ==
             std::string("\0\3", 2) + be32(0xffffffffU) + be32(0xffffffffU) +
                 be32(static_cast<std::uint32_t>(json.size() + 1)) + std::string("\1", 1) + json);
  BOOST_TEST(b.json_nul_escapes_replaced() == 1u);
}

BOOST_AUTO_TEST_CASE(binary_refuses_what_it_cannot_write) {
  CopyBuffer b(CopyFormat::binary);
  BOOST_CHECK_THROW(b.floating(1.5), std::logic_error);
  BOOST_CHECK_THROW(b.end_row(), std::logic_error);  // a row without fields
}

BOOST_AUTO_TEST_CASE(clear_keeps_the_counters_and_reset_zeroes_them) {
  CopyBuffer b(CopyFormat::binary);
  b.text(std::string("a\0b", 3));
  b.json(R"({"a":"\u0000"})");
  b.end_row();
  b.clear();
  BOOST_TEST(b.empty());
  BOOST_TEST(b.rows() == 1u);
  BOOST_TEST(b.nul_bytes_removed() == 1u);
  BOOST_TEST(b.json_nul_escapes_replaced() == 1u);
  b.reset();
  BOOST_TEST(b.empty());
  BOOST_TEST(b.rows() == 0u);
  BOOST_TEST(b.nul_bytes_removed() == 0u);
  BOOST_TEST(b.json_nul_escapes_replaced() == 0u);
  BOOST_TEST(b.binary());
}

BOOST_AUTO_TEST_CASE(large_buffers_grow) {
  CopyBuffer b;
  const std::string text(10000, 'x');
  for (int i = 0; i < 1000; ++i) {
    b.text(text);
    b.end_row();
  }
  BOOST_TEST(b.size() == 1000u * 10001u);
  BOOST_TEST(b.rows() == 1000u);
  b.clear();
  BOOST_TEST(b.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(binary_row_field_reads_the_fields_of_one_binary_row) {
  CopyBuffer b(CopyFormat::binary);
  b.integer(std::int64_t{7});
  b.null();
  b.text("1600000000000");
  b.text("");
  b.end_row();
  const std::string row(b.view());
  BOOST_TEST(binary_row_field(row, 2) == "1600000000000");
  BOOST_TEST(binary_row_field(row, 1).empty());  // NULL
  BOOST_TEST(binary_row_field(row, 3).empty());  // ""
  BOOST_TEST(binary_row_field(row, 0).size() == 8U);
  // A field the row does not have, or a row cut short: an error, never a guess.
  BOOST_CHECK_THROW(binary_row_field(row, 4), skype_etl::DatabaseError);
  BOOST_CHECK_THROW(binary_row_field(row.substr(0, row.size() - 10), 2), skype_etl::DatabaseError);
  BOOST_CHECK_THROW(binary_row_field(row.substr(0, 1), 0), skype_etl::DatabaseError);
}
