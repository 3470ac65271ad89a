// skype-etl-fuzz-seeds OUT_DIR [SAMPLES_DIR]: writes the fuzzers' seed corpus, one folder per
// fuzzer (OUT_DIR/export_reader_fuzzer, markup_fuzzer, tar_fuzzer), from what the test
// suites build: the exports of tests/support/export_builder, archives of every dialect of
// tests/support/tar_writer, small exports of benchmarks/generator, and the sample files of
// ../shared/samples (or SAMPLES_DIR) when present, and the inputs of defects found before
// (add_regressions). Nothing binary is committed: the seeds follow the fixtures as they
// change.
//
// Apart from the regressions, each seed is a valid input that reads to its end, so that
// mutations start deep inside the reader rather than at its first check.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "generator/generator.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"

namespace {

namespace fs = std::filesystem;
namespace st = skype_etl::test;

/// Messages with what the reader treats apart: escapes, every properties key it reads,
/// amsreferences, unknown keys, null and empty names, versions as text.
std::string quirky_export() {
  const std::string emotions =
      R"("emotions":[{"key":"like","users":[{"mri":"8:alice","time":1700000000000,"value":"1"}]}])";
  const std::vector<std::string> messages = {
      st::message_json("1700000000001", R"(say \"hi\" \\ caf\u00e9 \ud83d\ude00\n<b>bold</b>)"),
      st::message_json("1700000000002", "&lt;3 &amp; <at id=\\\"8:alice\\\">Alice</at>",
                       R"("properties":{"edittime":"1700000000100","deletetime":1700000000200,)"
                       R"("isserversidegenerated":"True",)" +
                           emotions + "}"),
      st::message_json("1700000000003", "photo",
                       R"("amsreferences":["0-weu-d1-abc"],"skypeguid":"x","properties":null)"),
      st::message_json("1700000000004", "",
                       R"("properties":{"emotions":"[{\"key\":\"heart\",\"users\":[]}]"},)"
                       R"("version":"1700000000004","displayName":null)"),
      st::message_json("1700000000005", "edited",
                       R"("displayName":"","amsreferences":null,"unknown":{"a":[1,2.5e3,true]})"),
  };
  const std::vector<std::string> conversations = {
      st::conversation_json(
          "19:group@thread.skype", messages,
          R"("threadProperties":{"topic":"Trip &amp; <b>plans</b>",)"
          R"("members":"[\"8:alice\",\"bob\",\"8:live:.cid.tester\"]"},"properties":{"x":1})"),
      st::conversation_json(
          "19:objects@thread.skype", {st::message_json("m1", "members as objects")},
          R"("threadProperties":{"members":[{"id":"8:alice"},{"MemberMri":"8:bob"}]},)"
          R"("properties":null,"extra":[null])"),
      st::conversation_json("8:empty", {}),
      st::numbered_conversation("8:bob", 3, "b"),
  };
  std::string json = st::export_json(conversations, "live:.cid.tester");
  // A key after the conversations array, read once the array is done.
  json.insert(json.rfind('}'), R"(,"exportVersion":{"v":[2]})");
  return json;
}

struct Corpus {
  fs::path root;
  std::set<std::string> markup;  // distinct texts for markup_fuzzer
  std::size_t files = 0;

  void write(const std::string& fuzzer, const std::string& name, const std::string& data) {
    st::write_file(root / fuzzer / name, data);
    ++files;
  }

  /// messages.json `json` as the reader's seeds (alone, in a tar, gzip-compressed) and the
  /// tar as the tar lister's; its texts as markup seeds.
  void add_export(const std::string& name, const std::string& json) {
    const std::string tar = st::make_tar({{"messages.json", json}});
    write("export_reader_fuzzer", name + ".json", json);
    write("export_reader_fuzzer", name + ".tar", tar);
    write("export_reader_fuzzer", name + ".json.gz", st::gzip(json));
    write("export_reader_fuzzer", name + ".tar.gz", st::gzip(tar));
    write("tar_fuzzer", name + ".tar", tar);
    collect_texts(json);
  }

