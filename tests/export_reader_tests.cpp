#define BOOST_TEST_MODULE export_reader_tests
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "extract/export_reader.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/errors.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"

namespace se = skype_etl;
namespace sd = skype_etl::detail;
namespace st = skype_etl::test;

namespace {

struct ReadResult {
  std::shared_ptr<const se::ExportInfo> info;
  std::vector<se::BatchPtr> batches;
  std::size_t conversations = 0;  // chunks that start a conversation
  std::size_t messages = 0;
  std::vector<std::string> conversation_ids;
  std::vector<std::string> message_ids;
  std::string kind;
};

ReadResult read_all(const std::filesystem::path& path, std::size_t batch_size = 100) {
  ReadResult r;
  auto source = sd::InputSource::open(path);
  r.kind = source->kind();
  sd::ExportReader reader(source, 0, {batch_size, false});
  r.info = reader.info();
  while (auto batch = reader.next()) {
    for (const auto& chunk : batch->chunks) {
      if (chunk.starts_conversation) {
        ++r.conversations;
        r.conversation_ids.push_back(chunk.conversation->id);
      }
    }
    for (const auto& m : batch->raw) r.message_ids.emplace_back(m.id);
    r.messages += batch->raw.size();
    r.batches.push_back(std::move(batch));
  }
  return r;
}

std::string command_output(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  BOOST_REQUIRE(pipe);
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) out += buffer.data();
  ::pclose(pipe);
  return out;
}

const std::string small_export =
    st::export_json({st::numbered_conversation("19:one@thread.skype", 3),
                     st::numbered_conversation("8:bob", 2, "b")});

}  // namespace

BOOST_AUTO_TEST_SUITE(export_reader_tests)

BOOST_AUTO_TEST_CASE(plain_json_header_counts_and_digest) {
  st::TempDir dir;
  st::write_file(dir / "messages.json", small_export);
  const auto r = read_all(dir / "messages.json");
  BOOST_TEST(r.kind == "json");
  BOOST_TEST(r.info->user_id == "8:live:.cid.tester");
  BOOST_TEST(r.info->export_date == "2025-04-30T10:13");
  BOOST_TEST(r.info->file_size == small_export.size());
  BOOST_TEST(r.conversations == 2U);
  BOOST_TEST(r.messages == 5U);
  BOOST_TEST(r.batches.size() == 1U);
  BOOST_TEST(r.batches.back()->last_of_export);
  // The digest is the SHA-256 of the file's bytes, as sha256sum computes it.
  const std::string sum = command_output("sha256sum '" + (dir / "messages.json").string() + "'");
  BOOST_TEST(r.info->digest.get() == "sha256:" + sum.substr(0, 64));
}

BOOST_AUTO_TEST_CASE(every_container_kind_yields_the_same_messages) {
  st::TempDir dir;
  st::write_file(dir / "plain.json", small_export);
  const std::vector<st::TarEntry> entries{{"endpoints.json", "{\"endpoints\":[]}"},
                                          {"media/", "", '5'},
                                          {"messages.json", small_export}};
  st::write_file(dir / "export.tar", st::make_tar(entries, st::TarDialect::ustar));
  st::write_file(dir / "export.tar.gz", st::gzip(st::make_tar(entries, st::TarDialect::gnu)));
  st::write_file(dir / "messages.json.gz", st::gzip(small_export));
  st::write_file(dir / "unpacked" / "messages.json", small_export);
  // The kind is found from the content, not the name.
  st::write_file(dir / "misleading.zip", st::make_tar(entries, st::TarDialect::pax));

  const auto expected = read_all(dir / "plain.json");
  const std::vector<std::pair<std::string, std::string>> cases{{"export.tar", "tar"},
                                                               {"export.tar.gz", "tar.gz"},
                                                               {"messages.json.gz", "json.gz"},
                                                               {"unpacked", "directory"},
                                                               {"misleading.zip", "tar"}};
  for (const auto& [name, kind] : cases) {
    BOOST_TEST_CONTEXT(name) {
      const auto r = read_all(dir / name);
      BOOST_TEST(r.kind == kind);
      BOOST_TEST(r.conversation_ids == expected.conversation_ids, boost::test_tools::per_element());
      BOOST_TEST(r.message_ids == expected.message_ids, boost::test_tools::per_element());
      BOOST_TEST(r.info->user_id == "8:live:.cid.tester");
    }
  }
}

