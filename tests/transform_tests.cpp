#define BOOST_TEST_MODULE transform_tests
#include <boost/test/unit_test.hpp>

#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/identity.hpp"
#include "transform/markup.hpp"
#include "transform/transformer.hpp"

using namespace skype_etl;
using namespace skype_etl::detail;
using nlohmann::json;

namespace {

/// Builds a Batch whose RawMessage views point into strings this fixture owns.
struct BatchBuilder {
  std::deque<std::string> storage;
  Batch batch;

  std::string_view keep(std::string_view s) {
    storage.emplace_back(s);
    return storage.back();
  }
  bool owns(std::string_view v) const {
    for (const auto& s : storage)
      if (v.data() >= s.data() && v.data() + v.size() <= s.data() + s.size()) return true;
    return false;
  }

  /// Starts a conversation chunk; following add()s belong to it.
  std::shared_ptr<ConversationMeta> conversation(const std::string& id, bool starts = true) {
    auto meta = std::make_shared<ConversationMeta>();
    meta->id = id;
    ConversationChunk chunk;
    chunk.conversation = meta;
    chunk.first_message = batch.raw.size();
    chunk.starts_conversation = starts;
    batch.chunks.push_back(chunk);
    return meta;
  }

  /// `display_name` nullopt: the file's displayName is null (or missing).
  RawMessage& add(std::string_view type, std::string_view content,
                  std::string_view from = "8:alice",
                  std::optional<std::string_view> display_name = "Alice") {
    if (batch.chunks.empty()) conversation("19:test@thread.skype");
    RawMessage raw;
    raw.id = keep(std::to_string(1000 + batch.raw.size()));
    raw.version = 1630565395224;
    raw.original_arrival_time = keep("2021-09-02T06:49:55.104Z");
    raw.message_type = keep(type);
    raw.content = keep(content);
    raw.conversation_id = keep(batch.chunks.back().conversation->id);
    raw.from = keep(from);
    if (display_name) raw.display_name = keep(*display_name);
    raw.position = static_cast<std::uint32_t>(batch.raw.size());
    batch.raw.push_back(raw);
    ++batch.chunks.back().message_count;
    return batch.raw.back();
  }