  void collect_texts(const std::string& json) {
    const auto doc = nlohmann::json::parse(json, nullptr, false);
    if (!doc.is_object() || !doc.contains("conversations")) return;
    const auto add = [&](const nlohmann::json& value) {
      if (value.is_string() && !value.get<std::string>().empty())
        markup.insert(value.get<std::string>());
    };
    for (const auto& conv : doc["conversations"]) {
      if (!conv.is_object()) continue;
      if (conv.contains("displayName")) add(conv["displayName"]);
      if (conv.contains("threadProperties") && conv["threadProperties"].is_object() &&
          conv["threadProperties"].contains("topic"))
        add(conv["threadProperties"]["topic"]);
      if (!conv.contains("MessageList") || !conv["MessageList"].is_array()) continue;
      for (const auto& m : conv["MessageList"])
        if (m.is_object() && m.contains("content")) add(m["content"]);
    }
  }
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void add_fixtures(Corpus& corpus) {
  corpus.add_export("basic", st::export_json({st::numbered_conversation("19:one@thread.skype", 3),
                                              st::numbered_conversation("8:bob", 2, "b")}));
  corpus.add_export("empty-conversations", st::export_json({}));
  const std::string quirky = quirky_export();
  corpus.add_export("quirks", quirky);
  corpus.add_export("bom-and-space", "\xEF\xBB\xBF \n" + quirky);

  // Tar dialects, a messages.json below a folder, media the reader joins, other entries.
  const std::string long_dir = "8_live_tester_export/" + std::string(110, 'd') + "/";
  for (const auto& [dialect, name] :
       {std::pair{st::TarDialect::ustar, "ustar"}, std::pair{st::TarDialect::gnu, "gnu"},
        std::pair{st::TarDialect::pax, "pax"}}) {
    const std::string tar =
        st::make_tar({{"8_live_tester_export/", "", '5'},
                      {long_dir + "messages.json", quirky},
                      {"8_live_tester_export/endpoints.json", R"({"endpoints":[]})"},
                      {"media/", "", '5'},
                      {"media/0-weu-d1-abc.json",
                       R"({"filename":"route.jpg","contents":{"1":{"type":"image/jpeg"}}})"},
                      {"media/0-weu-d1-abc.1.jpg", std::string(700, 'x')},
                      {"media/0-weu-d1-abc.2.jpg", "thumb"},
                      {"media/link", "", '2', "0-weu-d1-abc.1.jpg"},
                      {"media/hard", "", '1', "media/0-weu-d1-abc.2.jpg"}},
                     dialect);
    corpus.write("export_reader_fuzzer", std::string("media-") + name + ".tar", tar);
    corpus.write("tar_fuzzer", std::string("media-") + name + ".tar", tar);
  }
}

void add_generated(Corpus& corpus) {
  namespace gen = skype_etl::gen;
  const fs::path scratch = corpus.root / ".generator";
  for (const std::uint64_t messages : {12U, 60U}) {
    for (const std::uint64_t seed : {1U, 2U}) {
      for (const bool quirks : {true, false}) {
        gen::GeneratorOptions options;
        options.seed = seed;
        options.messages = messages;
        options.quirks = quirks;
        const std::string name = "generated-" + std::to_string(messages) + "-seed" +
                                 std::to_string(seed) + (quirks ? "-quirks" : "");
        fs::create_directories(scratch);
        gen::generate_export(options, scratch / "messages.json");
        corpus.add_export(name, read_file(scratch / "messages.json"));
      }
    }
  }
  fs::remove_all(scratch);
}

/// Files of ../shared/samples (never copied into the repository): the exports, and the
/// `content` of each line of a .jsonl as markup.
void add_samples(Corpus& corpus, const fs::path& samples) {
  if (!fs::is_directory(samples)) {
    std::printf("fuzz-seeds: no samples folder at %s: left out\n", samples.string().c_str());
    return;
  }
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(samples)) paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  for (const fs::path& path : paths) {
    const std::string name = path.filename().string();
    if (path.extension() == ".json" && name.find("messages") != std::string::npos) {
      corpus.add_export("sample-" + path.stem().string(), read_file(path));
    } else if (path.extension() == ".jsonl") {
      std::ifstream in(path);
      for (std::string line; std::getline(in, line);) {
        const auto doc = nlohmann::json::parse(line, nullptr, false);
        if (doc.is_object() && doc.contains("content") && doc["content"].is_string())
          corpus.markup.insert(doc["content"].get<std::string>());
      }
    }
  }
}

/// The smallest inputs of the reader's defects found for issue 15, kept as seeds so that
/// every fuzzing run tries them first: the run fails at once while one is not fixed, or
/// when it comes back. Each comment says what the input requires.
void add_regressions(Corpus& corpus) {
  const std::string head = R"({"userId":"8:a","exportDate":"d","conversations":[)";
  const auto add = [&](const std::string& name, const std::string& data) {
    corpus.write("export_reader_fuzzer", "regression-" + name, data);
  };
  // The second reading (in a tar) uses batches of 1 + size % 3 messages: pad to a size
  // that makes them 1, where a batch ends right after the last element.
  const auto batches_of_one = [](std::string json) {
    while (json.size() % 3 != 0) json += ' ';
    return json;
  };
  // Values kept verbatim go to jsonb columns: they must be JSON, not only balanced UTF-8.
  add("conversation-properties.json",
      head + R"({"id":"c","properties":{"a":tru},"MessageList":[]}]})");
  add("conversation-unknown-key.json", head + R"({"id":"c","x":[1,,2],"MessageList":[]}]})");
  add("message-properties.json",
      head + R"({"id":"c","MessageList":[{"id":"m","properties":{"x":[1,,2]}}]}]})");
  add("message-unknown-key.json", head + R"({"id":"c","MessageList":[{"id":"m","foo":[1,,2]}]}]})");
  add("top-level-key.json", R"({"userId":"8:a","exportDate":"d","x":[1,,2],"conversations":[]})");
  // A second "conversations" key must be checked like the first, not skipped.
  add("second-conversations-key.json",
      R"({"userId":"8:a","exportDate":"d","conversations":[],"conversations":[{"id":"c",,}]})");
  // A trailing comma must fail also when a batch ends right after the last element.
  add("trailing-comma-conversations.json",
      batches_of_one(head + R"({"id":"c","MessageList":[]},]})"));
  add("trailing-comma-messages.json",
      batches_of_one(head + R"({"id":"c","MessageList":[{"id":"m"},]}]})"));
  // Conversations and messages need an id.
  add("conversation-without-id.json", head + R"({"MessageList":[]}]})");
  add("message-without-id.json", head + R"({"id":"c","MessageList":[{"content":"x"}]}]})");
  // Versions of 19 digits and more must not overflow parse_plain_integer (signed: UB).
  add("message-version-20-digits.json",
      head + R"({"id":"c","MessageList":[{"id":"m","version":12345678901234567890}]}]})");
  add("conversation-version-19-digits.json",
      head + R"({"id":"c","version":"9999999999999999999","MessageList":[]}]})");
  // An error naming a conversation id that holds a newline and a NUL stays one line.
  add("error-names-id-with-newline.json",
      head + R"({"id":"a\nb\u0000c","MessageList":[{"id":"m","content":tru}]}]})");
  // The size a gzip trailer claims must not decide the allocation (4 GB for 22 bytes).
  std::string gz = st::gzip("{}");
  gz.replace(gz.size() - 4, 4, "\xff\xff\xff\xff");
  add("gzip-size-4gb.json.gz", gz);
  // Media metadata and media file names must give valid media_json.
  const std::string with_media =
      head + R"({"id":"c","MessageList":[{"id":"m","amsreferences":["d"]}]}]})";
  add("media-metadata-not-json.tar",
      st::make_tar({{"messages.json", with_media}, {"media/d.json", "{not json"}}));
  add("media-file-name-with-quote.tar",
      st::make_tar(
          {{"messages.json", with_media}, {"media/d.json", "{}"}, {"media/d.1.x\"y", "z"}}));
}

/// Markup the exports above hold little of: every element the renderer knows, entities.
// clang-format off
const char* const markup_seeds[] = {
    R"(<at id="8:alice">Alice</at> and <at id="*">all</at>: &amp; &lt; &#169; &#x1F600; &bogus; &)",
    R"(<a href="https://example.com/a?b=c&amp;d">link</a> https://example.org/x <b>b</b><i>i</i><s>s</s><pre>p</pre>)",
    R"(<quote author="8:bob" authorname="Bob" timestamp="1700000000"><legacyquote>[10:00] Bob: </legacyquote>quoted text<legacyquote>

&lt;&lt;&lt; </legacyquote></quote>reply)",
    R"(<partlist type="ended" alt="" callId="123"><part identity="8:alice"><name>Alice</name><duration>85.5</duration></part><part identity="bob"><name>Bob</name></part></partlist>)",
    R"(<addmember><eventtime>1700000000000</eventtime><initiator>8:alice</initiator><target>8:bob</target><target>carol</target></addmember>)",
    R"(<topicupdate><eventtime>1700000000000</eventtime><initiator>8:alice</initiator><value>New &amp; topic</value></topicupdate>)",
    R"(<contacts><c t="s" s="8:alice" f="Alice"/><c t="p" p="+15551234" f="Phone"/></contacts>)",
    R"(<location latitude="48858370" longitude="2294481" address="Paris" isUserLocation="false">Paris</location>)",
    R"(<URIObject type="Picture.1" uri="https://api.asm.skype.com/v1/objects/0-weu-d1-abc" url_thumbnail="https://t" doc_id="0-weu-d1-abc"><OriginalName v="a.jpg"/><FileSize v="1234"/><meta type="photo" originalName="a.jpg"/></URIObject>)",
    R"(<URIObject type="Poll" question="Where?" optionsEncoded="Here|There"/>)",
    R"(<URIObject type="poll.1"><Question value="Q?"/><Answer value="A"/><Answer value="B"/><MultipleChoice value="true"/></URIObject>)",
    R"(<URIObject type="SWIFT.1"><Swift b64="eyJ0eXBlIjoibWVzc2FnZS9jYXJkIn0="/></URIObject>)",
    R"(<files><file size="10" index="0" tid="0" url="https://f">doc.pdf</file></files>)",
    "<e_m ts=\"1700000000\" a=\"8:alice\" t=\"61\"/>edited <ss type=\"smile\">:)</ss> <b unclosed",
};
// clang-format on

void add_markup(Corpus& corpus) {
  for (const char* text : markup_seeds) corpus.markup.insert(text);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: skype-etl-fuzz-seeds OUT_DIR [SAMPLES_DIR]\n");
    return 2;
  }
  try {
    Corpus corpus;
    corpus.root = argv[1];
    const fs::path samples =
        argc > 2 ? fs::path(argv[2]) : fs::path(SKYPE_ETL_SOURCE_DIR) / ".." / "shared" / "samples";
    for (const char* fuzzer : {"export_reader_fuzzer", "markup_fuzzer", "tar_fuzzer"}) {
      fs::remove_all(corpus.root / fuzzer);
      fs::create_directories(corpus.root / fuzzer);
    }
    add_fixtures(corpus);
    add_generated(corpus);
    add_samples(corpus, samples);
    add_markup(corpus);
    add_regressions(corpus);
    std::size_t n = 0;
    for (const std::string& text : corpus.markup)
      corpus.write("markup_fuzzer", "text-" + std::to_string(n++), text);
    std::printf("fuzz-seeds: wrote %zu seeds in %s\n", corpus.files, corpus.root.string().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "skype-etl-fuzz-seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