BOOST_AUTO_TEST_CASE(tar_dialects_long_names_and_messages_json_not_first) {
  st::TempDir dir;
  const std::string long_dir(120, 'd');
  for (const auto dialect : {st::TarDialect::ustar, st::TarDialect::gnu, st::TarDialect::pax}) {
    const std::vector<st::TarEntry> entries{{long_dir + "/endpoints.json", "{}"},
                                            {"media/0-abc.json", "{\"filename\":\"a.png\"}"},
                                            {"messages.json", small_export},
                                            {"zz-after.txt", "trailing entry"}};
    st::write_file(dir / "t.tar", st::make_tar(entries, dialect));
    const auto r = read_all(dir / "t.tar");
    BOOST_TEST(r.messages == 5U);
    auto source = sd::InputSource::open(dir / "t.tar");
    BOOST_TEST(source->media().count("0-abc") == 1U);
    BOOST_TEST(source->json_name() == (dir / "t.tar").string() + ":messages.json");
  }
  // A messages.json below a folder is found too.
  st::write_file(
      dir / "nested.tar",
      st::make_tar({{"export/" + long_dir + "/messages.json", small_export}}, st::TarDialect::pax));
  BOOST_TEST(read_all(dir / "nested.tar").messages == 5U);
}

BOOST_AUTO_TEST_CASE(large_conversations_span_batches_and_empty_ones_keep_metadata) {
  st::TempDir dir;
  const std::string json = st::export_json({st::numbered_conversation("19:big@thread.skype", 250),
                                            st::conversation_json("8:empty", {}),
                                            st::numbered_conversation("8:small", 3, "s")});
  st::write_file(dir / "m.json", json);
  const auto r = read_all(dir / "m.json", 100);
  BOOST_TEST(r.messages == 253U);
  BOOST_TEST(r.conversations == 3U);
  BOOST_REQUIRE(r.batches.size() == 3U);
  // Batch 1: big[0,100) starts; batch 2: big[100,200); batch 3: big's tail, empty, small.
  const auto& b0 = *r.batches[0];
  BOOST_REQUIRE(b0.chunks.size() == 1U);
  BOOST_TEST(b0.chunks[0].starts_conversation);
  BOOST_TEST(!b0.chunks[0].ends_conversation);
  BOOST_TEST(b0.chunks[0].message_count == 100U);
  const auto& b1 = *r.batches[1];
  BOOST_TEST(!b1.chunks[0].starts_conversation);
  BOOST_TEST(b1.chunks[0].conversation == b0.chunks[0].conversation);  // shared metadata
  const auto& b2 = *r.batches[2];
  BOOST_REQUIRE(b2.chunks.size() == 3U);
  BOOST_TEST(b2.chunks[0].ends_conversation);
  BOOST_TEST(b2.chunks[0].message_count == 50U);
  BOOST_TEST(b2.chunks[1].conversation->id == "8:empty");
  BOOST_TEST(b2.chunks[1].message_count == 0U);
  BOOST_TEST(b2.chunks[1].starts_conversation);
  BOOST_TEST(b2.chunks[1].ends_conversation);
  BOOST_TEST(b2.chunks[2].first_message == 50U);
  for (std::size_t i = 0; i < r.batches.size(); ++i) {
    BOOST_TEST(r.batches[i]->export_sequence == i);
    BOOST_TEST(r.batches[i]->last_of_export == (i + 1 == r.batches.size()));
  }
  // Positions count within the conversation across batches.
  BOOST_TEST(b1.raw[0].position == 100U);
  BOOST_TEST(b1.raw[0].id == "m150");
}

BOOST_AUTO_TEST_CASE(export_without_conversations_still_yields_its_end) {
  st::TempDir dir;
  st::write_file(dir / "m.json", st::export_json({}));
  const auto r = read_all(dir / "m.json");
  BOOST_REQUIRE(r.batches.size() == 1U);
  BOOST_TEST(r.batches[0]->last_of_export);
  BOOST_TEST(r.batches[0]->raw.empty());
}