  const Message& run(TransformSettings settings = {"alice", "Alice Owner"}) {
    Transformer(std::move(settings)).transform(batch);
    BOOST_REQUIRE_EQUAL(batch.messages.size(), batch.raw.size());
    return batch.messages.back();
  }
};

json details(const Message& m) {
  BOOST_REQUIRE(!m.details_json.empty());
  auto j = json::parse(m.details_json, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "invalid details_json: " << m.details_json);
  return j;
}

bool valid_utf8_no_nul(std::string_view s) {
  return find_unclean(s) == std::string_view::npos;
}

/// Every text field is valid UTF-8 without NUL and details_json parses without \u0000.
void check_clean(const Message& m) {
  for (std::string_view s :
       {m.message_id, m.sender_id, m.sender_name.value_or(""), m.message_type, m.content_raw,
        m.content_text, m.properties_json, std::string_view(m.details_json)})
    BOOST_TEST(valid_utf8_no_nul(s));
  BOOST_TEST(m.details_json.find("\\u0000") == std::string::npos);
  if (!m.details_json.empty())
    BOOST_TEST(!json::parse(m.details_json, nullptr, false).is_discarded());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(transform_tests)

BOOST_AUTO_TEST_CASE(plain_richtext_is_zero_copy) {
  BatchBuilder b;
  b.add("RichText", "  Hello there, how are you?  ");
  const auto before = b.batch.arena.bytes_used();
  const Message& m = b.run();
  BOOST_TEST(m.content_text == "Hello there, how are you?");
  BOOST_TEST(b.owns(m.content_text));
  BOOST_TEST(b.owns(m.content_raw));
  BOOST_TEST(m.content_raw == b.batch.raw[0].content);
  BOOST_TEST(m.details_json.empty());
  BOOST_TEST(m.details_json.capacity() <= std::string().capacity());
  BOOST_TEST(m.attachments.empty());
  BOOST_TEST(b.batch.arena.bytes_used() == before);
  BOOST_TEST(m.message_id == "1000");
  BOOST_TEST(m.version.value() == 1630565395224);
  BOOST_TEST(m.sent_at_us.value() == 1630565395104000LL);
  BOOST_TEST(m.message_type == "RichText");
  BOOST_TEST(!m.is_edited);
  BOOST_TEST(!m.is_deleted);
  BOOST_TEST(b.batch.counters.broken_markup == 0u);
}

BOOST_AUTO_TEST_CASE(rewritten_text_lives_in_the_arena) {
  BatchBuilder b;
  b.add("RichText", "it&apos;s <b>bold</b>");
  b.add("RichText", "Tom & Jerry");  // '&' but nothing to decode: still a view of the input
  b.run();
  const Message& m = b.batch.messages[0];
  BOOST_TEST(m.content_text == "it's bold");
  BOOST_TEST(!b.owns(m.content_text));
  BOOST_TEST(b.batch.arena.bytes_used() >= m.content_text.size());
  BOOST_TEST(b.owns(b.batch.messages[1].content_text));
  // Views survive the batch being moved and another batch being transformed.
  auto moved = std::make_unique<Batch>(std::move(b.batch));
  BatchBuilder other;
  other.add("RichText", "<i>something else entirely</i> &amp; more");
  other.run();
  BOOST_TEST(moved->messages[0].content_text == "it's bold");
}

BOOST_AUTO_TEST_CASE(text_type_is_untouched) {
  BatchBuilder b;
  const std::string body = "x < y &amp; <b>not markup</b> &#65;";
  b.add("Text", body);
  const Message& m = b.run();
  BOOST_TEST(m.content_text == body);
  BOOST_TEST(m.content_raw == body);
  BOOST_TEST(b.owns(m.content_text));
  BOOST_TEST(m.details_json.empty());
}

BOOST_AUTO_TEST_CASE(mentions_links_quote_in_details) {
  BatchBuilder b;
  b.add("RichText",
        "<quote author=\"8:bob\" authorname=\"Bob\" timestamp=\"1600529710\"><legacyquote>"
        "[1600529710] Bob: </legacyquote>old \"words\"<legacyquote>\n\n&lt;&lt;&lt; "
        "</legacyquote></quote><at id=\"8:carol\">Carol</at> see "
        "<a href=\"https://example.com/a?b=1&amp;c=2\">this</a>");
  const Message& m = b.run();
  BOOST_TEST(m.content_text == "@Carol see this");
  auto d = details(m);
  BOOST_TEST(d["mentions"][0]["id"] == "8:carol");
  BOOST_TEST(d["mentions"][0]["name"] == "Carol");
  BOOST_TEST(d["links"][0] == "https://example.com/a?b=1&c=2");
  BOOST_TEST(d["quote"]["author_id"] == "8:bob");
  BOOST_TEST(d["quote"]["author_name"] == "Bob");
  BOOST_TEST(d["quote"]["time"] == "2020-09-19T15:35:10Z");
  BOOST_TEST(d["quote"]["text"] == "old \"words\"");
  check_clean(m);
}

BOOST_AUTO_TEST_CASE(edits) {
  BatchBuilder b;
  auto& r1 = b.add("RichText", "new text");
  r1.edit_time = "1630565399000";
  auto& r2 =
      b.add("RichText", "fixed<e_m ts=\"1526383416\" ts_ms=\"1526383417250\" a=\"x\" t=\"61\"/>");
  auto& r3 = b.add("RichText", "Edited previous message: corrected");
  auto& r4 = b.add("RichText", "float edit");
  r4.edit_time = "1630565399000.0";
  (void)r2;
  (void)r3;
  b.run();
  const auto& m = b.batch.messages;
  BOOST_TEST(m[0].is_edited);
  BOOST_TEST(m[0].edited_at_us.value() == 1630565399000LL * 1000);
  BOOST_TEST(m[1].is_edited);
  BOOST_TEST(m[1].edited_at_us.value() == 1526383417250LL * 1000);
  BOOST_TEST(m[1].content_text == "fixed");
  BOOST_TEST(m[2].is_edited);
  BOOST_TEST(m[2].content_text == "corrected");
  BOOST_TEST(b.owns(m[2].content_text));
  BOOST_TEST(m[3].edited_at_us.value() == 1630565399000LL * 1000);
}

BOOST_AUTO_TEST_CASE(deletions) {
  BatchBuilder b;
  auto& r1 = b.add("RichText", "");
  r1.delete_time = "1630565400000";
  b.add("RichText", "");
  b.add("RichText", "<e_m ts=\"1526383416\" ts_ms=\"1526383417250\" a=\"x\" t=\"61\"/>");
  b.add("RichText", "still here");
  b.run();
  const auto& m = b.batch.messages;
  BOOST_TEST(m[0].is_deleted);
  BOOST_TEST(m[0].deleted_at_us.value() == 1630565400000LL * 1000);
  BOOST_TEST(m[1].is_deleted);
  BOOST_TEST(m[2].is_deleted);
  BOOST_TEST(m[2].content_text.empty());
  BOOST_TEST(m[2].deleted_at_us.value() == 1526383417250LL * 1000);
  BOOST_TEST(!m[3].is_deleted);
}

BOOST_AUTO_TEST_CASE(owner_recognised_with_and_without_prefix) {
  for (std::string owner_setting : {"alice", "8:alice", " https://h/contacts/8:alice"}) {
    BatchBuilder b;
    b.add("RichText", "one", "8:alice", std::nullopt);
    b.add("RichText", "two", "alice", std::nullopt);
    b.add("RichText", "three", "8:bob", std::nullopt);
    b.add("RichText", "four", "bob", "Bob");
    b.add("RichText", "five", "https://host/v1/users/ME/contacts/8:alice", std::nullopt);
    b.add("RichText", "six", "bob", "Bob");
    b.add("RichText", "seven", "live:.cid.0123", "Lee");
    b.run({owner_setting, "Me Myself"});
    const auto& m = b.batch.messages;
    BOOST_TEST(m[0].sender_id == "8:alice");
    BOOST_TEST(m[0].sender_raw.empty());  // as written: NULL in the database
    BOOST_TEST(b.owns(m[0].sender_id));   // a view of the input, no copy
    BOOST_TEST(m[0].sender_name.value_or("?") == "Me Myself");
    BOOST_TEST(m[1].sender_id == "8:alice");  // one id per person
    BOOST_TEST(m[1].sender_raw == "alice");
    BOOST_TEST(m[1].sender_name.value_or("?") == "Me Myself");
    BOOST_TEST(!m[2].sender_name.has_value());
    BOOST_TEST(m[3].sender_id == "8:bob");
    BOOST_TEST(m[3].sender_raw == "bob");
    BOOST_TEST(m[3].sender_name.value_or("?") == "Bob");
    BOOST_TEST(m[4].sender_id == "8:alice");
    BOOST_TEST(m[4].sender_raw == "https://host/v1/users/ME/contacts/8:alice");
    BOOST_TEST(b.owns(m[4].sender_id));  // the URL's end, no copy
    BOOST_TEST(m[4].sender_name.value_or("?") == "Me Myself");
    BOOST_TEST(m[5].sender_id == "8:bob");
    BOOST_TEST(m[6].sender_id == "8:live:.cid.0123");
    BOOST_TEST(m[6].sender_raw == "live:.cid.0123");
    BOOST_TEST(!b.owns(*m[0].sender_name));  // stored in the batch's arena
  }
  BOOST_TEST(canonical_person_id("8:live:.cid.0123") == "8:live:.cid.0123");
  BOOST_TEST(canonical_person_id("live:.cid.0123") == "8:live:.cid.0123");
  // The settings may carry the prefix too.
  BatchBuilder b;
  b.add("RichText", "x", "alice", std::nullopt);
  b.run({"8:alice", "Owner"});
  BOOST_TEST(b.batch.messages[0].sender_name.value_or("?") == "Owner");
}

BOOST_AUTO_TEST_CASE(empty_display_names_stay_empty_and_null_stays_null) {
  BatchBuilder b;
  b.add("RichText", "a", "8:bob", "");
  b.add("RichText", "b", "8:bob", std::nullopt);
  b.add("RichText", "c", "8:alice", "");            // the owner's "" is a name too
  b.add("RichText", "d", "8:alice", std::nullopt);  // only null gets --user-display-name
  b.run({"alice", "Me"});
  const auto& m = b.batch.messages;
  BOOST_TEST(m[0].sender_name.has_value());
  BOOST_TEST(m[0].sender_name.value_or("?") == "");
  BOOST_TEST(!m[1].sender_name.has_value());
  BOOST_TEST(m[2].sender_name.value_or("?") == "");
  BOOST_TEST(m[3].sender_name.value_or("?") == "Me");

  BatchBuilder no_setting;
  no_setting.add("RichText", "d", "8:alice", std::nullopt);
  no_setting.run({"alice", ""});
  BOOST_TEST(!no_setting.batch.messages[0].sender_name.has_value());
}

BOOST_AUTO_TEST_CASE(nul_characters_are_removed_everywhere) {
  BatchBuilder b;
  auto& r = b.add("RichText", std::string("he\0llo <b>x\0</b>", 16), std::string("8:a\0b", 5),
                  std::string("N\0ame", 5));
  r.properties_json = b.keep(R"({"a":"x\u0000y","b":"\\u0000 literal"})");
  b.add("Text", std::string("plain\0text", 10));
  b.add("RichText", std::string("nul\0only", 8));
  b.run();
  const auto& m = b.batch.messages;
  BOOST_TEST(m[0].content_text == "hello x");
  BOOST_TEST(m[0].content_raw == "hello <b>x</b>");
  BOOST_TEST(m[0].sender_id == "8:ab");
  BOOST_TEST(m[0].sender_name.value_or("?") == "Name");
  BOOST_TEST(m[0].properties_json == R"({"a":"xy","b":"\\u0000 literal"})");
  BOOST_TEST(m[1].content_text == "plaintext");
  BOOST_TEST(m[2].content_text == "nulonly");
  BOOST_TEST(m[2].content_raw == "nulonly");
  BOOST_TEST(b.batch.counters.nul_characters_removed == 7u);
  for (const auto& msg : m) check_clean(msg);
}

BOOST_AUTO_TEST_CASE(call_event) {
  BatchBuilder b;
  b.add("Event/Call",
        "<partlist type=\"ended\" alt=\"\" callId=\"1593784540478\"><part identity=\"8:username\">"
        "<name>Display Name</name><duration>84.82</duration></part></partlist>");
  const Message& m = b.run();
  auto d = details(m);
  BOOST_TEST(d["call"]["state"] == "ended");
  BOOST_TEST(d["call"]["duration_seconds"].get<double>() == 84.82);
  BOOST_TEST(d["call"]["participants"][0]["id"] == "8:username");
  BOOST_TEST(d["call"]["participants"][0]["name"] == "Display Name");
  BOOST_TEST(m.content_text.find('<') == std::string_view::npos);
}

BOOST_AUTO_TEST_CASE(media_attachments) {
  BatchBuilder b;
  b.add(
      "RichText/Media_GenericFile",
      "<URIObject uri=\"https://api/objects/0-d3\" url_thumbnail=\"https://api/t\" type=\"File.1\""
      " doc_id=\"0-d3\">To view this file, go to: <a href=\"https://login\">https://login</a>"
      "<OriginalName v=\"f.txt\"></OriginalName><FileSize v=\"447\"></FileSize></URIObject>");
  auto& r = b.add("RichText/Media_Video", "");
  r.ams_references_json = b.keep(R"(["0-doc-1"])");
  // --with-media: the export's metadata, shared by its batches, looked up by doc id.
  auto media = std::make_shared<MediaIndex>();
  media->by_doc_id["0-doc-1"] = MediaMetadata{"clip.mp4", "video/mp4", 2048};
  media->by_doc_id["0-d3"] = MediaMetadata{"other.txt", "text/plain", 9};
  b.batch.media = media;
  b.add("RichText/Media_CallRecording",
        "<URIObject type=\"Video.2/CallRecording.1\" uri=\"u\" "
        "duration=\"61.5\"/>");
  b.run();
  const auto& m = b.batch.messages;
  BOOST_REQUIRE(m[0].attachments.size() == 1u);
  BOOST_TEST(m[0].attachments[0].kind == "file");
  BOOST_TEST(m[0].attachments[0].name == "f.txt");
  BOOST_TEST(m[0].attachments[0].size.value() == 447);
  BOOST_TEST(m[0].content_text == "f.txt");
  // The message's own markup wins; the metadata fills what it leaves out.
  BOOST_TEST(m[0].attachments[0].content_type == "text/plain");
  BOOST_REQUIRE(m[1].attachments.size() == 1u);
  BOOST_TEST(m[1].attachments[0].kind == "video");
  BOOST_TEST(m[1].attachments[0].doc_id == "0-doc-1");
  BOOST_TEST(m[1].attachments[0].name == "clip.mp4");
  BOOST_TEST(m[1].attachments[0].content_type == "video/mp4");
  BOOST_TEST(m[1].attachments[0].size.value() == 2048);
  BOOST_REQUIRE(m[2].attachments.size() == 1u);
  BOOST_TEST(m[2].attachments[0].kind == "call_recording");
  BOOST_TEST(m[2].attachments[0].duration_seconds.value() == 61.5);
}

BOOST_AUTO_TEST_CASE(thread_activity_membership) {
  BatchBuilder b;
  b.add("ThreadActivity/AddMember",
        "<addmember><eventtime>1594467205492</eventtime><initiator>8:username</initiator>"
        "<target>8:username2</target></addmember>");
  const Message& m = b.run();
  auto d = details(m);
  BOOST_TEST(d["membership"]["kind"] == "add_member");
  BOOST_TEST(d["membership"]["initiator"] == "8:username");
  BOOST_TEST(d["membership"]["targets"][0] == "8:username2");
  BOOST_TEST(d["membership"]["time"] == "2020-07-11T11:33:25.492Z");
  BOOST_TEST(m.content_text == "8:username added 8:username2");

  // An empty event says so, and names no initiator.
  BatchBuilder e;
  e.add("ThreadActivity/AddMember", "<addmember/>", "19:test@thread.skype", "");
  const Message& empty = e.run();
  auto ed = details(empty);
  BOOST_TEST(ed["membership"]["kind"] == "add_member");
  BOOST_TEST(!ed["membership"].contains("initiator"));
  BOOST_TEST(ed["membership"]["targets"].empty());
  BOOST_TEST(empty.content_text == "Membership change with no details in the export");
  // Ids in bare form come out canonical, in details and text alike.
  BatchBuilder c;
  c.add("ThreadActivity/DeleteMember",
        "<deletemember><initiator>live:.cid.0123</initiator><target>bob</target>"
        "</deletemember>");
  const Message& del = c.run();
  auto dd = details(del);
  BOOST_TEST(dd["membership"]["initiator"] == "8:live:.cid.0123");
  BOOST_TEST(dd["membership"]["targets"][0] == "8:bob");
  BOOST_TEST(del.content_text == "8:live:.cid.0123 removed 8:bob");
}

BOOST_AUTO_TEST_CASE(contacts_location_files_details) {
  BatchBuilder b;
  b.add("RichText/Contacts",
        "<contacts><c t=\"s\" s=\"username2\" f=\"Display Name\"></c></contacts>");
  b.add("RichText/Location",
        "<location latitude=\"59436810\" longitude=\"24740695\" "
        "address=\"Kesklinn\"><a href=\"https://bing\">Kesklinn</a></location>");
  b.add("RichText/Files",
        "<files><file index=\"0\" size=\"123\" url=\"https://f\">a.pdf</file></files>");
  b.run();
  const auto& m = b.batch.messages;
  auto c = details(m[0]);
  BOOST_TEST(c["contacts"][0]["id"] == "8:username2");
  BOOST_TEST(c["contacts"][0]["name"] == "Display Name");
  auto l = details(m[1]);
  BOOST_TEST(l["location"]["latitude"].get<double>() == 59.43681,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(l["location"]["address"] == "Kesklinn");
  auto f = details(m[2]);
  BOOST_TEST(f["files"][0]["name"] == "a.pdf");
  BOOST_TEST(f["files"][0]["size"] == 123);
}

BOOST_AUTO_TEST_CASE(reactions_poll_notice_card) {
  BatchBuilder b;
  auto& r1 = b.add("RichText", "liked");
  r1.emotions_json = b.keep(
      R"([{"key":"like","users":[{"mri":"8:bob","time":1630565399000,"value":"x\u0000"}]}])");
  auto& r2 = b.add("Poll", "");
  r2.properties_json =
      b.keep(R"({"poll":"{\"question\":\"Lunch?\",\"options\":[\"yes\",\"no\"]}"})");
  b.add("Notice", R"([{"title":"Hello","body":"<b>x</b>"}])");
  b.add("PopCard", R"([{"type":"card"}])");
  b.add(
      "RichText/Media_Card",
      "<URIObject type=\"SWIFT.1\"><Swift b64=\"eyJ0eXBlIjoibWVzc2FnZS9jYXJkIn0=\"/></URIObject>");
  b.run();
  const auto& m = b.batch.messages;
  auto d0 = details(m[0]);
  BOOST_TEST(d0["reactions"][0]["key"] == "like");
  BOOST_TEST(d0["reactions"][0]["users"][0]["value"] == "x");
  auto d1 = details(m[1]);
  BOOST_TEST(d1["poll"]["question"] == "Lunch?");
  auto d2 = details(m[2]);
  BOOST_TEST(d2["notice"][0]["title"] == "Hello");
  auto d3 = details(m[3]);
  BOOST_TEST(d3["card"][0]["type"] == "card");
  auto d4 = details(m[4]);
  BOOST_TEST(d4["card"]["type"] == "message/card");
  for (const auto& msg : m) check_clean(msg);
}

// Exports give properties.emotions (and urlpreviews, forwardMetadata, callLog, poll) either
// as JSON or as a string holding the JSON: both give the same details.
BOOST_AUTO_TEST_CASE(json_inside_a_string_gives_the_same_details_as_json) {
  const json emotions = json::parse(
      R"([{"key":"like","users":[{"mri":"8:bob","time":1600000000000,"value":"1600000000000"}]}])");
  const json properties = json::parse(
      R"({"urlpreviews":[{"url":"https://example.com","title":"Example"}],)"
      R"("forwardMetadata":{"conversationId":"19:a@thread.skype","messageId":"1"},)"
      R"("callLog":{"callState":"missed","originator":"8:bob"},"poll":{"question":"Lunch?"},)"
      R"("edittime":"1630565399000"})");
  json stringified = properties;
  for (const char* key : {"urlpreviews", "forwardMetadata", "callLog", "poll"})
    stringified[key] = properties[key].dump();
  BatchBuilder b;
  b.add("RichText", "array").emotions_json = b.keep(emotions.dump());
  b.add("RichText", "string").emotions_json = b.keep(json(emotions.dump()).dump());
  b.add("RichText", "empty in a string").emotions_json = b.keep(R"("[]")");
  b.add("RichText", "no JSON in the string").emotions_json = b.keep(R"("like")");
  b.add("RichText", "properties as JSON").properties_json = b.keep(properties.dump());
  b.add("RichText", "properties as strings").properties_json = b.keep(stringified.dump());
  b.run();
  const auto& m = b.batch.messages;
  BOOST_TEST(details(m[0])["reactions"] == emotions);
  BOOST_TEST(details(m[1])["reactions"] == emotions);
  BOOST_TEST(m[2].details_json.empty());
  BOOST_TEST(m[3].details_json.empty());
  const json d4 = details(m[4]);
  BOOST_TEST(d4["url_previews"] == properties["urlpreviews"]);
  BOOST_TEST(d4["forward_metadata"] == properties["forwardMetadata"]);
  BOOST_TEST(d4["call_log"] == properties["callLog"]);
  BOOST_TEST(d4["poll"] == properties["poll"]);
  BOOST_TEST(details(m[5]) == d4);
  for (const auto& msg : m) check_clean(msg);
}

BOOST_AUTO_TEST_CASE(polls_keep_question_options_and_votes) {
  BatchBuilder b;
  auto& poll = b.add("Poll",
                     "<URIObject type=\"Poll\" question=\"Where shall we meet?\" "
                     "optionsEncoded=\"Fri|Sat\"></URIObject>");
  poll.properties_json = b.keep(R"({"poll":"{\"votes\":{\"Fri\":[\"8:bob\"]}}"})");
  b.add("RichText",
        "<URIObject type=\"poll.1\"><Title>Lunch?</Title><Description>- Pizza\n- Soup"
        "</Description><Settings><MultipleChoice value=\"false\" /></Settings><Question "
        "value=\"Lunch?\" /><Answers><Answer value=\"Pizza\" /><Answer value=\"Soup\" />"
        "</Answers></URIObject>");
  b.add("Poll", "<URIObject type=\"Poll\" optionsEncoded=\"Fri|Sat\"></URIObject>");
  b.add("RichText/Media_Card",
        "<URIObject type=\"SWIFT.1\"><Swift b64=\"eyJ0eXBlIjoibWVzc2FnZS9jYXJkIn0=\"/>"
        "</URIObject>");
  b.run();
  const auto& m = b.batch.messages;
  BOOST_TEST(m[0].content_text == "Poll: Where shall we meet? (Fri, Sat)");
  const json d0 = details(m[0]);
  BOOST_TEST(d0["poll"]["question"] == "Where shall we meet?");
  BOOST_TEST(d0["poll"]["options"] == json::parse(R"(["Fri","Sat"])"));
  BOOST_TEST(d0["poll"]["votes"]["Fri"][0] == "8:bob");  // from properties.poll
  BOOST_TEST(m[0].attachments.empty());
  BOOST_TEST(m[1].content_text == "Poll: Lunch? (Pizza, Soup)");
  BOOST_TEST(
      details(m[1])["poll"] ==
      json::parse(R"({"question":"Lunch?","options":["Pizza","Soup"],"multiple_choice":false})"));
  BOOST_TEST(m[1].attachments.empty());
  BOOST_TEST(m[2].content_text == "Poll (Fri, Sat)");
  BOOST_TEST(details(m[2])["poll"] == json::parse(R"({"options":["Fri","Sat"]})"));
  BOOST_TEST(m[2].attachments.empty());
  // A card is in details.card: no attachment row with nothing in it.
  BOOST_TEST(m[3].attachments.empty());
  BOOST_TEST(details(m[3])["card"]["type"] == "message/card");
  for (const auto& msg : m) check_clean(msg);
}

BOOST_AUTO_TEST_CASE(json_bodies_become_details_and_a_readable_line) {
  BatchBuilder b;
  b.add("ThreadActivity/MemberJoined",
        R"({"eventtime":1606351443080,"initiator":"8:orgid:host",)"
        R"("members":[{"id":"8:acs:guest","friendlyname":"Guest"}]})");
  b.add(
      "ThreadActivity/MemberLeft",
      R"( {"eventtime":"1606340755385","initiator":"8:acs:guest","members":[{"id":"8:acs:guest","friendlyname":""}]} )");
  b.add("ThreadActivity/AddMember",
        R"({"initiator":"8:alice","members":[{"id":"8:bob"},"8:carol"]})");
  b.add("ThreadActivity/AddMember",
        "<addmember><initiator>8:alice</initiator><target>8:bob</target><target>8:carol</target>"
        "</addmember>");
  b.add("ThreadActivity/DeleteMember", R"({"initiator":"8:alice","targets":["8:bob"]})");
  b.add("Notice", R"([{"title":"Hello","body":"<b>x</b> &amp; y"}])");
  b.add("PopCard", R"([{"content":{"title":"Try this"}}])");
  b.add("Poll", R"({"question":"Lunch?","options":[{"text":"Pizza","votes":2},{"text":"Soup"}]})");
  b.add("Custom/Event", R"({"state":"done","eventtime":1})");
  b.add("Custom/Event", "[]");
  b.add("RichText", R"({"typed":"by a person"})");  // written text is never taken for JSON
  b.add("Text", "[1, 2]");
  b.add("ThreadActivity/TopicUpdate", "{not json at all");
  b.run();
  const auto& m = b.batch.messages;

  BOOST_TEST(m[0].content_text == "8:acs:guest joined");
  json d = details(m[0]);
  BOOST_TEST(d["membership"] ==
             json::parse(R"({"kind":"member_joined","initiator":"8:orgid:host",)"
                         R"("targets":["8:acs:guest"],"time":"2020-11-26T00:44:03.080Z"})"));
  BOOST_TEST(d["body"]["members"][0]["friendlyname"] == "Guest");  // nothing dropped
  BOOST_TEST(!d.contains("unknown_type"));
  BOOST_TEST(m[1].content_text == "8:acs:guest left");
  BOOST_TEST(details(m[1])["membership"]["kind"] == "member_left");
  BOOST_TEST(details(m[1])["membership"]["time"] == "2020-11-25T21:45:55.385Z");
  // The same membership in JSON and in markup: the same details.membership and text.
  BOOST_TEST(m[2].content_text == "8:alice added 8:bob, 8:carol");
  BOOST_TEST(details(m[2])["membership"] == details(m[3])["membership"]);
  BOOST_TEST(m[2].content_text == m[3].content_text);
  BOOST_TEST(m[4].content_text == "8:alice removed 8:bob");
  BOOST_TEST(details(m[4])["membership"]["kind"] == "delete_member");

  BOOST_TEST(m[5].content_text == "Hello - x & y");
  BOOST_TEST(details(m[5])["notice"][0]["title"] == "Hello");
  BOOST_TEST(m[6].content_text == "Try this");
  BOOST_TEST(details(m[6])["card"][0]["content"]["title"] == "Try this");
  BOOST_TEST(m[7].content_text == "Poll: Lunch? (Pizza, Soup)");
  BOOST_TEST(details(m[7])["poll"]["options"][0]["votes"] == 2);

  // Unknown types: parsed, still flagged and counted; a line from what the JSON says.
  BOOST_TEST(m[8].content_text == "eventtime: 1, state: done");
  BOOST_TEST(details(m[8])["body"]["state"] == "done");
  BOOST_TEST(details(m[8])["unknown_type"] == true);
  BOOST_TEST(m[9].content_text == "");
  BOOST_TEST(details(m[9])["unknown_type"] == true);
  BOOST_TEST(b.batch.counters.unknown_types.at("Custom/Event") == 2u);

  BOOST_TEST(m[10].content_text == R"({"typed":"by a person"})");
  BOOST_TEST(m[10].details_json.empty());
  BOOST_TEST(m[11].content_text == "[1, 2]");
  BOOST_TEST(m[12].content_text == "{not json at all");  // not JSON: kept as text
  for (std::size_t i = 0; i < 10; ++i) {
    BOOST_TEST_CONTEXT("message " << i) {
      BOOST_TEST(m[i].content_raw == b.batch.raw[i].content);
      BOOST_TEST(m[i].content_text.find('{') == std::string_view::npos);
      BOOST_TEST(!m[i].is_deleted);
    }
  }
  for (const auto& msg : m) check_clean(msg);
}

BOOST_AUTO_TEST_CASE(unknown_types_are_kept_and_counted) {
  BatchBuilder b;
  b.add("Control/Typing", "<b>hey</b>");
  b.add("Control/Typing", "again");
  b.add("RichText", "known");
  b.run();
  const auto& m = b.batch.messages;
  BOOST_TEST(m[0].content_text == "hey");
  BOOST_TEST(details(m[0])["unknown_type"] == true);
  BOOST_TEST(details(m[1])["unknown_type"] == true);
  BOOST_TEST(m[2].details_json.empty());
  BOOST_TEST(b.batch.counters.unknown_types.at("Control/Typing") == 2u);
  BOOST_TEST(b.batch.counters.unknown_types.size() == 1u);
}

BOOST_AUTO_TEST_CASE(timestamps_and_flags) {
  BatchBuilder b;
  auto& r1 = b.add("RichText", "a");
  r1.original_arrival_time = "2021-09-01T18:29:33.92Z";
  auto& r2 = b.add("RichText", "b");
  r2.original_arrival_time = "2021-09-01T18:29:33Z";
  r2.is_server_generated = true;
  auto& r3 = b.add("RichText", "c");
  r3.original_arrival_time = "not a time";
  b.run();
  const auto& m = b.batch.messages;
  BOOST_TEST(m[0].sent_at_us.value() == 1630520973920000LL);
  BOOST_TEST(m[1].sent_at_us.value() == 1630520973000000LL);
  BOOST_TEST(m[1].is_server_generated);
  BOOST_TEST(!m[2].sent_at_us.has_value());
  BOOST_TEST(b.batch.counters.invalid_timestamps == 1u);
  BOOST_TEST(b.batch.counters.broken_markup == 0u);
}

BOOST_AUTO_TEST_CASE(invalid_timestamps_keep_their_raw_value_and_the_first_place) {
  BatchBuilder b;
  b.conversation("19:first@thread.skype")->index = 4;
  b.add("RichText", "on time");
  b.conversation("19:second@thread.skype")->index = 5;
  b.add("RichText", "also on time");
  auto& bad = b.add("RichText", "bad time");
  bad.original_arrival_time = b.keep("yesterday at noon");
  bad.position = 7;
  bad.offset = 123456789012ULL;
  auto& missing = b.add("RichText", "no time");
  missing.original_arrival_time = {};
  auto& number = b.add("RichText", "a number");
  number.original_arrival_time = b.keep("1630565395224");
  b.run();
  const auto& m = b.batch.messages;
  const auto& c = b.batch.counters;
  BOOST_TEST(c.invalid_timestamps == 3u);
  BOOST_REQUIRE(c.first_invalid_timestamp.has_value());
  BOOST_TEST(c.first_invalid_timestamp->conversation_id == "19:second@thread.skype");
  BOOST_TEST(c.first_invalid_timestamp->conversation_index == 5u);
  BOOST_TEST(c.first_invalid_timestamp->message_index == 7u);
  BOOST_TEST(c.first_invalid_timestamp->byte_offset == 123456789012ULL);
  BOOST_TEST(c.first_invalid_timestamp->raw_value == "yesterday at noon");
  // The messages are kept, with NULL sent_at and the value as found.
  BOOST_TEST(!m[2].sent_at_us.has_value());
  BOOST_TEST(m[2].content_text == "bad time");
  BOOST_TEST(details(m[2])["original_arrival_time"] == "yesterday at noon");
  BOOST_TEST(!m[3].sent_at_us.has_value());
  BOOST_TEST(m[3].details_json.empty());  // nothing was there to keep
  BOOST_TEST(details(m[4])["original_arrival_time"] == "1630565395224");
  BOOST_TEST(m[0].details_json.empty());
  for (const auto& msg : m) check_clean(msg);

  // A missing value first: the place says so with an empty raw value.
  BatchBuilder first_missing;
  first_missing.add("RichText", "x").original_arrival_time = {};
  first_missing.add("RichText", "y").original_arrival_time = "nope";
  first_missing.run();
  BOOST_REQUIRE(first_missing.batch.counters.first_invalid_timestamp.has_value());
  BOOST_TEST(first_missing.batch.counters.first_invalid_timestamp->raw_value.empty());
  BOOST_TEST(first_missing.batch.counters.first_invalid_timestamp->message_index == 0u);

  BatchBuilder fine;
  fine.add("RichText", "ok");
  fine.run();
  BOOST_TEST(!fine.batch.counters.first_invalid_timestamp.has_value());
}

BOOST_AUTO_TEST_CASE(conversation_rows) {
  BatchBuilder b;
  auto group = b.conversation("19:abc@thread.skype");
  group->display_name = "<b>Family</b> &amp; friends";
  group->topic = "Topic <i>x</i>";
  group->members = {"8:usernameC",
                    "usernameA",
                    "8:usernameA",
                    " usernameC ",
                    "https://host/v1/users/ME/contacts/8:usernameE",
                    "19:abc@thread.skype"};
  group->properties_json = R"({"conversationblocked":false})";
  group->thread_properties_json = R"({"membercount":3})";
  b.add("RichText", "hi", "8:usernameD", "D");
  b.add("ThreadActivity/TopicUpdate", "<topicupdate><value>x</value></topicupdate>",
        "19:abc@thread.skype", "Family");  // the thread itself: no member
  b.add("RichText", "hi", "usernameE", "E");
  auto topic_only = b.conversation("19:def@thread.skype");
  topic_only->topic = "Only &amp; topic";
  b.add("RichText", "x");
  b.conversation("8:live:bob");
  b.add("RichText", "hey", "8:live:bob", "Bob Builder");
  b.conversation("8:live:carol");
  b.add("RichText", "mine", "8:alice", std::nullopt);
  b.conversation("28:concierge");
  b.conversation("48:calllogs");
  b.conversation("4:+15551234");
  b.conversation("guest:someone");
  b.conversation("weird");
  b.conversation("19:continued@thread.skype", false);
  b.run();
  const auto& rows = b.batch.conversations;
  BOOST_REQUIRE_EQUAL(rows.size(), 9u);
  BOOST_TEST(rows[0].conversation_id == "19:abc@thread.skype");
  BOOST_TEST(rows[0].conversation_id.data() == group->id.data());
  BOOST_TEST(rows[0].conversation_type == "group");
  BOOST_TEST(rows[0].display_name.value_or("?") == "Family & friends");
  BOOST_TEST(rows[0].topic == "Topic x");
  BOOST_TEST(rows[0].properties_json == group->properties_json);
  BOOST_TEST(rows[0].thread_properties_json == group->thread_properties_json);
  const std::vector<std::string> members{"8:usernameC", "8:usernameA", "8:usernameE",
                                         "8:usernameD"};
  BOOST_TEST(rows[0].members == members, boost::test_tools::per_element());
  BOOST_TEST(rows[1].display_name.value_or("?") == "Only & topic");
  BOOST_TEST(rows[2].conversation_type == "one_to_one");
  BOOST_TEST(rows[2].display_name.value_or("?") == "Bob Builder");
  BOOST_TEST(rows[3].display_name.value_or("?") == "live:carol");
  BOOST_TEST(rows[4].conversation_type == "bot");
  BOOST_TEST(rows[5].conversation_type == "system");
  BOOST_TEST(rows[6].conversation_type == "phone");
  BOOST_TEST(rows[7].conversation_type == "guest");
  BOOST_TEST(rows[8].conversation_type == "unknown");
}

BOOST_AUTO_TEST_CASE(conversation_display_name_given_as_empty_is_kept) {
  BatchBuilder b;
  auto empty = b.conversation("19:empty@thread.skype");
  empty->display_name = "";
  empty->topic = "A topic";
  b.add("RichText", "x");
  auto null_name = b.conversation("19:null@thread.skype");
  null_name->topic = "A topic";  // null: falls back to the topic as before
  b.add("RichText", "x");
  b.conversation("19:nothing@thread.skype");  // nothing names it
  b.add("RichText", "x");
  auto one = b.conversation("8:live:dan");
  one->display_name = "";
  b.add("RichText", "hi", "8:live:dan", "Dan");
  b.conversation("8:live:erin");
  b.add("RichText", "hi", "8:live:erin", "");  // a party named "" does not name the chat
  b.add("RichText", "hi", "8:live:erin", "Erin");
  b.run();
  const auto& rows = b.batch.conversations;
  BOOST_REQUIRE_EQUAL(rows.size(), 5u);
  BOOST_TEST(rows[0].display_name.has_value());
  BOOST_TEST(rows[0].display_name.value_or("?") == "");
  BOOST_TEST(rows[1].display_name.value_or("?") == "A topic");
  BOOST_TEST(!rows[2].display_name.has_value());
  BOOST_TEST(rows[3].display_name.value_or("?") == "");
  BOOST_TEST(rows[4].display_name.value_or("?") == "Erin");
}

BOOST_AUTO_TEST_CASE(real_fragments_file) {
  const std::filesystem::path path =
      std::filesystem::path(SKYPE_ETL_SOURCE_DIR) /
      "../shared/samples/suurjaak__Skyperious__content_fragments.jsonl";
  if (!std::filesystem::exists(path)) {
    BOOST_TEST_MESSAGE("skipped: " << path << " is absent");
    return;
  }
  std::ifstream in(path);
  std::string line;
  BatchBuilder b;
  std::vector<std::string> types;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto row = json::parse(line);
    std::string content = row.contains("content") ? row["content"].get<std::string>()
                                                  : row["content_fragment"].get<std::string>();
    std::string type = row["messagetype"].get<std::string>();
    types.push_back(type);
    b.add(type, content);
  }
  BOOST_REQUIRE_GE(types.size(), 10u);
  b.run();
  int calls = 0, members = 0, media = 0, contacts = 0, locations = 0, edits = 0;
  for (std::size_t i = 0; i < types.size(); ++i) {
    const Message& m = b.batch.messages[i];
    const std::string& type = types[i];
    BOOST_TEST_CONTEXT("fragment " << i << " (" << type << ")") {
      check_clean(m);
      // No tag survives in the text.
      BOOST_TEST(m.content_text.find('<') == std::string_view::npos);
      BOOST_TEST(m.content_text.find('>') == std::string_view::npos);
      if (type == "Event/Call") {
        ++calls;
        auto d = details(m);
        BOOST_TEST(d["call"]["duration_seconds"].get<double>() == 84.82);
        BOOST_TEST(d["call"]["participants"].size() == 2u);
        BOOST_TEST(d["call"]["participants"][1]["name"] == "Display Name 2");
      } else if (type.rfind("ThreadActivity/", 0) == 0) {
        ++members;
        auto d = details(m);
        BOOST_TEST(d["membership"]["initiator"] == "8:username");
        if (type == "ThreadActivity/TopicUpdate")
          BOOST_TEST(d["membership"]["value"] == "The Topic");
        if (type == "ThreadActivity/AddMember")
          BOOST_TEST(d["membership"]["targets"][0] == "8:username2");
        if (type == "ThreadActivity/PictureUpdate")
          BOOST_TEST(d["membership"]["value"].get<std::string>().rfind("https://", 0) == 0u);
      } else if (type == "RichText/Media_Video" || type == "RichText/UriObject" ||
                 type == "RichText/Media_GenericFile") {
        ++media;
        BOOST_REQUIRE_EQUAL(m.attachments.size(), 1u);
        BOOST_TEST(!m.attachments[0].name.empty());
        BOOST_TEST(m.attachments[0].size.has_value());
        BOOST_TEST(m.content_text == m.attachments[0].name);
      } else if (type == "RichText/Contacts") {
        ++contacts;
        BOOST_TEST(details(m)["contacts"][0]["name"] == "Display Name");
      } else if (type == "RichText/Location") {
        ++locations;
        auto d = details(m);
        BOOST_TEST(d["location"]["longitude"].get<double>() == 24.740695,
                   boost::test_tools::tolerance(1e-9));
        BOOST_TEST(m.content_text == "Kesklinn, Tallinn, 10146 Harju Maakond, Estonia");
      } else if (type == "RichText" &&
                 b.batch.raw[i].content.find("<e_m") != std::string_view::npos) {
        ++edits;
        BOOST_TEST(m.is_edited);
        BOOST_TEST(m.edited_at_us.value() == 1526383417250LL * 1000);
      } else if (type == "RichText") {
        BOOST_TEST(m.content_text == "(wave)");
      }
    }
  }
  BOOST_TEST(calls == 1);
  BOOST_TEST(members == 4);
  BOOST_TEST(media == 3);
  BOOST_TEST(contacts == 1);
  BOOST_TEST(locations == 1);
  BOOST_TEST(edits == 1);
}

BOOST_AUTO_TEST_CASE(property_random_markup) {
  // Random mixes of tags, entities, text and bytes: the text never holds a tag that was
  // in the markup, is valid UTF-8 without NUL, and details_json is valid JSON.
  const std::vector<std::string> tags = {
      "<b>",
      "</b>",
      "<i raw_pre=\"_\">",
      "</i>",
      "<at id=\"8:x\">",
      "</at>",
      "<a href=\"https://u/?a&amp;b\">",
      "</a>",
      "<quote author=\"8:q\" authorname=\"Q\" timestamp=\"1600529710\">",
      "</quote>",
      "<legacyquote>",
      "</legacyquote>",
      "<e_m ts=\"1\" ts_ms=\"1000\"/>",
      "<br>",
      "<p>",
      "</p>",
      "<ss type=\"smile\">",
      "</ss>",
      "<partlist type=\"ended\">",
      "</partlist>",
      "<part identity=\"8:p\">",
      "</part>",
      "<name>",
      "</name>",
      "<duration>",
      "</duration>",
      "<URIObject type=\"Picture.1\" uri=\"u\">",
      "</URIObject>",
      "<OriginalName v=\"n.png\"/>",
      "<contacts>",
      "</contacts>",
      "<c t=\"s\" s=\"cc\" f=\"CC\"/>",
      "<location latitude=\"1\">",
      "</location>",
      "<files>",
      "</files>",
      "<file size=\"1\">",
      "</file>",
      "<addmember>",
      "</addmember>",
      "<initiator>",
      "</initiator>",
      "<target>",
      "</target>",
      "<value>",
      "</value>",
      "<font color='red'>",
      "</font>",
      "<Swift b64=\"e30=\"/>",
      "<flag country=\"ee\">"};
  const std::vector<std::string> entities = {
      "&amp;", "&apos;",   "&nbsp;",     "&mdash;", "&gt;", "&#128512;", "&#x1F600;",
      "&#0;",  "&#xD800;", "&#x110000;", "&bogus;", "&",    "&#",        "&#x;"};
  const std::vector<std::string> texts = {"hello",
                                          " ",
                                          "world",
                                          "\n",
                                          "caf\xC3\xA9",
                                          "\xF0\x9F\x98\x80",
                                          "\xFF",
                                          "\xC3",
                                          "\xED\xA0\x80",
                                          std::string(1, '\0'),
                                          "\x01",
                                          "\"",
                                          "\\",
                                          "< ",
                                          "1<2",
                                          "x>y",
                                          "'",
                                          "=",
                                          "/"};
  std::mt19937 rng(20250430);
  for (int round = 0; round < 40; ++round) {
    BatchBuilder b;
    std::vector<std::vector<std::string>> used;
    for (int n = 0; n < 50; ++n) {
      std::string content;
      std::vector<std::string> used_tags;
      const int pieces = 1 + static_cast<int>(rng() % 25);
      for (int k = 0; k < pieces; ++k) {
        switch (rng() % 4) {
          case 0:
          case 1: {
            const auto& t = tags[rng() % tags.size()];
            content += t;
            used_tags.push_back(t);
            break;
          }
          case 2:
            content += entities[rng() % entities.size()];
            break;
          default:
            content += texts[rng() % texts.size()];
            break;
        }
      }
      static const char* types[] = {"RichText", "RichText/UriObject", "Event/Call",
                                    "ThreadActivity/AddMember", "Unknown/Type"};
      auto& raw = b.add(types[rng() % 5], content);
      raw.emotions_json = (rng() % 5 == 0) ? b.keep("[{\"key\":\"like\"}]") : std::string_view();
      used.push_back(std::move(used_tags));
    }
    b.run();
    for (std::size_t i = 0; i < b.batch.messages.size(); ++i) {
      const Message& m = b.batch.messages[i];
      BOOST_TEST_CONTEXT("round " << round << " message " << i << ": " << b.batch.raw[i].content) {
        check_clean(m);
        for (const auto& t : used[i]) BOOST_TEST(m.content_text.find(t) == std::string_view::npos);
        // Everything that looks like a tag start in the text came from a literal '<'.
        for (std::size_t pos = m.content_text.find('<'); pos != std::string_view::npos;
             pos = m.content_text.find('<', pos + 1)) {
          const char next = pos + 1 < m.content_text.size() ? m.content_text[pos + 1] : ' ';
          BOOST_TEST(!std::isalpha(static_cast<unsigned char>(next)));
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(property_random_bytes) {
  // Arbitrary bytes never throw and always give clean output.
  std::mt19937 rng(7);
  const std::string alphabet =
      std::string("<>&#;/=\"' abxAZ09\n\t\xC3\xA9\xFF\x80", 24) + std::string(1, '\0');
  BatchBuilder b;
  for (int n = 0; n < 2000; ++n) {
    std::string content;
    const int len = static_cast<int>(rng() % 80);
    for (int k = 0; k < len; ++k) content.push_back(alphabet[rng() % alphabet.size()]);
    b.add(n % 7 == 0 ? "Text" : "RichText", content, content, content);
  }
  BOOST_CHECK_NO_THROW(b.run());
  for (const auto& m : b.batch.messages) check_clean(m);
}

BOOST_AUTO_TEST_SUITE_END()
