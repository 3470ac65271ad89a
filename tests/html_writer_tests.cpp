#define BOOST_TEST_MODULE html_writer_tests
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "archive/html_writer.hpp"
#include "skype_etl/errors.hpp"
#include "support/browser.hpp"
#include "support/tar_writer.hpp"

namespace ar = skype_etl::detail::archive;
namespace st = skype_etl::test;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Each payload, if it ever ran, would set the title to PWNED and add <div id="pwned">.
const std::string k_js =
    "document.title='PWNED';document.body.appendChild(document.createElement('div')).id='pwned'";

std::vector<std::string> hostile_texts() {
  return {"<script>" + k_js + "</script>",
          "<img src=x onerror=\"" + k_js + "\">",
          "<svg onload=\"" + k_js + "\"></svg>",
          "</textarea><script>" + k_js + "</script>",
          "\"><script>" + k_js + "</script>",
          "' onmouseover='" + k_js + "' x='",
          "<a href=\"javascript:" + k_js + "\">click</a>",
          "<style>body{background:expression(" + k_js + ")}</style><p style=\"x:expression(1)\">",
          "&#106;avascript:" + k_js,
          "<iframe srcdoc=\"<script>" + k_js + "</script>\"></iframe>",
          "<meta http-equiv=\"refresh\" content=\"0;url=javascript:" + k_js + "\">",
          "bad \xFF\xFE utf-8 \xC0\xBC"
          "script\xC0\xBE and a NUL " +
              std::string(1, '\0') + "!"};
}

std::vector<std::string> hostile_urls() {
  return {"javascript:" + k_js,      "JaVaScRiPt:" + k_js,
          "java\tscript:" + k_js,    " \x01javascript:" + k_js,
          "&#106;avascript:" + k_js, "data:text/html,<script>" + k_js + "</script>",
          "vbscript:msgbox(1)",      "//evil.example/x"};
}

ar::Micros at(int y, int mo, int d, int h, int mi) {
  std::tm tm{};
  tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi;
  return static_cast<ar::Micros>(timegm(&tm)) * 1000000;
}

ar::Conversation conversation(std::string id, std::string name, std::string stem,
                              std::int64_t count, ar::Micros first, ar::Micros last) {
  ar::Conversation c;
  c.account_id = "me";
  c.conversation_id = std::move(id);
  c.type = "group";
  c.display_name = std::move(name);
  c.message_count = count;
  c.first_message_at = first;
  c.last_message_at = last;
  c.file_stem = std::move(stem);
  return c;
}

ar::Message text_message(std::string id, ar::Micros when, std::string sender, std::string name,
                         std::string text) {
  ar::Message m;
  m.message_id = std::move(id);
  m.sent_at = when;
  m.sender_id = std::move(sender);
  m.sender_name = std::move(name);
  m.message_type = "RichText";
  m.content_text = std::move(text);
  return m;
}

ar::Statistics some_statistics(std::int64_t messages, std::int64_t conversations) {
  ar::Statistics s;
  for (int i = 0; i < 18; ++i) {
    char month[16];
    std::snprintf(month, sizeof month, "%04d-%02d", 2023 + i / 12, i % 12 + 1);
    s.per_month.push_back({month, 40 + (i * 37) % 90 + (i % 5 == 0 ? 80 : 0)});
  }
  for (int d = 0; d < 7; ++d)
    for (int h = 0; h < 24; ++h)
      s.hour_by_weekday[d][h] =
          (h >= 8 && h <= 23) ? (h >= 18 ? 30 : 10) + (d >= 5 ? 15 : 0) + (h * d) % 7 : (h % 3);
  s.messages = messages;
  s.conversations = conversations;
  return s;
}

