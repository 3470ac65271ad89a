#define BOOST_TEST_MODULE html_escape_tests
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>

#include "core/html_escape.hpp"

namespace ar = skype_etl::detail;

BOOST_AUTO_TEST_SUITE(html_escape_tests)

BOOST_AUTO_TEST_CASE(markup_in_text_is_escaped) {
  BOOST_TEST(ar::escaped("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;");
  BOOST_TEST(ar::escaped("<img src=x onerror=\"alert('x')\">") ==
             "&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;");
  BOOST_TEST(ar::escaped("</textarea><b>") == "&lt;/textarea&gt;&lt;b&gt;");
  // An entity in the input stays text: its & is escaped, so it is never decoded.
  BOOST_TEST(ar::escaped("&#106;avascript:&lt;") == "&amp;#106;avascript:&amp;lt;");
  BOOST_TEST(ar::escaped("a & b") == "a &amp; b");
  BOOST_TEST(ar::escaped("plain text, \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80") ==
             "plain text, \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_and_control_characters_become_replacement_characters) {
  const std::string fffd = "\xEF\xBF\xBD";
  BOOST_TEST(ar::escaped("a\xFF"
                         "b") == "a" + fffd + "b");
  BOOST_TEST(ar::escaped("\xC0\xBC"
                         "script") == fffd + fffd + "script");               // overlong '<'
  BOOST_TEST(ar::escaped("\xED\xA0\x80") == fffd + fffd + fffd);             // a surrogate
  BOOST_TEST(ar::escaped("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd);  // > U+10FFFF
  BOOST_TEST(ar::escaped("cut \xE2\x82") == "cut " + fffd + fffd);
  BOOST_TEST(ar::escaped(std::string("a\0b", 3)) == "a" + fffd + "b");
  BOOST_TEST(ar::escaped("bell\x07 esc\x1b del\x7f") ==
             "bell" + fffd + " esc" + fffd + " del" + fffd);
  BOOST_TEST(ar::escaped("c1 \xC2\x85") == "c1 " + fffd);
  BOOST_TEST(ar::escaped("line\r\nnext\ttab") == "line\nnext\ttab");
}

BOOST_AUTO_TEST_CASE(only_http_https_and_mailto_urls_are_links) {
  BOOST_TEST(ar::safe_url("https://example.com/a?b=1&c=2").value() ==
             "https://example.com/a?b=1&c=2");
  BOOST_TEST(ar::safe_url("HTTP://Example.com").value() == "http://Example.com");
  BOOST_TEST(ar::safe_url("  mailto:bob@example.com \n").value() == "mailto:bob@example.com");
  BOOST_TEST(ar::safe_url("ht\ttp://exa\nmple.com").value() == "http://example.com");
  for (const char* hostile : {"javascript:alert(1)",
                              "JaVaScRiPt:alert(1)",
                              "java\tscript:alert(1)",
                              "java\nscript:alert(1)",
                              " \x01javascript:alert(1)",
                              "&#106;avascript:alert(1)",
                              "javascript&colon;alert(1)",
                              "data:text/html,<script>alert(1)</script>",
                              "vbscript:msgbox(1)",
                              "file:///etc/passwd",
                              "//evil.example/x",
                              "/etc/passwd",
                              "relative/page.html",
                              "expression(alert(1))",
                              "http:javascript:alert(1)",
                              "https:",
                              "mailto:",
                              "http://ex\x01"
                              "ample.com",
                              "",
                              "   "}) {
    BOOST_TEST(!ar::safe_url(hostile).has_value(), "accepted: " << hostile);
  }
}

BOOST_AUTO_TEST_CASE(relative_urls_are_percent_encoded_and_stay_below_the_directory) {
  BOOST_TEST(ar::relative_url("media/a b.jpg").value() == "media/a%20b.jpg");
  BOOST_TEST(ar::relative_url("javascript:alert(1)").value() == "javascript%3Aalert%281%29");
  BOOST_TEST(ar::relative_url("x\"onerror=1.png").value() == "x%22onerror%3D1.png");
  for (const char* bad : {"", "/etc/passwd", "../up.png", "a/../../b", "a\\b", "a//b", "./a"})
    BOOST_TEST(!ar::relative_url(bad).has_value(), "accepted: " << bad);
}

BOOST_AUTO_TEST_CASE(the_builder_escapes_every_value_and_refuses_foreign_names) {
  ar::Html h;
  h.open("p", {{"title", "\" onmouseover=\"alert(1)"}, {"class", "x'y"}})
      .text("<b>hi</b>")
      .close("p");
  BOOST_TEST(
      h.str() ==
      "<p title=\"&quot; onmouseover=&quot;alert(1)\" class=\"x&#39;y\">&lt;b&gt;hi&lt;/b&gt;</p>");
  h.clear();
  h.link("javascript:alert(1)", "click <me>");
  BOOST_TEST(h.str() == "click &lt;me&gt;");
  h.clear();
  h.link("https://example.com/?a=1&b=\"2\"");
  BOOST_TEST(h.str() ==
             "<a href=\"https://example.com/?a=1&amp;b=&quot;2&quot;\" rel=\"noopener noreferrer\">"
             "https://example.com/?a=1&amp;b=&quot;2&quot;</a>");
}

BOOST_AUTO_TEST_CASE(names_and_urls_that_are_not_ours_throw) {
  ar::Html h;
  BOOST_CHECK_THROW(h.open("script"), std::logic_error);
  BOOST_CHECK_THROW(h.open("style"), std::logic_error);
  BOOST_CHECK_THROW(h.open("img src=x"), std::logic_error);
  BOOST_CHECK_THROW(h.open("p", {{"onclick", "x"}}), std::logic_error);
  BOOST_CHECK_THROW(h.open("p", {{"OnError", "x"}}), std::logic_error);
  BOOST_CHECK_THROW(h.open("p", {{"style", "background:url(javascript:x)"}}), std::logic_error);
  BOOST_CHECK_THROW(h.open("p", {{"a\"b", "x"}}), std::logic_error);
  BOOST_CHECK_THROW(h.open("a", {{"href", "javascript:alert(1)"}}), std::logic_error);
  BOOST_CHECK_THROW(h.open("a", {{"href", "JAVA\tSCRIPT:alert(1)"}}), std::logic_error);
  BOOST_CHECK_THROW(h.open("img", {{"src", "data:image/svg+xml,<svg onload=alert(1)>"}}),
                    std::logic_error);
  BOOST_CHECK_THROW(h.open("a", {{"href", "//evil.example/"}}), std::logic_error);
  BOOST_CHECK_NO_THROW(h.open("a", {{"href", "page-2.html"}}));
  BOOST_CHECK_NO_THROW(h.open("a", {{"href", "media/x%3Ay.png"}}));
  BOOST_CHECK_NO_THROW(h.open("svg", {{"viewBox", "0 0 1 1"}}));
}

BOOST_AUTO_TEST_CASE(css_expressions_are_only_text) {
  // No style attribute or element can be made from data; CSS in text is text.
  BOOST_TEST(ar::escaped("<style>body{background:expression(alert(1))}</style>") ==
             "&lt;style&gt;body{background:expression(alert(1))}&lt;/style&gt;");
}

BOOST_AUTO_TEST_CASE(numbers_for_svg_have_no_exponent) {
  BOOST_TEST(ar::svg_number(12) == "12");
  BOOST_TEST(ar::svg_number(1.5) == "1.5");
  BOOST_TEST(ar::svg_number(0.126) == "0.13");
  BOOST_TEST(ar::svg_number(-0.001) == "0");
  BOOST_TEST(ar::svg_number(1e300 / 1e300) == "1");
}

BOOST_AUTO_TEST_SUITE_END()