BOOST_AUTO_TEST_CASE(strings_are_views_unless_they_need_unescaping) {
  st::TempDir dir;
  const std::string json = st::export_json({st::conversation_json(
      "8:x", {st::message_json("1", "plain text"),
              st::message_json(
                  "2", R"(quote \" backslash \\ newline \n e-acute \u00e9 emoji \ud83d\ude00)")})});
  st::write_file(dir / "m.json", json);
  auto source = sd::InputSource::open(dir / "m.json");
  sd::ExportReader reader(source, 0, {100, false});
  auto batch = reader.next();
  BOOST_REQUIRE(batch);
  const std::string_view input = source->json();
  const auto inside = [&](std::string_view v) {
    return v.data() >= input.data() && v.data() + v.size() <= input.data() + input.size();
  };
  BOOST_TEST(batch->raw[0].content == "plain text");
  BOOST_TEST(inside(batch->raw[0].content));  // zero copy
  BOOST_TEST(batch->raw[1].content ==
             "quote \" backslash \\ newline \n e-acute \xC3\xA9 emoji \xF0\x9F\x98\x80");
  BOOST_TEST(!inside(batch->raw[1].content));  // unescaped into the batch's arena
}

BOOST_AUTO_TEST_CASE(quirks_of_real_exports_are_tolerated) {
  st::TempDir dir;
  const std::string conv_a =
      R"({"MessageList":[)"
      R"({"id":123,"displayName":null,"originalarrivaltime":"2021-09-01T18:29:33.92Z","messagetype":"RichText","version":1630565395224,"content":"a","from":"usernameA","properties":{"edittime":1630565399000,"isserversidegenerated":"True","emotions":[{"key":"like"}]},"amsreferences":["0-doc"],"mystery":{"x":[1,2]}},)"
      R"({"id":"124","originalarrivaltime":"2021-09-01T18:29:33Z","messagetype":"Text","version":"1630565395225","content":"b","properties":{"edittime":"1630565399001","deletetime":"1630565399002","isserversidegenerated":true}},)"
      R"({"id":"125","version":1.5e12,"properties":null,"amsreferences":null})"
      R"(],"id":"19:late-id@thread.skype","displayName":"Late <b>name</b>","version":1630565395968.0,)"
      R"("properties":{"conversationstatus":null},"threadProperties":{"membercount":3,"members":"[\"8:a\",\"b\",\"8:c\"]","topic":"Topic \u00e9"},"extraConv":true})";
  const std::string conv_b =
      R"({"id":"19:objects@thread.skype","threadProperties":{"members":[{"MemberMri":"8:x"},{"id":"y"},"8:z"]},"MessageList":null})";
  const std::string conv_c =
      R"({"id":"8:nolist","properties":null,"threadProperties":null,"MessageList":[]})";
  // conversations comes before userId: the header is still read first.
  const std::string json = "{\"conversations\":[" + conv_a + "," + conv_b + "," + conv_c +
                           "],\"userId\":\"usernameA\",\"exportDate\":\"2021-09-02T07:13\"}";
  st::write_file(dir / "m.json", json);
  const auto r = read_all(dir / "m.json");
  BOOST_TEST(r.info->user_id == "usernameA");
  BOOST_TEST(r.conversations == 3U);
  BOOST_TEST(r.messages == 3U);
  const auto& batch = *r.batches[0];
  const auto& meta = *batch.chunks[0].conversation;
  BOOST_TEST(meta.id == "19:late-id@thread.skype");  // MessageList came before id
  BOOST_TEST(meta.display_name.value_or("") == "Late <b>name</b>");
  BOOST_TEST(meta.version.value_or(0) == 1630565395968LL);
  BOOST_TEST(meta.topic == "Topic \xC3\xA9");
  BOOST_TEST((meta.members == std::vector<std::string>{"8:a", "b", "8:c"}));
  BOOST_TEST(meta.extra_json == R"({"extraConv":true})");
  BOOST_TEST(nlohmann::json::parse(meta.thread_properties_json)["membercount"] == 3);

  const auto& m0 = batch.raw[0];
  BOOST_TEST(m0.id == "123");                // a number where a string was expected
  BOOST_TEST(!m0.display_name.has_value());  // null
  BOOST_TEST(m0.version.value_or(0) == 1630565395224LL);
  BOOST_TEST(m0.edit_time == "1630565399000");
  BOOST_TEST(m0.is_server_generated);
  BOOST_TEST(nlohmann::json::parse(m0.emotions_json)[0]["key"] == "like");
  BOOST_TEST(m0.ams_references_json == R"(["0-doc"])");
  BOOST_TEST(m0.extra_json == R"({"mystery":{"x":[1,2]}})");
  BOOST_TEST(nlohmann::json::parse(m0.properties_json)["edittime"] == 1630565399000LL);
  const auto& m1 = batch.raw[1];
  BOOST_TEST(m1.version.value_or(0) == 1630565395225LL);  // a string where a number was expected
  BOOST_TEST(m1.delete_time == "1630565399002");
  BOOST_TEST(m1.is_server_generated);
  BOOST_TEST(m1.from.empty());  // missing entirely
  BOOST_TEST(!m1.display_name.has_value());
  const auto& m2 = batch.raw[2];
  BOOST_TEST(m2.version.value_or(0) == 1500000000000LL);
  BOOST_TEST(m2.properties_json.empty());
  BOOST_TEST(m2.content.empty());

  const auto& objects = *batch.chunks[1].conversation;
  BOOST_TEST((objects.members == std::vector<std::string>{"8:x", "y", "8:z"}));
  BOOST_TEST(batch.chunks[1].message_count == 0U);
  BOOST_TEST(batch.chunks[2].conversation->id == "8:nolist");
}

