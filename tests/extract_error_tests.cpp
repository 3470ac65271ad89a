#define BOOST_TEST_MODULE extract_error_tests
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <functional>

#include "extract/export_reader.hpp"
#include "extract/json_scanner.hpp"
#include "extract/tar.hpp"
#include "skype_etl/errors.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"

namespace se = skype_etl;
namespace sd = skype_etl::detail;
namespace st = skype_etl::test;

namespace {

/// Opens and reads the whole export; returns the InputError it must raise.
se::InputError read_failure(const std::filesystem::path& path) {
  try {
    auto source = sd::InputSource::open(path);
    sd::ExportReader reader(source, 0, {2, false});
    while (reader.next()) {
    }
  } catch (const se::InputError& error) {
    return error;
  }
  BOOST_FAIL("no InputError for " + path.string());
  throw std::logic_error("unreachable");
}

struct Case {
  std::string name;
  std::function<std::string()> bytes;  // file content
  std::string expected;                // fragment of what()
  bool has_offset = true;
  std::string where;  // fragment of where(), if any
};

const std::string good = st::export_json(
    {st::numbered_conversation("19:a@thread.skype", 3), st::numbered_conversation("8:b", 3)});

std::string with_bad_message(const std::string& message) {
  return st::export_json({st::numbered_conversation("19:a@thread.skype", 2),
                          st::conversation_json("8:bob", {st::message_json("1", "ok"), message})});
}

std::string deep(int levels) {
  std::string open, close;
  for (int i = 0; i < levels; ++i) {
    open += "[";
    close += "]";
  }
  return with_bad_message(st::message_json("2", "x", "\"deep\":" + open + close));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(extract_error_tests)

BOOST_AUTO_TEST_CASE(every_bad_input_gets_one_clear_line) {
  const std::vector<Case> cases{
      {"empty", [] { return std::string(); }, "file is empty", false},
      {"whitespace", [] { return std::string(" \n\t "); }, "only whitespace", false},
      {"not json", [] { return std::string("hello world"); }, "not JSON: expected '{'"},
      {"array top level", [] { return std::string("[1,2]"); }, "found an array"},
      {"truncated", [] { return good.substr(0, good.size() / 2); }, "truncated JSON"},
      {"truncated after last message", [] { return good.substr(0, good.size() - 4); },
       "truncated JSON"},
      {"no conversations", [] { return std::string(R"({"userId":"x","exportDate":"y"})"); },
       "no \"conversations\" array"},
      {"conversations not an array",
       [] { return std::string(R"({"userId":"x","exportDate":"y","conversations":{"a":1}})"); },
       "\"conversations\" is not an array"},
      {"conversation not an object",
       [] { return std::string(R"({"userId":"x","exportDate":"y","conversations":[42]})"); },
       "conversation 0 is not an object"},
      {"message not an object", [] { return with_bad_message("\"just text\""); },
       "message is not an object", true, "conversation 1 (8:bob), message 1"},
      {"malformed message", [] { return with_bad_message(R"({"id":"2","content":"x",})"); },
       "invalid JSON in message", true, "conversation 1 (8:bob), message 1"},
      {"nesting too deep", [] { return deep(80); }, "nests deeper than 64"},
      {"invalid utf-8", [] { return with_bad_message(st::message_json("2", "bad \xC3\x28 byte")); },
       "UTF-8", true, "message 1"},
      {"trailing garbage", [] { return good.substr(0, good.size() - 1) + " x"; }, "trailing data"},
      {"missing userId", [] { return std::string(R"({"conversations":[]})"); }, "no \"userId\""},
      {"tar without messages.json",
       [] {
         return st::make_tar({{"endpoints.json", "{}"}, {"media/x.json", "{}"}});
       },
       "tar archive has no messages.json (entries: endpoints.json, media/x.json)", false},
      {"truncated tar",
       [] {
         const std::string tar = st::make_tar({{"messages.json", good}});
         return tar.substr(0, 512 + good.size() / 2);
       },
       "truncated tar"},
      {"zip renamed .tar", [] { return std::string("PK\x03\x04 rest of a zip", 20); },
       "is a zip archive", false},
      {"corrupt gzip",
       [] {
         std::string gz = st::gzip(good);
         return gz.substr(0, gz.size() / 2);
       },
       "gzip"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      st::TempDir dir;
      const auto path = dir / "export.tar";  // the name says tar whatever the content
      st::write_file(path, c.bytes());
      const se::InputError error = read_failure(path);
      const std::string what = error.what();
      BOOST_TEST(what.find(c.expected) != std::string::npos, "what(): " << what);
      BOOST_TEST(what.find(path.string()) != std::string::npos, "names the file: " << what);
      BOOST_TEST(what.find('\n') == std::string::npos, "one line: " << what);
      BOOST_TEST(error.offset().has_value() == c.has_offset, "offset in: " << what);
      if (!c.where.empty())
        BOOST_TEST(error.where().find(c.where) != std::string::npos, "where(): " << error.where());
    }
  }
}

BOOST_AUTO_TEST_CASE(offsets_point_at_the_problem) {
  st::TempDir dir;
  const std::string prefix = R"({"userId":"x","exportDate":"y","conversations":[)";
  st::write_file(dir / "m.json", prefix + "42]}");
  const auto error = read_failure(dir / "m.json");
  BOOST_TEST(error.offset().value_or(0) == prefix.size());
  // Inside a tar, offsets count from the start of the tar file.
  st::write_file(dir / "m.tar", st::make_tar({{"messages.json", prefix + "42]}"}}));
  const auto in_tar = read_failure(dir / "m.tar");
  BOOST_TEST(in_tar.offset().value_or(0) == 512 + prefix.size());
}

BOOST_AUTO_TEST_CASE(gzip_and_tar_offsets_point_at_the_bad_byte) {
  st::TempDir dir;
  // Two gzip members, as `cat a.gz b.gz` makes: offsets are of the compressed file.
  const std::string first = st::gzip(good.substr(0, 100));
  const std::string second = st::gzip(good.substr(100));
  st::write_file(dir / "whole.json.gz", first + second);
  BOOST_CHECK_NO_THROW({
    sd::ExportReader reader(sd::InputSource::open(dir / "whole.json.gz"), 0, {2, false});
    while (reader.next()) {
    }
  });
  {
    // The data ends inside the second member: no byte is bad, the member that never ends is.
    st::write_file(dir / "cut.json.gz", first + second.substr(0, second.size() / 2));
    const auto error = read_failure(dir / "cut.json.gz");
    BOOST_TEST(error.problem().find("truncated gzip") != std::string::npos, error.what());
    BOOST_TEST(error.offset().value_or(0) == first.size(), error.what());
    BOOST_TEST(error.offset_of().empty());
  }
  {
    std::string bad = second;
    bad[2] = 9;  // the compression method: only 8 (deflate) exists
    st::write_file(dir / "method.json.gz", first + bad);
    const auto error = read_failure(dir / "method.json.gz");
    BOOST_TEST(error.problem().find("unknown compression method") != std::string::npos,
               error.what());
    BOOST_TEST(error.offset().value_or(0) == first.size() + 2, error.what());
  }
  {
    // A tar's own errors inside a .tar.gz count bytes of the decompressed tar, and say so.
    std::string tar = st::make_tar({{"endpoints.json", "{}"}, {"messages.json", good}});
    tar[1024 + 124] = 'x';  // messages.json's header (the third block) no longer sums up
    st::write_file(dir / "export.tar.gz", st::gzip(tar));
    const auto error = read_failure(dir / "export.tar.gz");
    BOOST_TEST(error.problem().find("bad header checksum") != std::string::npos, error.what());
    BOOST_TEST(error.offset().value_or(0) == 1024U, error.what());
    BOOST_TEST(error.offset_of() == "the decompressed tar");
    BOOST_TEST(
        std::string(error.what()).find("at byte 1024 of the decompressed tar") != std::string::npos,
        error.what());
    // The same tar, not compressed: the file given is the tar.
    st::write_file(dir / "export.tar", tar);
    const auto plain = read_failure(dir / "export.tar");
    BOOST_TEST(plain.offset().value_or(0) == 1024U, plain.what());
    BOOST_TEST(plain.offset_of().empty());
  }
}

BOOST_AUTO_TEST_CASE(missing_paths_and_directories_without_messages_json) {
  st::TempDir dir;
  const auto missing = read_failure(dir / "nope.tar");
  BOOST_TEST(std::string(missing.what()).find("no such file or directory") != std::string::npos);
  const auto empty_dir = read_failure(dir.path());
  BOOST_TEST(std::string(empty_dir.what()).find("directory has no messages.json") !=
             std::string::npos);
  st::write_file(dir / "locked.json", good);
  std::filesystem::permissions(dir / "locked.json", std::filesystem::perms::none);
  if (::geteuid() != 0) {  // root reads anything
    const auto locked = read_failure(dir / "locked.json");
    BOOST_TEST(std::string(locked.what()).find("cannot open") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(scanner_handles_escapes_and_reports_positions) {
  const std::string text = R"({"a":"x\"}","b":["\\",{"c":"\\\""}]} tail)";
  BOOST_TEST(sd::skip_value(text, 0) == text.find(" tail"));
  BOOST_TEST(sd::skip_value("123, 4", 0) == 3U);
  BOOST_CHECK_THROW(sd::skip_value("[1,2", 0), sd::ScanError);
  BOOST_CHECK_THROW(sd::skip_value("[1,2}", 0), sd::ScanError);
  try {
    sd::skip_value(R"(["abc)", 0);
    BOOST_FAIL("no error");
  } catch (const sd::ScanError& e) {
    BOOST_TEST(e.position() == 1U);
    BOOST_TEST(std::string(e.what()).find("string never closes") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(unsafe_tar_member_names) {
  BOOST_TEST(sd::is_unsafe_member_name("/etc/passwd"));
  BOOST_TEST(sd::is_unsafe_member_name("media/../../x"));
  BOOST_TEST(sd::is_unsafe_member_name(".."));
  BOOST_TEST(!sd::is_unsafe_member_name("media/0-abc.1.jpg"));
  BOOST_TEST(!sd::is_unsafe_member_name("media/..hidden"));
}

BOOST_AUTO_TEST_SUITE_END()