/// The attributes (name, value) of every tag in `html`. Values are double-quoted (ours
/// always are, Chromium's serialisation too, and an escaped value holds no '"'); text holds
/// no '<' (it is escaped), so what looks like a tag is one.
std::vector<std::pair<std::string, std::string>> attributes(const std::string& html) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = html.find('<'); i != std::string::npos; i = html.find('<', i + 1)) {
    std::size_t p = i + 1;
    if (p < html.size() && (html[p] == '/' || html[p] == '!')) continue;
    while (p < html.size() && std::isalnum(static_cast<unsigned char>(html[p]))) ++p;
    while (p < html.size() && html[p] != '>') {
      while (p < html.size() && (html[p] == ' ' || html[p] == '/' || html[p] == '\n')) ++p;
      const std::size_t start = p;
      while (p < html.size() && html[p] != '=' && html[p] != ' ' && html[p] != '>' &&
             html[p] != '/')
        ++p;
      std::string name = html.substr(start, p - start), value;
      if (p < html.size() && html[p] == '=') {
        const std::size_t open = p + 2;  // ="
        p = html.find('"', open);
        if (p == std::string::npos) return out;
        value = html.substr(open, p - open);
        ++p;
      }
      if (!name.empty()) out.emplace_back(std::move(name), std::move(value));
    }
    i = p == std::string::npos ? html.size() : p;
  }
  return out;
}

/// The href and src values of `html`'s tags.
std::vector<std::string> hrefs(const std::string& html) {
  std::vector<std::string> out;
  for (const auto& [name, value] : attributes(html))
    if (name == "href" || name == "src") out.push_back(value);
  return out;
}

/// What must hold of every page, in its source: no script but ours, no event handler or
/// style attribute, every link http(s)/mailto or a file of the archive.
void check_source(const fs::path& dir, const fs::path& file, bool with_script) {
  const std::string html = slurp(file);
  std::size_t scripts = 0;
  for (std::size_t i = html.find("<script"); i != std::string::npos;
       i = html.find("<script", i + 1))
    ++scripts;
  BOOST_TEST(scripts == (with_script ? 1U : 0U), file);
  BOOST_TEST(html.find("<img src=x") == std::string::npos, file);
  BOOST_TEST(html.find("<iframe") == std::string::npos, file);
  BOOST_TEST(html.find("<svg onload") == std::string::npos, file);
  for (const auto& [name, value] : attributes(html)) {
    BOOST_TEST(name.rfind("on", 0) != 0, file << ": an attribute " << name);
    BOOST_TEST(name != "style", file << ": a style attribute");
  }
  for (const auto& url : hrefs(html)) {
    if (url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0 ||
        url.rfind("mailto:", 0) == 0)
      continue;
    BOOST_TEST(url.find(':') == std::string::npos, file << ": " << url);
    if (url.rfind("media/", 0) != 0)  // the hostile media files are not there
      BOOST_TEST(fs::exists(dir / url), file << ": a link to a missing file " << url);
  }
  BOOST_TEST(html.find("Content-Security-Policy") != std::string::npos);
}