// Issue 15: unknown keys are kept raw at every level (the top level's reach the last
// batch, those after the conversations array included); a key spelt with escapes is the key
// it spells; a value of a type its field never has is kept too.
BOOST_AUTO_TEST_CASE(unknown_keys_are_kept_raw_at_every_level) {
  st::TempDir dir;
  const std::string json =
      R"({"userId":"8:me","first":[1,{"a":null}],"exportDate":"2025-01-01T00:00",)"
      R"("conversations":[{"i\u0064":"8:bob","properties":"text","extraConv":{"k":"\u00e9"},)"
      R"("MessageList":[{"\u0069d":"1","content":"a","x-y":-1.5e3,"amsreferences":{"o":1}},)"
      R"({"id":"2","properties":null,"amsreferences":null}]},)"
      R"({"id":"8:carol","MessageList":null}],"last":"\u0001"})";
  st::write_file(dir / "m.json", json);
  const auto r = read_all(dir / "m.json", 1);
  BOOST_TEST(r.conversation_ids == (std::vector<std::string>{"8:bob", "8:carol"}));
  BOOST_TEST(r.message_ids == (std::vector<std::string>{"1", "2"}));
  const auto& bob = *r.batches[0]->chunks[0].conversation;
  BOOST_TEST(bob.extra_json == R"({"properties":"text","extraConv":{"k":"\u00e9"}})");
  BOOST_TEST(bob.properties_json.empty());
  const auto& m1 = r.batches[0]->raw[0];
  BOOST_TEST(m1.extra_json == R"({"x-y":-1.5e3,"amsreferences":{"o":1}})");
  BOOST_TEST(m1.ams_references_json.empty());
  BOOST_TEST(r.batches[1]->raw[0].extra_json.empty());
  for (std::size_t i = 0; i + 1 < r.batches.size(); ++i)
    BOOST_TEST(r.batches[i]->export_extra_json.empty());
  BOOST_TEST(r.batches.back()->last_of_export);
  BOOST_TEST(r.batches.back()->export_extra_json == R"({"first":[1,{"a":null}],"last":"\u0001"})");
}

// Issue 15: a message id written as a number is taken as its digits (FORMAT.md: numbers
// where strings are expected); huge versions are refused rather than overflowing.
BOOST_AUTO_TEST_CASE(numeric_message_ids_are_their_digits) {
  st::TempDir dir;
  st::write_file(dir / "m.json", st::export_json({st::conversation_json(
                                     "8:bob", {R"({"id":1630565395224,"version":999999999999999})",
                                               R"({"id":"7","version":"123456789012345678"})"})}));
  const auto r = read_all(dir / "m.json");
  BOOST_TEST(r.message_ids == (std::vector<std::string>{"1630565395224", "7"}));
  BOOST_TEST(r.batches[0]->raw[0].version.value_or(0) == 999999999999999LL);
  // 18 digits: past a double's exact integers, read as the nearest double.
  BOOST_TEST(r.batches[0]->raw[1].version.value_or(0) == 123456789012345680LL);
}

BOOST_AUTO_TEST_CASE(display_name_empty_is_told_apart_from_null_and_missing) {
  st::TempDir dir;
  const std::string json = st::export_json({st::conversation_json(
      "8:x", {R"({"id":"1","displayName":"","content":"a"})",
              R"({"id":"2","displayName":null,"content":"b"})", R"({"id":"3","content":"c"})",
              R"({"id":"4","displayName":"Al\u00e9","content":"d"})"})});
  st::write_file(dir / "m.json", json);
  const auto r = read_all(dir / "m.json");
  const auto& raw = r.batches.at(0)->raw;
  BOOST_REQUIRE(raw.size() == 4u);
  BOOST_TEST(raw[0].display_name.has_value());
  BOOST_TEST(raw[0].display_name.value_or("?") == "");
  BOOST_TEST(!raw[1].display_name.has_value());
  BOOST_TEST(!raw[2].display_name.has_value());
  BOOST_TEST(raw[3].display_name.value_or("?") == "Al\xC3\xA9");
}

