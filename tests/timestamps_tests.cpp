#define BOOST_TEST_MODULE timestamps_tests
#include <boost/test/unit_test.hpp>

#include "transform/timestamps.hpp"

using namespace skype_etl::detail;

namespace {
// 2021-09-02T06:49:55Z
constexpr std::int64_t kBase = std::int64_t{1630565395} * 1000000;
}  // namespace

BOOST_AUTO_TEST_SUITE(timestamps_tests)

BOOST_AUTO_TEST_CASE(iso_fraction_digits) {
  BOOST_TEST(parse_iso8601_us("2021-09-02T06:49:55Z").value() == kBase);
  BOOST_TEST(parse_iso8601_us("2021-09-02T06:49:55.92Z").value() == kBase + 920000);
  BOOST_TEST(parse_iso8601_us("2021-09-02T06:49:55.104Z").value() == kBase + 104000);
  BOOST_TEST(parse_iso8601_us("2021-09-02T06:49:55.1Z").value() == kBase + 100000);
  BOOST_TEST(parse_iso8601_us("2021-09-02T06:49:55.123456Z").value() == kBase + 123456);
  BOOST_TEST(parse_iso8601_us("2021-09-02T06:49:55.1234567Z").value() == kBase + 123456);
}

BOOST_AUTO_TEST_CASE(iso_zones) {
  BOOST_TEST(parse_iso8601_us("2021-09-02T06:49:55").value() == kBase);
  BOOST_TEST(parse_iso8601_us("2021-09-02T06:49:55+00:00").value() == kBase);
  BOOST_TEST(parse_iso8601_us("2021-09-02T08:49:55+02:00").value() == kBase);
  BOOST_TEST(parse_iso8601_us("2021-09-02T05:49:55-0100").value() == kBase);
  BOOST_TEST(parse_iso8601_us("2021-09-02 06:49:55Z").value() == kBase);
  // exportDate has minute precision.
  BOOST_TEST(parse_iso8601_us("2021-09-02T06:49").value() == kBase - 55 * 1000000);
}

BOOST_AUTO_TEST_CASE(iso_rejects_garbage) {
  for (const char* bad : {"", "2021", "yesterday", "2021-13-02T06:49:55Z", "2021-02-30T06:49:55Z",
                          "2021-09-02T24:00:00Z", "2021-09-02T06:49:55.Z", "2021-09-02T06:49:55Zx",
                          "2021-09-02T06:49:55+5", "1630565395224"})
    BOOST_TEST(!parse_iso8601_us(bad).has_value(), bad);
  BOOST_TEST(parse_iso8601_us("2020-02-29T00:00:00Z").has_value());
  BOOST_TEST(parse_iso8601_us("1969-12-31T23:59:59Z").value() == -1000000);
}

BOOST_AUTO_TEST_CASE(epoch_texts) {
  BOOST_TEST(parse_epoch_text_us("1630565399000").value() == 1630565399000LL * 1000);
  BOOST_TEST(parse_epoch_text_us("1630565399000.0").value() == 1630565399000LL * 1000);
  BOOST_TEST(parse_epoch_text_us("\"1630565399123\"").value() == 1630565399123LL * 1000);
  BOOST_TEST(parse_epoch_text_us(" 1630565399000 ").value() == 1630565399000LL * 1000);
  BOOST_TEST(parse_epoch_text_us("1.630565399E12").value() == 1630565399000LL * 1000);
  // Seconds: explicit, or too small to be milliseconds.
  BOOST_TEST(parse_epoch_text_us("1526383416", true).value() == 1526383416LL * 1000000);
  BOOST_TEST(parse_epoch_text_us("1526383416").value() == 1526383416LL * 1000000);
  BOOST_TEST(parse_epoch_text_us("2021-09-02T06:49:55Z").value() == kBase);
  for (const char* bad : {"", "null", "abc", "12ab", "\"\""})
    BOOST_TEST(!parse_epoch_text_us(bad).has_value(), bad);
}

BOOST_AUTO_TEST_CASE(format_round_trip) {
  BOOST_TEST(format_iso8601_utc(kBase) == "2021-09-02T06:49:55Z");
  BOOST_TEST(format_iso8601_utc(kBase + 104000) == "2021-09-02T06:49:55.104Z");
  BOOST_TEST(format_iso8601_utc(kBase + 123456) == "2021-09-02T06:49:55.123456Z");
  BOOST_TEST(format_iso8601_utc(0) == "1970-01-01T00:00:00Z");
  BOOST_TEST(format_iso8601_utc(-1000000) == "1969-12-31T23:59:59Z");
  for (std::int64_t us :
       {kBase, kBase + 1, std::int64_t{951782400} * 1000000, std::int64_t{4102444800} * 1000000})
    BOOST_TEST(parse_iso8601_us(format_iso8601_utc(us)).value() == us);
}

BOOST_AUTO_TEST_CASE(export_dates) {
  // exportDate: minute precision, no zone (UTC); seconds, fractions and a Z tolerated.
  BOOST_TEST(parse_export_date_us("2021-09-02T06:49").value() == kBase - 55 * 1000000);
  BOOST_TEST(parse_export_date_us("2021-09-02 06:49:55").value() == kBase);
  BOOST_TEST(parse_export_date_us("2021-09-02T06:49:55.104Z").value() == kBase);
  BOOST_TEST(parse_export_date_us("2021-09-02").value() ==
             kBase - (6 * 3600 + 49 * 60 + 55) * std::int64_t{1000000});
  for (const char* bad : {"", "2021", "2021-09", "2021-13-02T06:49", "2021-09-02X06:49",
                          "2021-09-02T24:00", "2021-09-02T06:60", "yesterday"})
    BOOST_TEST(!parse_export_date_us(bad).has_value(), bad);
}

BOOST_AUTO_TEST_SUITE_END()
