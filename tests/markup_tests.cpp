#define BOOST_TEST_MODULE markup_tests
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "transform/markup.hpp"
#include "transform/transformer.hpp"

using namespace skype_etl::detail;

namespace {

struct Rendered {
  std::string text;
  MarkupResult result;
};

Rendered render(std::string_view markup) {
  Rendered r;
  render_markup(markup, r.text, r.result);
  r.text = std::string(trim_ascii(r.text));
  return r;
}

bool valid_utf8(std::string_view s) {
  return find_unclean(s) == std::string_view::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(markup_tests)

BOOST_AUTO_TEST_CASE(formatting_tags_keep_their_text) {
  BOOST_TEST(markup_to_text("<b raw_pre=\"*\" raw_post=\"*\">bold</b> <i raw_pre=\"_\">it</i> "
                            "<s raw_pre=\"~\">gone</s> <u>under</u>") == "bold it gone under");
  BOOST_TEST(markup_to_text("<pre raw_pre=\"{code}\">int x = 1;</pre>") == "int x = 1;");
  BOOST_TEST(markup_to_text("<font color=\"#ff0000\">red</font> <blink>!</blink>") == "red !");
  BOOST_TEST(markup_to_text("<B>upper</B>") == "upper");
}

BOOST_AUTO_TEST_CASE(br_and_p_become_newlines) {
  BOOST_TEST(markup_to_text("one<br>two<br/>three<br />four") == "one\ntwo\nthree\nfour");
  BOOST_TEST(markup_to_text("<p>a</p><p>b</p>") == "a\nb");
}

BOOST_AUTO_TEST_CASE(links_keep_text_and_collect_url) {
  auto r = render(
      "see <a href=\"https://example.com/?a=1&amp;b=2\">the site</a> and "
      "<a href=\"https://x.org\"></a>");
  BOOST_TEST(r.text == "see the site and https://x.org");
  BOOST_TEST(r.result.links.size() == 2u);
  BOOST_TEST(r.result.links[0] == "https://example.com/?a=1&b=2");
  BOOST_TEST(r.result.links[1] == "https://x.org");
}

BOOST_AUTO_TEST_CASE(mentions) {
  auto r = render("hi <at id=\"8:alice\">Alice Liddell</at> and <at id=\"*\">all</at>!");
  BOOST_TEST(r.text == "hi @Alice Liddell and @all!");
  BOOST_REQUIRE(r.result.mentions.size() == 2u);
  BOOST_TEST(r.result.mentions[0].id == "8:alice");
  BOOST_TEST(r.result.mentions[0].name == "Alice Liddell");
  BOOST_TEST(r.result.mentions[1].id == "*");
  BOOST_TEST(r.result.mentions[1].name == "all");
  // An empty mention shows the id.
  BOOST_TEST(markup_to_text("<at id=\"8:bob\"></at>") == "@bob");
}

BOOST_AUTO_TEST_CASE(emoticons_and_flags) {
  BOOST_TEST(markup_to_text("<ss type=\"hi\">(wave)</ss>") == "(wave)");
  BOOST_TEST(markup_to_text("good (rocknroll)") == "good (rocknroll)");
  BOOST_TEST(markup_to_text("<flag country=\"ee\">(flag:ee)</flag>") == "(flag:ee)");
}

BOOST_AUTO_TEST_CASE(quotes_leave_content_text) {
  auto r = render(
      "<quote author=\"8:bob\" authorname=\"Bob\" timestamp=\"1600529710\" conversation=\"19:x\" "
      "messageid=\"1\"><legacyquote>[1600529710] Bob: </legacyquote>quoted <b>text</b>"
      "<legacyquote>\n\n&lt;&lt;&lt; </legacyquote></quote>reply text");
  BOOST_TEST(r.text == "reply text");
  BOOST_REQUIRE(r.result.has_quote);
  BOOST_TEST(r.result.quote.author_id == "8:bob");
  BOOST_TEST(r.result.quote.author_name == "Bob");
  BOOST_TEST(r.result.quote.time_us.value() == 1600529710LL * 1000000);
  BOOST_TEST(r.result.quote.text == "quoted text");
  // Mentions and links inside a quote belong to the quoted message.
  auto q = render("<quote author=\"8:a\"><at id=\"8:c\">C</at> <a href=\"u\">u</a></quote>ok");
  BOOST_TEST(q.text == "ok");
  BOOST_TEST(q.result.mentions.empty());
  BOOST_TEST(q.result.links.empty());
}

BOOST_AUTO_TEST_CASE(edit_markers) {
  auto r =
      render("fixed text<e_m ts=\"1526383416\" ts_ms=\"1526383417250\" a=\"alice\" t=\"61\"/>");
  BOOST_TEST(r.text == "fixed text");
  BOOST_TEST(r.result.edit_marker);
  BOOST_TEST(r.result.edit_marker_us.value() == 1526383417250LL * 1000);
  auto s = render("x<e_m ts=\"1526383416\"></e_m>");
  BOOST_TEST(s.text == "x");
  BOOST_TEST(s.result.edit_marker_us.value() == 1526383416LL * 1000000);
  auto only = render("<e_m ts=\"1526383416\"/>");
  BOOST_TEST(only.text.empty());
  BOOST_TEST(!only.result.has_structure());
}

BOOST_AUTO_TEST_CASE(call_partlist) {
  auto r = render(
      "<partlist type=\"ended\" alt=\"\" callId=\"1593784540478\"><part identity=\"8:username\">"
      "<name>Display Name</name><duration>84.82</duration></part><part identity=\"8:username2\">"
      "<name>Display Name 2</name><duration>80</duration></part></partlist>");
  BOOST_REQUIRE(r.result.has_call);
  BOOST_TEST(r.result.call.state == "ended");
  BOOST_TEST(r.result.call.call_id == "1593784540478");
  BOOST_TEST(r.result.call.duration_seconds.value() == 84.82);
  BOOST_REQUIRE(r.result.call.participants.size() == 2u);
  BOOST_TEST(r.result.call.participants[1].id == "8:username2");
  BOOST_TEST(r.result.call.participants[1].name == "Display Name 2");
  BOOST_TEST(r.result.call.participants[1].duration_seconds.value() == 80.0);
  BOOST_TEST(r.text == "Call ended (1:25): Display Name, Display Name 2");
  auto missed = render(
      "<partlist type=\"missed\" alt=\"\"><part identity=\"8:a\"><name>A</name>"
      "</part></partlist>");
  BOOST_TEST(missed.result.call.state == "missed");
  BOOST_TEST(!missed.result.call.duration_seconds.has_value());
  BOOST_TEST(missed.text == "Call missed: A");
}

BOOST_AUTO_TEST_CASE(uriobject_media) {
  auto r = render(
      "<URIObject type=\"Picture.1\" uri=\"https://api/objects/0-d3\" "
      "url_thumbnail=\"https://api/objects/0-d3/views/imgt1\" doc_id=\"0-d3\" width=\"1191\" "
      "height=\"619\">To view this shared photo, go to: <a href=\"https://login\">https://login</a>"
      "<OriginalName v=\"f &amp; g.png\"></OriginalName><FileSize v=\"108188\"></FileSize>"
      "<meta type=\"photo\" originalName=\"other.png\"></meta></URIObject>");
  BOOST_REQUIRE(r.result.attachments.size() == 1u);
  const auto& a = r.result.attachments[0];
  BOOST_TEST(a.kind == "picture");
  BOOST_TEST(a.name == "f & g.png");
  BOOST_TEST(a.size.value() == 108188);
  BOOST_TEST(a.uri == "https://api/objects/0-d3");
  BOOST_TEST(a.thumbnail_uri == "https://api/objects/0-d3/views/imgt1");
  BOOST_TEST(a.doc_id == "0-d3");
  BOOST_TEST(a.width.value() == 1191);
  BOOST_TEST(a.height.value() == 619);
  BOOST_TEST(r.text == "f & g.png");
  BOOST_TEST(r.result.links.empty());  // the login fallback link is no user link

  for (auto [type, kind] : {std::pair{"File.1", "file"},
                            {"Video.1/Message.1", "video"},
                            {"Audio.1/Message.1", "voice_message"},
                            {"Video.1/Flik.1", "flik"},
                            {"Video.2/CallRecording.1", "call_recording"},
                            {"SWIFT.1", "card"}}) {
    auto m = render(std::string("<URIObject type=\"") + type + "\" duration=\"12.5\"/>");
    BOOST_REQUIRE(m.result.attachments.size() == 1u);
    BOOST_TEST(m.result.attachments[0].kind == kind);
    BOOST_TEST(m.result.attachments[0].duration_seconds.value() == 12.5);
  }
  // Numbers no 64-bit integer holds are no size: absent, never a wrapped or undefined cast.
  auto huge = render(
      "<URIObject type=\"Picture.1\" uri=\"u\" width=\"1e95\" height=\"-1e19\">"
      "<FileSize v=\"12.0\"></FileSize></URIObject>");
  BOOST_REQUIRE(huge.result.attachments.size() == 1u);
  BOOST_TEST(!huge.result.attachments[0].width.has_value());
  BOOST_TEST(!huge.result.attachments[0].height.has_value());
  BOOST_TEST(huge.result.attachments[0].size.value() == 12);
  // Without a name the fallback text stays; old self-closing <Title />.
  auto old = render(
      "<URIObject type=\"Picture.1\" uri=\"u\"><Title /><Description />To view "
      "this shared photo</URIObject>");
  BOOST_TEST(old.text == "To view this shared photo");
}

BOOST_AUTO_TEST_CASE(poll_uriobjects) {
  // The form with attributes: options separated by '|', each percent-encoded.
  auto a = render(
      "<URIObject type=\"Poll\" question=\"Where shall we meet?\" "
      "optionsEncoded=\"Fri|Sat%7CSun|Tom &amp; Jerry&apos;s\"></URIObject>");
  BOOST_REQUIRE(a.result.has_poll);
  BOOST_TEST(a.result.poll.question == "Where shall we meet?");
  const std::vector<std::string> options{"Fri", "Sat|Sun", "Tom & Jerry's"};
  BOOST_TEST(a.result.poll.options == options, boost::test_tools::per_element());
  BOOST_TEST(!a.result.poll.multiple_choice.has_value());
  BOOST_TEST(a.text == "Poll: Where shall we meet? (Fri, Sat|Sun, Tom & Jerry's)");
  BOOST_TEST(a.result.attachments.empty());
  BOOST_TEST(a.result.has_structure());

  auto options_only = render("<URIObject type=\"Poll\" optionsEncoded=\"Fri|Sat\"></URIObject>");
  BOOST_TEST(options_only.text == "Poll (Fri, Sat)");
  BOOST_TEST(options_only.result.attachments.empty());
  BOOST_TEST(render("<URIObject type=\"Poll\"/>").text == "Poll");

  // The form Skype's web client sends: the question and answers as elements, the fallback
  // text (a description and a link) replaced by the readable line.
  auto web = render(
      "<URIObject type=\"poll.1\"><Title>Lunch?</Title>\n\n<Description>- Pizza\n- Soup\n"
      "</Description>\nTo vote, go to <a href=\"https://go.skype.com/poll\">Skype</a>"
      "<Settings><MultipleChoice value=\"true\" /></Settings><Question value=\"Lunch?\" />"
      "<Answers><Answer value=\"Pizza\" /><Answer value=\"Soup\" /></Answers></URIObject>");
  BOOST_REQUIRE(web.result.has_poll);
  BOOST_TEST(web.result.poll.question == "Lunch?");
  BOOST_TEST(web.result.poll.options == (std::vector<std::string>{"Pizza", "Soup"}),
             boost::test_tools::per_element());
  BOOST_TEST(web.result.poll.multiple_choice.value_or(false));
  BOOST_TEST(web.text == "Poll: Lunch? (Pizza, Soup)");
  BOOST_TEST(web.result.links.empty());
  BOOST_TEST(web.result.attachments.empty());
  BOOST_TEST(web.result.broken_markup == 0u);
}

BOOST_AUTO_TEST_CASE(uriobjects_with_nothing_in_them_make_no_attachment) {
  BOOST_TEST(render("<URIObject type=\"Picture.1\"></URIObject>").result.attachments.empty());
  BOOST_TEST(render("<URIObject type=\"File.1\">To view this file</URIObject>")
                 .result.attachments.empty());
  auto card = render(
      "<URIObject type=\"SWIFT.1\"><Swift b64=\"eyJ0eXBlIjoibWVzc2FnZS9jYXJkIn0=\"/></URIObject>");
  BOOST_TEST(card.result.attachments.empty());
  BOOST_TEST(!card.result.card_json.empty());
  BOOST_TEST(render("<URIObject type=\"File.1\" uri=\"u\"/>").result.attachments.size() == 1u);
  BOOST_TEST(
      render("<URIObject><OriginalName v=\"a.png\"/></URIObject>").result.attachments.size() == 1u);
}

BOOST_AUTO_TEST_CASE(swift_card) {
  // base64 of {"type":"message/card","attachments":[]}
  auto r = render(
      "<URIObject type=\"SWIFT.1\"><Swift b64=\"eyJ0eXBlIjoibWVzc2FnZS9jYXJkIiwiYXR0"
      "YWNobWVudHMiOltdfQ==\"/></URIObject>");
  BOOST_TEST(r.result.card_json == "{\"type\":\"message/card\",\"attachments\":[]}");
}

BOOST_AUTO_TEST_CASE(contacts_location_files) {
  auto c = render(
      "<contacts><c t=\"s\" s=\"username2\" f=\"Display Name\"></c>"
      "<c t=\"s\" s=\"u3\"/></contacts>");
  BOOST_REQUIRE(c.result.contacts.size() == 2u);
  BOOST_TEST(c.result.contacts[0].id == "8:username2");  // canonical, as every person's id
  BOOST_TEST(c.result.contacts[0].name == "Display Name");
  BOOST_TEST(c.text == "Display Name, u3");
  // A contact of another type keeps its id as written.
  auto other = render("<contacts><c t=\"p\" s=\"+15551234\" f=\"Phone\"/></contacts>");
  BOOST_TEST(other.result.contacts[0].id == "+15551234");

  auto l = render(
      "<location latitude=\"59436810\" longitude=\"24740695\" address=\"Tallinn\">"
      "<a href=\"https://bing\">Kesklinn</a></location>");
  BOOST_REQUIRE(l.result.has_location);
  BOOST_TEST(l.result.location.latitude.value() == 59.43681, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(l.result.location.longitude.value() == 24.740695, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(l.result.location.address == "Tallinn");
  BOOST_TEST(l.text == "Kesklinn");
  BOOST_TEST(l.result.links.empty());

  auto f = render(
      "<files><file index=\"0\" size=\"123\" url=\"https://f/1\">a.pdf</file>"
      "<file index=\"1\" size=\"7\" url=\"https://f/2\">b.txt</file></files>");
  BOOST_REQUIRE(f.result.files.size() == 2u);
  BOOST_TEST(f.result.files[0].name == "a.pdf");
  BOOST_TEST(f.result.files[0].size.value() == 123);
  BOOST_TEST(f.result.files[1].url == "https://f/2");
  BOOST_TEST(f.text == "a.pdf\nb.txt");
}

BOOST_AUTO_TEST_CASE(thread_activity) {
  auto add = render(
      "<addmember><eventtime>1594467205492</eventtime><initiator>8:username"
      "</initiator><target>8:username2</target><target>8:u3</target></addmember>");
  BOOST_REQUIRE(add.result.has_membership);
  BOOST_TEST(add.result.membership.kind == "add_member");
  BOOST_TEST(add.result.membership.initiator == "8:username");
  BOOST_TEST(add.result.membership.targets.size() == 2u);
  BOOST_TEST(add.result.membership.time_us.value() == 1594467205492LL * 1000);
  BOOST_TEST(add.text == "8:username added 8:username2, 8:u3");

  auto del = render(
      "<deletemember><eventtime>1</eventtime><initiator>8:a</initiator>"
      "<target>8:a</target></deletemember>");
  BOOST_TEST(del.result.membership.kind == "delete_member");
  BOOST_TEST(del.text == "8:a left");

  auto topic = render(
      "<topicupdate><eventtime>1594466832367</eventtime><initiator>8:username"
      "</initiator><value>The &amp; Topic</value></topicupdate>");
  BOOST_TEST(topic.result.membership.kind == "topic_update");
  BOOST_TEST(topic.result.membership.value == "The & Topic");
  BOOST_TEST(topic.text == "8:username changed the topic to: The & Topic");

  auto pic = render(
      "<pictureupdate><initiator>8:u</initiator><value>URL@https://api/x</value>"
      "</pictureupdate>");
  BOOST_TEST(pic.result.membership.value == "https://api/x");

  auto role = render(
      "<roleupdate><eventtime>1</eventtime><initiator>8:a</initiator><target>"
      "<id>8:b</id><role>admin</role></target></roleupdate>");
  BOOST_TEST(role.result.membership.kind == "role_update");
  BOOST_TEST(role.result.membership.targets.size() == 1u);
  BOOST_TEST(role.result.membership.targets[0] == "8:b");
  BOOST_TEST(role.result.membership.role == "admin");
  BOOST_TEST(role.text == "8:a made 8:b admin");

  auto hist = render(
      "<historydisclosedupdate><initiator>8:a</initiator><value>true</value>"
      "</historydisclosedupdate>");
  BOOST_TEST(hist.result.membership.kind == "history_disclosed_update");
  BOOST_TEST(hist.result.membership.value == "true");
  auto join = render(
      "<joiningenabledupdate><initiator>8:a</initiator><value>false</value>"
      "</joiningenabledupdate>");
  BOOST_TEST(join.result.membership.kind == "joining_enabled_update");
}

BOOST_AUTO_TEST_CASE(membership_lines_of_members_joining_and_leaving) {
  MembershipInfo joined;
  joined.kind = "member_joined";
  joined.initiator = "8:host";
  joined.targets = {"8:a", "8:b"};
  BOOST_TEST(describe_membership(joined) == "8:a, 8:b joined");
  MembershipInfo left = joined;
  left.kind = "member_left";
  left.targets = {"8:a"};
  BOOST_TEST(describe_membership(left) == "8:a left");
  left.targets.clear();
  BOOST_TEST(describe_membership(left) == "8:host left");
  // The markup's kinds read as before.
  auto add = render("<addmember><initiator>8:a</initiator><target>8:b</target></addmember>");
  BOOST_TEST(describe_membership(add.result.membership) == add.text);
}

BOOST_AUTO_TEST_CASE(ids_that_name_a_person_are_canonical_in_every_form) {
  auto r = render(
      "<quote author=\"bob\" authorname=\"Bob\">x</quote><at id=\"alice\">Alice</at> "
      "<at id=\" https://host/v1/users/ME/contacts/8:live:.cid.d0d1 \"></at> "
      "<at id=\"*\">all</at>");
  BOOST_TEST(r.result.quote.author_id == "8:bob");
  BOOST_REQUIRE(r.result.mentions.size() == 3u);
  BOOST_TEST(r.result.mentions[0].id == "8:alice");
  BOOST_TEST(r.result.mentions[1].id == "8:live:.cid.d0d1");
  BOOST_TEST(r.result.mentions[2].id == "*");
  BOOST_TEST(r.text == "@Alice @live:.cid.d0d1 @all");
  auto call = render(
      "<partlist type=\"ended\"><part identity=\"username\"></part>"
      "<part identity=\"28:bot\"><name>Bot</name></part></partlist>");
  BOOST_TEST(call.result.call.participants[0].id == "8:username");
  BOOST_TEST(call.result.call.participants[1].id == "28:bot");
  BOOST_TEST(call.text == "Call ended: 8:username, Bot");
  auto add = render(
      "<addmember><initiator>live:.cid.0123</initiator><target>8:live:.cid.d0d1</target>"
      "<target>carol</target><target>4:+15551234</target></addmember>");
  BOOST_TEST(add.result.membership.initiator == "8:live:.cid.0123");
  const std::vector<std::string> targets{"8:live:.cid.d0d1", "8:carol", "4:+15551234"};
  BOOST_TEST(add.result.membership.targets == targets, boost::test_tools::per_element());
  BOOST_TEST(add.text == "8:live:.cid.0123 added 8:live:.cid.d0d1, 8:carol, 4:+15551234");
  auto role = render("<roleupdate><target><id>dave</id><role>admin</role></target></roleupdate>");
  BOOST_TEST(role.result.membership.targets.at(0) == "8:dave");
}

BOOST_AUTO_TEST_CASE(incomplete_membership_events_say_so) {
  auto empty = render("<addmember/>");
  BOOST_REQUIRE(empty.result.has_membership);
  BOOST_TEST(empty.result.membership.initiator.empty());
  BOOST_TEST(empty.result.membership.targets.empty());
  BOOST_TEST(empty.text == "Membership change with no details in the export");
  BOOST_TEST(render("<deletemember><eventtime>1</eventtime></deletemember>").text ==
             "Membership change with no details in the export");
  BOOST_TEST(render("<addmember><target>8:b</target></addmember>").text ==
             "Added to the conversation: 8:b");
  BOOST_TEST(render("<deletemember><initiator>8:a</initiator></deletemember>").text ==
             "8:a removed members not named in the export");
  BOOST_TEST(render("<topicupdate><value>Trip</value></topicupdate>").text ==
             "The topic was changed to: Trip");
  BOOST_TEST(render("<topicupdate></topicupdate>").text ==
             "Topic change with no details in the export");
  BOOST_TEST(render("<pictureupdate/>").text == "The conversation picture was changed");
  BOOST_TEST(render("<roleupdate/>").text == "Role change with no details in the export");
  BOOST_TEST(render("<historydisclosedupdate/>").text ==
             "History setting change with no details in the export");
  BOOST_TEST(render("<joiningenabledupdate><value>true</value></joiningenabledupdate>").text ==
             "The setting joining enabled was set to true");
  for (const char* text : {"<addmember/>", "<deletemember></deletemember>", "<roleupdate/>"})
    BOOST_TEST(render(text).text.find("Someone") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(membership_text_names_people_where_names_are_known) {
  MembershipInfo add;
  add.kind = "add_member";
  add.initiator = "8:live:.cid.0123";
  add.targets = {"8:live:.cid.d0d1", "8:carol"};
  const NameOf names = [](std::string_view id) -> std::string {
    if (id == "8:live:.cid.0123") return "Ann";
    if (id == "8:live:.cid.d0d1") return "Dan";
    return {};
  };
  BOOST_TEST(describe_membership(add, names) == "Ann added Dan, 8:carol");
  BOOST_TEST(describe_membership(add) == "8:live:.cid.0123 added 8:live:.cid.d0d1, 8:carol");
  add.targets = {"8:live:.cid.0123"};
  BOOST_TEST(describe_membership(add, names) == "Ann joined");
  MembershipInfo joined;
  joined.kind = "member_joined";
  BOOST_TEST(describe_membership(joined) == "Membership change with no details in the export");
  joined.targets = {"8:live:.cid.d0d1", "8:carol"};
  BOOST_TEST(describe_membership(joined, names) == "Dan, 8:carol joined");
  joined.kind = "member_left";
  joined.targets.clear();
  joined.initiator = "8:live:.cid.0123";
  BOOST_TEST(describe_membership(joined, names) == "Ann left");
  MembershipInfo other;
  other.kind = "member_renamed";
  BOOST_TEST(describe_membership(other) == "Member renamed with no details in the export");
  other.targets = {"8:live:.cid.d0d1"};
  BOOST_TEST(describe_membership(other, names) == "Member renamed Dan");
}

BOOST_AUTO_TEST_CASE(named_entities) {
  BOOST_TEST(markup_to_text("it&apos;s") == "it's");
  BOOST_TEST(markup_to_text("a&nbsp;b") ==
             "a\xC2\xA0"
             "b");
  BOOST_TEST(markup_to_text("a &mdash; b &ndash; c&hellip;") ==
             "a \xE2\x80\x94 b \xE2\x80\x93 c\xE2\x80\xA6");
  BOOST_TEST(markup_to_text("&lt;b&gt; &amp;amp; &quot;q&quot;") == "<b> &amp; \"q\"");
  BOOST_TEST(markup_to_text("&eacute;&Eacute;&euro;&copy;&rarr;") ==
             "\xC3\xA9\xC3\x89\xE2\x82\xAC\xC2\xA9\xE2\x86\x92");
}

BOOST_AUTO_TEST_CASE(numeric_entities) {
  BOOST_TEST(markup_to_text("&#65;&#x42;&#X43;") == "ABC");
  BOOST_TEST(markup_to_text("&#128512;") == "\xF0\x9F\x98\x80");
  BOOST_TEST(markup_to_text("&#x1F600;") == "\xF0\x9F\x98\x80");
  BOOST_TEST(markup_to_text("&#39;") == "'");
  // NUL, surrogates and code points beyond U+10FFFF become U+FFFD.
  for (const char* bad : {"&#0;", "&#xD800;", "&#xDFFF;", "&#x110000;", "&#99999999999999;"}) {
    auto r = render(bad);
    BOOST_TEST(r.text == "\xEF\xBF\xBD", bad);
    BOOST_TEST(r.result.invalid_utf8 == 1u, bad);
  }
}

BOOST_AUTO_TEST_CASE(invalid_entities_are_kept) {
  for (const char* kept : {"&foo;", "&#;", "&#x;", "&#xZZ;", "&amp", "& b", "&#65", "&;", "a&b",
                           "&verylongnamethatisnotanentity;", "&#12a;"})
    BOOST_TEST(markup_to_text(kept) == kept);
}

BOOST_AUTO_TEST_CASE(broken_markup_recovers_text) {
  BOOST_TEST(markup_to_text("<b>unclosed bold") == "unclosed bold");
  BOOST_TEST(markup_to_text("a < b and c > d") == "a < b and c > d");
  BOOST_TEST(markup_to_text("I <3 you") == "I <3 you");
  BOOST_TEST(markup_to_text("x <b") == "x <b");
  BOOST_TEST(markup_to_text("x <b y") == "x <b y");
  BOOST_TEST(markup_to_text("a<<b>c</b>") == "a<c");
  BOOST_TEST(markup_to_text("</i>stray end") == "stray end");
  BOOST_TEST(markup_to_text("<font color=\"red>t</font>") == "t");
  BOOST_TEST(markup_to_text("<!-- note -->visible") == "visible");
  BOOST_TEST(markup_to_text("<b><i>nested</b> after") == "nested after");
  auto r = render("<b>open <quote author=\"x\">q");
  BOOST_TEST(r.text == "open");
  BOOST_TEST(r.result.broken_markup >= 1u);
  auto bare = render("1 < 2");
  BOOST_TEST(bare.result.broken_markup == 1u);
  // Deep nesting does not overflow anything.
  std::string deep;
  for (int i = 0; i < 500; ++i) deep += "<b>";
  deep += "deep";
  BOOST_TEST(markup_to_text(deep) == "deep");
}

BOOST_AUTO_TEST_CASE(control_characters_and_nul) {
  auto r =
      render(std::string("a\x01"
                         "b\0c<b>d\0</b>",
                         14));
  BOOST_TEST(r.text ==
             "a\x01"
             "bcd");
  BOOST_TEST(r.result.nul_removed == 2u);
  BOOST_TEST(markup_to_text("tab\there\r\nnext") == "tab\there\r\nnext");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_replaced) {
  auto r = render("ok \xFF<b>\xC3</b> \xED\xA0\x80 end");
  BOOST_TEST(valid_utf8(r.text));
  BOOST_TEST(r.result.invalid_utf8 >= 3u);
  BOOST_TEST(r.text.find("ok \xEF\xBF\xBD") == 0u);
  BOOST_TEST(markup_to_text("caf\xC3\xA9 <b>\xE2\x82\xAC</b>") == "caf\xC3\xA9 \xE2\x82\xAC");
}

BOOST_AUTO_TEST_CASE(special_scan) {
  BOOST_TEST(find_markup_special("plain text that is long enough for words") ==
             std::string_view::npos);
  BOOST_TEST(find_markup_special("caf\xC3\xA9 na\xC3\xAFve \xF0\x9F\x98\x80") ==
             std::string_view::npos);
  BOOST_TEST(find_markup_special("0123456789abcdef<b>") == 16u);
  BOOST_TEST(find_markup_special("0123456789a&") == 11u);
  BOOST_TEST(find_markup_special(std::string_view("0123456789\0", 11)) == 10u);
  BOOST_TEST(find_markup_special("01234567\xC3") == 8u);
  BOOST_TEST(find_unclean("a<b>&amp;") == std::string_view::npos);
}

BOOST_AUTO_TEST_CASE(attributes) {
  const std::string_view attrs = " type=\"Picture.1\" Doc_Id='x y' width=640 flag";
  BOOST_TEST(find_attribute(attrs, "type").value() == "Picture.1");
  BOOST_TEST(find_attribute(attrs, "doc_id").value() == "x y");
  BOOST_TEST(find_attribute(attrs, "width").value() == "640");
  BOOST_TEST(find_attribute(attrs, "flag").value().empty());
  BOOST_TEST(!find_attribute(attrs, "height").has_value());
  BOOST_TEST(decode_entities("a&amp;b &lt;i&gt; &bogus;") == "a&b <i> &bogus;");
}

BOOST_AUTO_TEST_CASE(display_names) {
  BOOST_TEST(markup_to_text("  <b>Family</b> &amp; friends ") == "Family & friends");
  BOOST_TEST(markup_to_text("Plain") == "Plain");
  BOOST_TEST(markup_to_text("").empty());
}

BOOST_AUTO_TEST_SUITE_END()