BOOST_AUTO_TEST_CASE(emotions_given_as_a_string_are_kept_like_an_array) {
  st::TempDir dir;
  const std::string array =
      R"([{"key":"like","users":[{"mri":"8:bob","time":1600000000000,"value":"x"}]}])";
  const std::string as_string = nlohmann::json(array).dump();
  const std::string json = st::export_json({st::conversation_json(
      "8:x", {st::message_json("1", "a", R"("properties":{"emotions":)" + array + "}"),
              st::message_json("2", "b", R"("properties":{"emotions":)" + as_string + " }"),
              st::message_json("3", "c", R"("properties":{"emotions":null})")})});
  st::write_file(dir / "m.json", json);
  const auto r = read_all(dir / "m.json");
  const auto& raw = r.batches.at(0)->raw;
  BOOST_TEST(raw[0].emotions_json == array);
  // The string as written (raw JSON, like the array): the transform decodes both.
  BOOST_TEST(raw[1].emotions_json == as_string);
  BOOST_TEST(
      nlohmann::json::parse(nlohmann::json::parse(raw[1].emotions_json).get<std::string>()) ==
      nlohmann::json::parse(array));
  BOOST_TEST(raw[2].emotions_json.empty());
}

BOOST_AUTO_TEST_CASE(each_message_knows_its_byte_offset_in_the_input_file) {
  st::TempDir dir;
  const std::string json = st::export_json(
      {st::numbered_conversation("19:one@thread.skype", 3), st::numbered_conversation("8:b", 2)});
  st::write_file(dir / "m.json", json);
  // Inside a tar the offsets count from the start of the tar, not of messages.json.
  const std::string tar = st::make_tar({{"endpoints.json", "{}"}, {"messages.json", json}});
  st::write_file(dir / "e.tar", tar);
  const std::size_t json_in_tar = tar.find(json.substr(0, 40));
  BOOST_REQUIRE(json_in_tar != std::string::npos);
  for (const auto& [name, base] :
       std::vector<std::pair<std::string, std::size_t>>{{"m.json", 0}, {"e.tar", json_in_tar}}) {
    BOOST_TEST_CONTEXT(name) {
      const auto r = read_all(dir / name, 2);  // several batches
      std::size_t seen = 0;
      for (const auto& batch : r.batches) {
        for (const auto& m : batch->raw) {
          const std::string expected_start = "{\"id\":\"" + std::string(m.id) + "\"";
          BOOST_TEST(json.compare(m.offset - base, expected_start.size(), expected_start) == 0);
          ++seen;
        }
      }
      BOOST_TEST(seen == 5u);
    }
  }
}

BOOST_AUTO_TEST_CASE(documents_ending_at_a_page_boundary_are_read_in_place) {
  st::TempDir dir;
  std::string json = st::export_json({st::numbered_conversation("8:x", 3)});
  json.pop_back();  // drop the newline, then pad with spaces inside to exactly 8192 bytes
  json.insert(json.size() - 1, 8192 - json.size(), ' ');
  BOOST_REQUIRE(json.size() == 8192U);
  st::write_file(dir / "m.json", json);
  BOOST_TEST(read_all(dir / "m.json").messages == 3U);
}

BOOST_AUTO_TEST_CASE(media_metadata_is_joined_through_amsreferences) {
  st::TempDir dir;
  const std::string json = st::export_json({st::conversation_json(
      "8:x", {st::message_json("1", "photo", R"("amsreferences":["0-weu-d1-abc"])"),
              st::message_json("2", "none", R"("amsreferences":["0-unknown"])")})});
  st::write_file(
      dir / "e.tar",
      st::make_tar({{"messages.json", json},
                    {"media/0-weu-d1-abc.json",
                     R"({"filename":"route.jpg","contents":{"1":{"type":"image/jpeg"}}})"},
                    {"media/0-weu-d1-abc.1.jpg", std::string(1234, 'x')}}));
  auto source = sd::InputSource::open(dir / "e.tar");
  sd::ExportReader reader(source, 0, {100, true});
  auto batch = reader.next();
  BOOST_REQUIRE(batch);
  // Read once per export, shared by its batches: what attachments use, by doc id.
  BOOST_REQUIRE(batch->media);
  BOOST_TEST(batch->media == reader.media());
  const auto& item = batch->media->by_doc_id.at("0-weu-d1-abc");
  BOOST_TEST(item.file_name == "route.jpg");
  BOOST_TEST(item.content_type == "image/jpeg");
  BOOST_TEST(item.size.value() == 1234);
  BOOST_TEST(batch->media->by_doc_id.count("0-unknown") == 0U);
  BOOST_TEST(batch->media->ignored == 0U);
}

