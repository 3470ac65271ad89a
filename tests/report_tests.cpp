#define BOOST_TEST_MODULE report_tests
#include <boost/test/unit_test.hpp>

#include <regex>

#include "report.hpp"

namespace sd = skype_etl::detail;

namespace {

nlohmann::json phase(const std::string& start, const std::string& end, const char* status) {
  return {{"start_time", start},     {"end_time", end},          {"status", status},
          {"duration_seconds", 1.0}, {"processed_messages", 10}, {"messages_per_second", 10.0}};
}

/// The x and width of the timeline bar of `name`.
std::pair<double, double> bar(const std::string& html, const std::string& name) {
  const std::regex re("data-phase=\"" + name +
                      "\" x=\"([0-9.]+)\" y=\"[0-9]+\" width=\"([0-9.]+)\"");
  std::smatch m;
  BOOST_REQUIRE_MESSAGE(std::regex_search(html, m, re), "no bar for " + name);
  return {std::stod(m[1]), std::stod(m[2])};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(report_tests)

BOOST_AUTO_TEST_CASE(iso_times_convert_to_epoch_seconds) {
  BOOST_TEST(sd::iso_to_epoch_seconds("1970-01-01T00:00:00Z") == 0.0);
  BOOST_TEST(sd::iso_to_epoch_seconds("2000-03-01T00:00:00.5Z") == 951868800.5);
  BOOST_TEST(sd::iso_to_epoch_seconds("2024-02-29T12:00:00Z") == 1709208000.0);
  BOOST_TEST(sd::iso_to_epoch_seconds("yesterday") < 0.0);
}

BOOST_AUTO_TEST_CASE(timeline_bars_show_where_phases_overlap) {
  const nlohmann::json run{
      {"success", true},
      {"seconds", 10.0},
      {"statistics",
       {{"phases",
         {{"extract", phase("2025-01-01T00:00:00Z", "2025-01-01T00:00:04Z", "completed")},
          {"transform", phase("2025-01-01T00:00:01Z", "2025-01-01T00:00:05Z", "completed")},
          {"load", phase("2025-01-01T00:00:01Z", "2025-01-01T00:00:10Z", "completed")}}},
        {"memory", {{"peak_mb", 17.5}, {"limit_mb", nullptr}}}}},
      {"exports", {{{"file", "a<b>.tar"}, {"status", "loaded"}, {"messages", 10}}}}};
  const std::string html = sd::render_html_report(run);
  const auto [ex, ew] = bar(html, "extract");
  const auto [tx, tw] = bar(html, "transform");
  const auto [lx, lw] = bar(html, "load");
  BOOST_TEST(ex < tx);            // transform starts later...
  BOOST_TEST(tx < ex + ew);       // ...but while extract still runs
  BOOST_TEST(lx + lw > tx + tw);  // load ends last
  BOOST_TEST(lw / ew == 9.0 / 4.0, boost::test_tools::tolerance(0.01));  // to scale
  BOOST_TEST(html.find("a&lt;b&gt;.tar") != std::string::npos);          // escaped
  BOOST_TEST(html.find("17.5 MB") != std::string::npos);
  BOOST_TEST(html.find("<script") == std::string::npos);  // self-contained, static
}

BOOST_AUTO_TEST_CASE(failures_are_shown) {
  const nlohmann::json run{
      {"success", false},
      {"error", "cannot read export 'x': <bad>"},
      {"statistics",
       {{"phases", {{"extract", phase("2025-01-01T00:00:00Z", "2025-01-01T00:00:01Z", "failed")}}},
        {"errors",
         {{{"phase", "extract"},
           {"error_type", "skype_etl::InputError"},
           {"error_message", "cannot read export 'x': <bad>"}}}}}}};
  const std::string html = sd::render_html_report(run);
  BOOST_TEST(html.find("Failed: cannot read export &#39;x&#39;: &lt;bad&gt;") != std::string::npos);
  BOOST_TEST(html.find("#b00020") != std::string::npos);  // the failed phase's bar
  BOOST_TEST(html.find("skype_etl::InputError") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_run_that_failed_early_renders_with_nulls_anywhere) {
  // A run that failed before a phase ended has nulls where times and counts would be; the
  // page used to die on them with a JSON type error (and leave an empty file).
  const nlohmann::json run{
      {"success", false},
      {"error", "cannot read export 'x.tar': no such file or directory"},
      {"seconds", nullptr},
      {"exports", nullptr},
      {"statistics",
       {{"phases",
         {{"extract",
           {{"start_time", "2025-01-01T00:00:00Z"},
            {"end_time", nullptr},
            {"status", nullptr},
            {"processed_messages", nullptr}}},
          {"load", nullptr}}},
        {"memory", nullptr},
        {"errors", {{{"phase", "extract"}, {"error_type", nullptr}, {"error_message", 5}}}}}}};
  std::string html;
  BOOST_REQUIRE_NO_THROW(html = sd::render_html_report(run));
  BOOST_TEST(html.find("Failed: cannot read export &#39;x.tar&#39;") != std::string::npos);
  BOOST_TEST(html.find("</html>") != std::string::npos);
  BOOST_REQUIRE_NO_THROW(sd::render_html_report(nlohmann::json()));
  BOOST_REQUIRE_NO_THROW(sd::render_html_report(nlohmann::json::array()));
}

BOOST_AUTO_TEST_CASE(exports_and_totals_show_the_counts_by_name) {
  auto entry = [](const std::string& file, const char* status, int read, int fresh) {
    return nlohmann::json{{"file", file},
                          {"status", status},
                          {"conversations", 2},
                          {"messages",
                           {{"read", read},
                            {"new", fresh},
                            {"updated", 1},
                            {"unchanged", read - fresh - 2},
                            {"superseded", 1},
                            {"skipped", 0},
                            {"invalid_timestamps", 0}}}};
  };
  const nlohmann::json exports{entry("a.tar", "loaded", 10, 4), entry("b.tar", "loaded", 20, 5)};
  const nlohmann::json totals = sd::summarize_exports(exports);
  BOOST_TEST(totals["exports"] == 2);
  BOOST_TEST(totals["loaded"] == 2);
  BOOST_TEST(totals["conversations"] == 4);
  BOOST_TEST(totals["messages"]["read"] == 30);
  BOOST_TEST(totals["messages"]["new"] == 9);
  BOOST_TEST(totals["messages"]["unchanged"] == 17);
  const std::string html =
      sd::render_html_report(nlohmann::json{{"success", true}, {"exports", exports}});
  auto cell = [&html](const std::string& file, const std::string& name) {
    const auto row = html.find("<tr data-export=\"" + file + "\">");
    if (row == std::string::npos) return std::string("no row");
    const std::regex re("data-count=\"" + name + "\">([0-9]+)<");
    std::smatch m;
    const std::string text = html.substr(row, html.find("</tr>", row) - row);
    return std::regex_search(text, m, re) ? m[1].str() : std::string("no cell");
  };
  BOOST_TEST(cell("a.tar", "new") == "4");
  BOOST_TEST(cell("b.tar", "read") == "20");
  BOOST_TEST(cell("", "read") == "30");  // the totals row
  BOOST_TEST(cell("", "superseded") == "2");
}

BOOST_AUTO_TEST_CASE(samples_and_load_steps_are_drawn_on_the_phases_time_axis) {
  // 2025-01-01T00:00:00Z in microseconds; the load runs 0-10 s, its steps after 4 s.
  const std::int64_t t0 = 1735689600LL * 1000000;
  nlohmann::json samples = nlohmann::json::array();
  for (int i = 0; i <= 10; ++i)
    samples.push_back({{"time_us", t0 + i * 1000000LL},
                       {"extract", std::min(i, 4) * 1000},
                       {"transform", std::min(i, 4) * 1000},
                       {"load", std::min(i, 4) * 900},
                       {"batches_in_flight", i < 4 ? 8 : 1},
                       {"bytes_read", std::min(i, 4) * 1000000},
                       {"rss_anon_mb", 20.0 + i}});
  const nlohmann::json steps{
      {{"step", "copy"}, {"connection", 0}, {"start_us", t0}, {"end_us", t0 + 4000000}},
      {{"step", "index_build"},
       {"connection", 1},
       {"detail", "messages_<pkey>"},
       {"start_us", t0 + 4000000},
       {"end_us", t0 + 9000000}},
      {{"step", "commit"},
       {"connection", 0},
       {"start_us", t0 + 9000000},
       {"end_us", t0 + 10000000}}};
  const nlohmann::json run{
      {"success", true},
      {"statistics",
       {{"phases",
         {{"extract", phase("2025-01-01T00:00:00Z", "2025-01-01T00:00:04Z", "completed")},
          {"load", phase("2025-01-01T00:00:00Z", "2025-01-01T00:00:10Z", "completed")}}}}},
      {"sampling", {{"interval_ms", 200}, {"batches_in_flight_limit", 8}, {"samples", samples}}},
      {"exports", {{{"file", "a.tar"}, {"status", "loaded"}, {"load", {{"steps", steps}}}}}}};
  const std::string html = sd::render_html_report(run);
  for (const char* chart : {"rates", "in_flight", "memory"}) {
    const std::regex re(std::string("data-chart=\"") + chart +
                        "\"[^]*?<path [^>]*d=\"M[0-9.]+,[0-9.]+( L[0-9.]+,[0-9.]+){10}\"");
    BOOST_TEST(std::regex_search(html, re), "no line of 11 points in chart " << chart);
  }
  // The load steps: under the phases, on the same scale (the load bar spans 0-10 s).
  const auto [lx, lw] = bar(html, "load");
  const std::regex step_re(
      "data-step=\"index_build\" x=\"([0-9.]+)\" y=\"[0-9]+\" width=\"([0-9.]+)\"");
  std::smatch m;
  BOOST_REQUIRE(std::regex_search(html, m, step_re));
  BOOST_TEST(std::stod(m[1]) == lx + lw * 0.4, boost::test_tools::tolerance(0.01));
  BOOST_TEST(std::stod(m[2]) == lw * 0.5, boost::test_tools::tolerance(0.01));
  BOOST_TEST(html.find("index_build #1") != std::string::npos);         // on stream 1
  BOOST_TEST(html.find("messages_&lt;pkey&gt;") != std::string::npos);  // escaped
  BOOST_TEST(html.find("<script") == std::string::npos);
  // Without samples: no charts, and nothing fails.
  nlohmann::json bare = run;
  bare["sampling"]["samples"] = nlohmann::json::array();
  BOOST_TEST(sd::render_html_report(bare).find("data-chart") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