fs::path output_dir(const std::string& name) {
  const fs::path dir = fs::path(SKYPE_ETL_TEST_OUTPUT_DIR) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// The hostile archive: a conversation whose every field attacks, and one of 4500
/// messages (three pages of 2000).
struct HostileArchive {
  fs::path dir = output_dir("hostile");
  std::vector<ar::Conversation> conversations;
  std::size_t hostile_messages = 0;

  HostileArchive() {
    const auto texts = hostile_texts();
    const auto urls = hostile_urls();
    auto evil = conversation("19:evil@thread.skype", texts[0] + " " + texts[1], "evil", 0,
                             at(2024, 1, 1, 9, 0), at(2024, 1, 1, 23, 0));
    evil.topic = texts[3];
    evil.participants = {{"8:mallory", texts[4], false}, {"8:me", "Me", true}};
    auto long_one = conversation("19:long@thread.skype", "Long \"quoted\" talk", "long", 4500,
                                 at(2024, 2, 1, 0, 0), at(2024, 2, 4, 3, 0));
    auto plain = conversation("8:bob", "Bob <b>Builder</b>", "bob", 1, at(2024, 3, 1, 10, 0),
                              at(2024, 3, 1, 10, 0));
    plain.type = "one_to_one";

    std::vector<ar::Message> evil_messages;
    int n = 0;
    auto next_id = [&] { return std::to_string(++n); };
    for (const auto& t : texts) {
      // As text, sender name, quote, file name, mention and reaction.
      auto m = text_message(next_id(), at(2024, 1, 1, 9, n), "8:mallory", t, "says: " + t);
      nlohmann::json d;
      d["quote"] = {{"author_id", "8:mallory"}, {"author_name", t}, {"time", t}, {"text", t}};
      d["mentions"] = nlohmann::json::array({{{"id", "8:x"}, {"name", t}}});
      d["reactions"] =
          nlohmann::json::array({{{"key", t}, {"users", nlohmann::json::array({{{"mri", t}}})}}});
      m.details_json = d.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      ar::Attachment a;
      a.kind = "image";
      a.name = t;
      a.content_type = "image/png";
      a.size = 1234;
      a.media_path = "media/" + t + ".png";
      m.attachments.push_back(a);
      evil_messages.push_back(std::move(m));
    }
    for (const auto& u : urls) {
      auto m = text_message(next_id(), at(2024, 1, 1, 12, n), "8:mallory", "Mallory",
                            "see " + u + " now");
      nlohmann::json d;
      d["links"] = nlohmann::json::array({u});
      m.details_json = d.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      evil_messages.push_back(std::move(m));
    }
    {
      auto m = text_message(next_id(), at(2024, 1, 1, 20, 0), "8:mallory", "Mallory", texts[2]);
      m.message_type = "ThreadActivity/TopicUpdate";
      m.is_server_generated = true;
      nlohmann::json d;
      d["membership"] = {
          {"kind", "topic"}, {"initiator", "8:mallory"}, {"targets", {}}, {"value", texts[5]}};
      m.details_json = d.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      evil_messages.push_back(std::move(m));
      auto call = text_message(next_id(), at(2024, 1, 1, 21, 0), "8:mallory", "Mallory", "");
      call.message_type = "Event/Call";
      nlohmann::json c;
      c["call"] = {{"state", texts[6]},
                   {"duration_seconds", 75},
                   {"participants", {{{"id", "8:x"}, {"name", texts[7]}}}}};
      call.details_json = c.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      evil_messages.push_back(std::move(call));
      auto edited = text_message(next_id(), at(2024, 1, 1, 22, 0), "8:me", "Me", texts[8]);
      edited.from_owner = true;
      edited.is_edited = true;
      edited.edited_at = at(2024, 1, 1, 22, 5);
      evil_messages.push_back(std::move(edited));
      auto deleted = text_message(next_id(), at(2024, 1, 1, 23, 0), "8:mallory", texts[9], "");
      deleted.is_deleted = true;
      evil_messages.push_back(std::move(deleted));
    }
    hostile_messages = evil_messages.size();
    evil.message_count = static_cast<std::int64_t>(evil_messages.size());
    conversations = {evil, long_one, plain};

    auto writer = ar::make_html_writer(dir);
    writer->begin(conversations);
    writer->begin_conversation(conversations[0]);
    for (const auto& m : evil_messages) writer->message(m);
    writer->end_conversation();
    writer->begin_conversation(conversations[1]);
    for (int i = 1; i <= 4500; ++i) {
      char text[64];
      std::snprintf(text, sizeof text, "Message %04d", i);
      writer->message(text_message("L" + std::to_string(i),
                                   at(2024, 2, 1, 0, 0) + ar::Micros{i} * 60000000, "8:bob", "Bob",
                                   text));
      if (i == 2001) {
        // The first page is complete on disk once the second begins (streamed).
        const std::string first = slurp(dir / "long.html");
        BOOST_TEST(first.size() > 100000U);
        BOOST_TEST(first.find("</html>") != std::string::npos);
      }
    }
    writer->end_conversation();
    writer->begin_conversation(conversations[2]);
    writer->message(text_message("b1", at(2024, 3, 1, 10, 0), "8:bob", "Bob", "hi"));
    writer->end_conversation();
    auto stats = some_statistics(4500 + 1 + static_cast<std::int64_t>(hostile_messages), 3);
    stats.per_month.back().month = texts[0];
    stats.top_conversations = {{"19:evil@thread.skype", texts[1], 24}, {"x", texts[2], 3}};
    stats.top_senders = {{texts[3], texts[4], 20}, {"8:bob", "", 4}};
    writer->finish(stats);
  }
};

/// Unescapes what Chromium's serialisation escapes in text: & < > and, in attributes, ".
std::string dom_text(std::string s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&')
      out += "&amp;";
    else if (s[i] == '<')
      out += "&lt;";
    else if (s[i] == '>')
      out += "&gt;";
    else
      out += s[i];
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(html_writer_tests)

BOOST_AUTO_TEST_CASE(hostile_content_is_text_and_links_are_safe_in_the_source) {
  HostileArchive archive;
  const fs::path& dir = archive.dir;
  for (const char* page : {"index.html", "evil.html", "long.html", "long-p2.html", "long-p3.html",
                           "bob.html", "stats.html"}) {
    BOOST_TEST_REQUIRE(fs::exists(dir / page), page);
    check_source(dir, dir / page, std::string(page) == "index.html");
  }
  BOOST_TEST(!fs::exists(dir / "long-p4.html"));
  // Hostile links never become links: evil.html links only our pages and media files
  // (percent-encoded), and no URL of its messages.
  const std::string evil = slurp(dir / "evil.html");
  for (const auto& url : hrefs(evil)) {
    if (url.rfind("media/", 0) == 0) {
      BOOST_TEST(url.find_first_of(":<>\"' ") == std::string::npos, url);
      continue;
    }
    BOOST_TEST((url == "index.html" || url == "stats.html"), url);
  }
  // The CSP: nothing by default, our one style and script by hash.
  const std::string csp = ar::html_content_security_policy();
  BOOST_TEST(csp.find("default-src 'none'") == 0U);
  BOOST_TEST(csp.find("unsafe-inline") == std::string::npos);
  BOOST_TEST(std::regex_search(csp, std::regex("script-src 'sha256-[A-Za-z0-9+/]{43}='")));
  BOOST_TEST(std::regex_search(csp, std::regex("style-src 'sha256-[A-Za-z0-9+/]{43}='")));
}

BOOST_AUTO_TEST_CASE(an_unwritable_directory_is_an_output_error) {
  auto writer = ar::make_html_writer("/nonexistent/skype-etl-archive");
  BOOST_CHECK_THROW(writer->begin({}), skype_etl::OutputError);
}

BOOST_AUTO_TEST_CASE(pages_follow_the_messages_when_the_count_was_wrong) {
  st::TempDir dir;
  ar::HtmlOptions options;
  options.messages_per_page = 2;
  auto writer = ar::make_html_writer(dir.path(), options);
  const auto fewer = conversation("19:a", "fewer", "fewer", 5, 0, 0);  // 3 pages promised
  const auto more = conversation("19:b", "more", "more", 1, 0, 0);     // 1 page promised
  writer->begin({fewer, more});
  writer->begin_conversation(fewer);
  for (int i = 0; i < 3; ++i)
    writer->message(text_message(std::to_string(i), i, "8:a", "A", "m" + std::to_string(i)));
  writer->end_conversation();
  writer->begin_conversation(more);
  for (int i = 0; i < 5; ++i)
    writer->message(text_message(std::to_string(i), i, "8:a", "A", "m" + std::to_string(i)));
  writer->end_conversation();
  writer->finish({});
  // Every page a link names exists: the promised third page of "fewer" says it is empty,
  // and each page of "more" links the next one.
  for (const char* page : {"fewer.html", "fewer-p2.html", "fewer-p3.html", "more.html",
                           "more-p2.html", "more-p3.html"})
    check_source(dir.path(), dir / page, false);
  BOOST_TEST(slurp(dir / "fewer-p3.html").find("No messages.") != std::string::npos);
  BOOST_TEST(!fs::exists(dir / "fewer-p4.html"));
  BOOST_TEST(slurp(dir / "more.html").find("href=\"more-p2.html\" rel=\"next\"") !=
             std::string::npos);
  BOOST_TEST(slurp(dir / "more-p2.html").find("href=\"more-p3.html\" rel=\"next\"") !=
             std::string::npos);
  BOOST_TEST(slurp(dir / "more-p3.html").find("m4") != std::string::npos);
  BOOST_TEST(!fs::exists(dir / "more-p4.html"));
}

BOOST_AUTO_TEST_CASE(a_file_stem_that_leaves_the_directory_is_refused) {
  st::TempDir dir;
  fs::create_directories(dir / "out");
  auto writer = ar::make_html_writer(dir / "out");
  writer->begin({});
  for (const char* stem : {"", "..", "../escape", "a/b", "a\\b"}) {
    auto c = conversation("8:x", "x", stem, 0, 0, 0);
    BOOST_CHECK_THROW(writer->begin_conversation(c), std::invalid_argument);
  }
  BOOST_TEST(!fs::exists(dir / "escape.html"));
}

BOOST_AUTO_TEST_CASE(chromium_runs_no_injected_script_and_shows_every_message) {
  const std::string exe = st::find_chromium();
  if (exe.empty()) {
    BOOST_TEST_MESSAGE(
        "SKIPPED: no chromium (Debian package 'chromium', installed by "
        "scripts/install-deps.sh): the HTML archive is not rendered");
    return;
  }
  HostileArchive archive;
  const fs::path& dir = archive.dir;
  st::Browser browser(exe);

  // The index: every conversation, and our script ran (it counts the rows).
  const auto index = browser.dump(dir / "index.html");
  BOOST_TEST(index.dom.find("3 of 3 conversations") != std::string::npos, index.dom);
  const std::regex row("<tr>");
  BOOST_TEST(std::distance(std::sregex_iterator(index.dom.begin(), index.dom.end(), row),
                           std::sregex_iterator()) == 1 + 3);
  for (const char* page : {"evil.html", "long.html", "bob.html"})
    BOOST_TEST(index.dom.find(std::string("href=\"") + page + "\"") != std::string::npos, page);
  BOOST_TEST(index.dom.find(dom_text("Bob <b>Builder</b>")) != std::string::npos);
  BOOST_TEST(index.dom.find(dom_text(hostile_texts()[0] + " " + hostile_texts()[1])) !=
             std::string::npos);
  // Filtered and sorted from the address (what the box and the headers do).
  const auto filtered = browser.dump(dir / "index.html#q=QUOTED");
  BOOST_TEST(filtered.dom.find("1 of 3 conversations") != std::string::npos, filtered.dom);
  BOOST_TEST(filtered.dom.find("<tr hidden=\"\">") != std::string::npos, filtered.dom);
  const auto order = [&](const std::string& dom) {
    std::string out;
    static const std::regex link("<td data-sort=\"[^\"]*\"><a href=\"(\\w+)\\.html\"");
    for (auto it = std::sregex_iterator(dom.begin(), dom.end(), link); it != std::sregex_iterator();
         ++it)
      out += (*it)[1].str() + " ";
    return out;
  };
  BOOST_TEST(order(index.dom) == "evil long bob ");
  BOOST_TEST(order(browser.dump(dir / "index.html#sort=4").dom) == "bob evil long ");
  BOOST_TEST(order(browser.dump(dir / "index.html#sort=-4").dom) == "long evil bob ");

  for (const char* page : {"index.html", "evil.html", "long.html", "long-p2.html", "long-p3.html",
                           "bob.html", "stats.html"}) {
    const auto p = page == std::string("index.html") ? index : browser.dump(dir / page);
    BOOST_TEST(p.dom.find("id=\"pwned\"") == std::string::npos, page << ": a payload ran");
    BOOST_TEST(p.dom.find("<title>PWNED") == std::string::npos, page << ": a payload ran");
    // Our own style and script comply with our policy: the console has no complaint.
    BOOST_TEST(p.log.find("Content Security Policy") == std::string::npos, page << "\n" << p.log);
  }

  // The hostile page: each payload is there as text, as many times as it was sent.
  const auto evil = browser.dump(dir / "evil.html");
  for (const auto& t : hostile_texts()) {
    if (t.find('\xFF') != std::string::npos) continue;  // shown with U+FFFD
    BOOST_TEST(evil.dom.find("says: <span class=\"mention\">" + dom_text(t) + "</span>") !=
                   std::string::npos,
               t);
  }
  BOOST_TEST(evil.dom.find("bad \xEF\xBF\xBD\xEF\xBF\xBD utf-8") != std::string::npos);
  BOOST_TEST(evil.dom.find("see javascript:") != std::string::npos);
  for (const auto& [name, value] : attributes(evil.dom)) {
    BOOST_TEST(name.rfind("on", 0) != 0, "an attribute " << name);
    if (name == "href" || name == "src")
      BOOST_TEST((value == "index.html" || value == "stats.html" || value.rfind("media/", 0) == 0),
                 value);
  }
  BOOST_TEST(evil.dom.find("This message was deleted.") != std::string::npos);
  BOOST_TEST(evil.dom.find("1 min 15 s") != std::string::npos);
  std::size_t articles = 0, system = 0;
  for (std::size_t i = evil.dom.find("<article"); i != std::string::npos;
       i = evil.dom.find("<article", i + 1))
    ++articles;
  for (std::size_t i = evil.dom.find("<div class=\"system\""); i != std::string::npos;
       i = evil.dom.find("<div class=\"system\"", i + 1))
    ++system;
  BOOST_TEST(articles + system == archive.hostile_messages);

  // The long conversation: every message once, in order, over three linked pages.
  int expected = 1;
  for (const char* page : {"long.html", "long-p2.html", "long-p3.html"}) {
    const auto p = browser.dump(dir / page);
    static const std::regex body("<div class=\"body\">Message (\\d{4})</div>");
    for (auto it = std::sregex_iterator(p.dom.begin(), p.dom.end(), body);
         it != std::sregex_iterator(); ++it) {
      const int got = std::stoi((*it)[1]);
      if (got != expected) {
        BOOST_TEST(got == expected, page);
        break;
      }
      ++expected;
    }
    for (const auto& url : hrefs(p.dom))
      if (url.find(':') == std::string::npos)
        BOOST_TEST(fs::exists(dir / url), page << " links to a missing " << url);
  }
  BOOST_TEST(expected == 4501);
  const auto second = browser.dump(dir / "long-p2.html");
  BOOST_TEST(second.dom.find("href=\"long.html\" rel=\"prev\"") != std::string::npos);
  BOOST_TEST(second.dom.find("href=\"long-p3.html\" rel=\"next\"") != std::string::npos);

  const auto stats = browser.dump(dir / "stats.html");
  BOOST_TEST(stats.dom.find("data-chart=\"months\"") != std::string::npos);
  BOOST_TEST(stats.dom.find("data-chart=\"heat\"") != std::string::npos);

  browser.screenshot(dir / "evil.html", dir / "hostile-conversation.png", 1000, 1400);
}

BOOST_AUTO_TEST_CASE(a_friendly_sample_for_the_screenshots) {
  // Times shown in one zone, whatever the machine's.
  ::setenv("TZ", "Europe/Berlin", 1);
  ::tzset();
  const fs::path dir = output_dir("sample");
  st::write_file(
      dir / "media" / "lake.svg",
      R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="480" height="270">)svg"
      R"svg(<defs><linearGradient id="s" x1="0" y1="0" x2="0" y2="1">)svg"
      R"svg(<stop offset="0" stop-color="#ffb36b"/><stop offset="1" stop-color="#ff6f91"/>)svg"
      R"svg(</linearGradient></defs><rect width="480" height="270" fill="url(#s)"/>)svg"
      R"svg(<circle cx="330" cy="150" r="46" fill="#fff4c2"/>)svg"
      R"svg(<path d="M0 190 L120 110 L220 180 L300 120 L480 200 V270 H0Z" fill="#3d5a80"/>)svg"
      R"svg(<rect y="220" width="480" height="50" fill="#5c8fb8"/></svg>)svg");
  auto hike = conversation("19:hike@thread.skype", "Weekend hiking trip", "weekend-hiking-trip", 0,
                           at(2024, 5, 17, 17, 2), at(2024, 5, 18, 19, 30));
  hike.participants = {{"8:alice", "Alice", false}, {"8:bob", "Bob", false}, {"8:me", "Sam", true}};
  std::vector<ar::Message> ms;
  auto add = [&](ar::Micros when, const char* who, const char* name, const char* text) {
    ms.push_back(text_message(std::to_string(ms.size() + 1), when, who, name, text));
    ms.back().from_owner = std::string(who) == "8:me";
    return &ms.back();
  };
  {
    auto* m = add(at(2024, 5, 17, 17, 2), "8:alice", "Alice", "Alice added Bob");
    m->message_type = "ThreadActivity/AddMember";
    m->is_server_generated = true;
    m->details_json =
        R"({"membership":{"kind":"added","initiator":"8:alice","targets":["8:bob"]}})";
  }
  add(at(2024, 5, 17, 17, 4), "8:alice", "Alice",
      "Who's in for the lake loop on Saturday? Forecast says sunny \xE2\x98\x80\xEF\xB8\x8F");
  {
    auto* m = add(at(2024, 5, 17, 17, 6), "8:me", "Sam",
                  "Count me in! Route: https://example.org/trails/lake-loop");
    m->details_json =
        R"({"reactions":[{"key":"like","users":[{"mri":"8:alice"},{"mri":"8:bob"}]}]})";
  }
  {
    auto* m = add(at(2024, 5, 17, 17, 9), "8:bob", "Bob",
                  "@Alice can you bring the map? I'll bring snacks.");
    m->details_json = R"({"mentions":[{"id":"8:alice","name":"Alice"}]})";
    m->is_edited = true;
    m->edited_at = at(2024, 5, 17, 17, 10);
  }
  {
    auto* m =
        add(at(2024, 5, 17, 17, 12), "8:alice", "Alice", "Sure, and the thermos \xF0\x9F\x98\x84");
    m->details_json =
        R"({"quote":{"author_id":"8:bob","author_name":"Bob","time":"2024-05-17T15:09:00Z","text":"can you bring the map?"},"reactions":[{"key":"heart","users":[{"mri":"8:bob"}]}]})";
  }
  {
    auto* m = add(at(2024, 5, 17, 17, 15), "8:bob", "Bob", "");
    m->is_deleted = true;
    m->deleted_at = at(2024, 5, 17, 17, 16);
  }
  {
    auto* m = add(at(2024, 5, 17, 21, 30), "8:alice", "Alice", "");
    m->message_type = "Event/Call";
    m->details_json =
        R"({"call":{"state":"ended","duration_seconds":754,"participants":[{"id":"8:alice","name":"Alice"},{"id":"8:bob","name":"Bob"},{"id":"8:me","name":"Sam"}]}})";
  }
  {
    auto* m = add(at(2024, 5, 18, 8, 45), "8:alice", "Alice", "Trail map for today");
    ar::Attachment a;
    a.kind = "file";
    a.name = "lake-loop-map.pdf";
    a.content_type = "application/pdf";
    a.size = 482133;
    m->attachments.push_back(a);
  }
  {
    auto* m = add(at(2024, 5, 18, 19, 28), "8:me", "Sam", "What a view at the top!");
    ar::Attachment a;
    a.kind = "image";
    a.name = "lake.svg";
    a.content_type = "image/svg+xml";
    a.size = 612;
    a.media_path = "media/lake.svg";
    m->attachments.push_back(a);
    m->details_json =
        R"({"reactions":[{"key":"laugh","users":[{"mri":"8:bob"}]},{"key":"like","users":[{"mri":"8:alice"}]}]})";
  }
  {
    auto* m =
        add(at(2024, 5, 18, 19, 30), "8:bob", "Bob", "Bob changed the topic to \"Hikes 2024\"");
    m->message_type = "ThreadActivity/TopicUpdate";
    m->is_server_generated = true;
    m->details_json =
        R"({"membership":{"kind":"topic","initiator":"8:bob","targets":[],"value":"Hikes 2024"}})";
  }
  hike.message_count = static_cast<std::int64_t>(ms.size());
  auto family = conversation("19:family@thread.skype", "Family", "family", 0, at(2023, 4, 2, 9, 0),
                             at(2024, 5, 12, 18, 0));
  auto alice =
      conversation("8:alice", "Alice", "alice", 0, at(2022, 6, 1, 8, 0), at(2024, 5, 16, 22, 0));
  alice.type = "one_to_one";
  const std::vector<ar::Conversation> all = {hike, family, alice};

  auto writer = ar::make_html_writer(dir);
  writer->begin(all);
  writer->begin_conversation(all[0]);
  for (const auto& m : ms) writer->message(m);
  writer->end_conversation();
  for (std::size_t i = 1; i < all.size(); ++i) {
    writer->begin_conversation(all[i]);
    writer->end_conversation();
  }
  auto stats = some_statistics(1482, 3);
  stats.first_message_at = at(2023, 1, 3, 8, 0);
  stats.last_message_at = at(2024, 6, 28, 20, 0);
  stats.top_conversations = {{"19:family@thread.skype", "Family", 812},
                             {"8:alice", "Alice", 560},
                             {"19:hike@thread.skype", "Weekend hiking trip", 110}};
  stats.top_senders = {{"8:me", "Sam", 640},
                       {"8:alice", "Alice", 498},
                       {"8:bob", "Bob", 221},
                       {"8:mum", "Mum", 123}};
  writer->finish(stats);
  ::unsetenv("TZ");
  ::tzset();

  for (const char* page :
       {"index.html", "weekend-hiking-trip.html", "family.html", "alice.html", "stats.html"})
    check_source(dir, dir / page, std::string(page) == "index.html");
  const std::string exe = st::find_chromium();
  if (exe.empty()) {
    BOOST_TEST_MESSAGE("SKIPPED: no chromium: no screenshots of the sample archive");
    return;
  }
  st::Browser browser(exe);
  const auto page = browser.dump(dir / "weekend-hiking-trip.html");
  BOOST_TEST(page.log.find("Content Security Policy") == std::string::npos, page.log);
  BOOST_TEST(page.dom.find("<img src=\"media/lake.svg\"") != std::string::npos);
  BOOST_TEST(page.dom.find("title=\"2024-05-17 19:04:00 +02:00 (2024-05-17 17:04:00 UTC)\"") !=
             std::string::npos);
  browser.screenshot(dir / "weekend-hiking-trip.html",
                     fs::path(SKYPE_ETL_TEST_OUTPUT_DIR) / "archive-conversation.png", 900, 1300);
  browser.screenshot(dir / "stats.html", fs::path(SKYPE_ETL_TEST_OUTPUT_DIR) / "archive-stats.png",
                     1000, 1250);
}

BOOST_AUTO_TEST_SUITE_END()