BOOST_AUTO_TEST_CASE(batches_of_large_messages_end_at_the_byte_budget) {
  st::TempDir dir;
  const std::string text(300 * 1000, 'x');
  std::vector<std::string> large;
  for (int i = 0; i < 10; ++i) large.push_back(st::message_json(std::to_string(i), text));
  st::write_file(dir / "m.json", st::export_json({st::conversation_json("8:large", large),
                                                  st::numbered_conversation("8:small", 5)}));
  const auto sizes = [&](std::size_t max_bytes) {
    sd::ReaderOptions options{100, false};
    options.batch_max_bytes = max_bytes;
    sd::ExportReader reader(sd::InputSource::open(dir / "m.json"), 0, options);
    std::vector<std::size_t> out;
    while (auto batch = reader.next()) out.push_back(batch->raw.size());
    return out;
  };
  // A batch ends with the message that takes it to 1 MiB or past it (4 x 300 KB).
  BOOST_TEST(sizes(std::size_t{1} << 20U) == (std::vector<std::size_t>{4, 4, 7}),
             boost::test_tools::per_element());
  BOOST_TEST(sizes(0) == (std::vector<std::size_t>{15}), boost::test_tools::per_element());
  BOOST_TEST(sd::ReaderOptions{}.batch_max_bytes == se::Options{}.batch_max_bytes);
}

BOOST_AUTO_TEST_CASE(the_memory_limit_is_checked_before_a_large_message_is_read) {
  st::TempDir dir;
  st::write_file(dir / "m.json",
                 st::export_json({st::conversation_json(
                     "8:big", {st::message_json("1", "small"),
                               st::message_json("2", std::string(2 << 20U, 'x'))})}));
  const std::size_t in_use = se::MemoryMonitor::read_rss_anon_bytes();
  // Room for the message itself, not for what reading and loading it costs (24 x 2 MB).
  se::MemoryMonitor limited((in_use >> 20U) + 16);
  sd::ReaderOptions options{100, false};
  options.memory = &limited;
  sd::ExportReader reader(sd::InputSource::open(dir / "m.json"), 0, options);
  try {
    reader.next();
    BOOST_FAIL("no MemoryLimitExceeded");
  } catch (const se::MemoryLimitExceeded& error) {
    const std::string what = error.what();
    BOOST_TEST(what.find("Memory usage would exceed limit (") == 0U, what);
    BOOST_TEST(what.find("): conversation 0 (8:big), message 1 at byte 313 (3 MB) needs about "
                         "49 MB more, ") != std::string::npos,
               what);
  }
  // With room, the same message reads.
  se::MemoryMonitor roomy((in_use >> 20U) + 256);
  options.memory = &roomy;
  sd::ExportReader again(sd::InputSource::open(dir / "m.json"), 0, options);
  BOOST_TEST(again.next()->raw.size() == 2U);
}

BOOST_AUTO_TEST_CASE(shared_samples_read_with_exact_counts) {
  const auto samples = st::shared_sample_exports();
  if (!samples) {
    BOOST_TEST_MESSAGE("../shared/samples absent: skipped");
    return;
  }
  int read = 0;
  for (const auto& path : *samples) {
    const std::string name = path.filename().string();
    BOOST_TEST_CONTEXT(name) {
      std::ifstream in(path);
      const auto expected = nlohmann::json::parse(in);
      std::size_t messages = 0;
      for (const auto& c : expected["conversations"]) messages += c["MessageList"].size();
      const auto r = read_all(path, 7);
      BOOST_TEST(r.conversations == expected["conversations"].size());
      BOOST_TEST(r.messages == messages);
      BOOST_TEST(r.info->user_id == expected["userId"].get<std::string>());
      ++read;
    }
  }
  BOOST_TEST(read >= 1);
}

BOOST_AUTO_TEST_SUITE_END()
