#define BOOST_TEST_MODULE media_writer_tests
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "extract/media_writer.hpp"
#include "skype_etl/errors.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"

namespace se = skype_etl;
namespace sd = skype_etl::detail;
namespace st = skype_etl::test;

namespace {

const std::string json = st::export_json({st::numbered_conversation("8:x", 1)});

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t files_below(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir)) return 0;
  std::size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(media_writer_tests)

BOOST_AUTO_TEST_CASE(media_files_are_written_below_the_output_directory) {
  st::TempDir dir;
  st::write_file(dir / "e.tar", st::make_tar({{"messages.json", json},
                                              {"media/0-abc.json", "{\"filename\":\"a.png\"}"},
                                              {"media/0-abc.1.png", "PNGDATA"},
                                              {"media/0-abc.2.png", "THUMB"}},
                                             st::TarDialect::gnu));
  auto source = sd::InputSource::open(dir / "e.tar");
  BOOST_TEST(sd::write_media_files(*source, dir / "out") == 3U);
  BOOST_TEST(slurp(dir / "out" / "media" / "0-abc.1.png") == "PNGDATA");
  BOOST_TEST(slurp(dir / "out" / "media" / "0-abc.json") == "{\"filename\":\"a.png\"}");
  // A rerun replaces the files.
  BOOST_TEST(sd::write_media_files(*source, dir / "out") == 3U);
}

BOOST_AUTO_TEST_CASE(unsafe_names_and_links_are_refused_before_anything_is_written) {
  const std::vector<std::vector<st::TarEntry>> bad{
      {{"messages.json", json}, {"media/ok.1.png", "x"}, {"media/../../evil.txt", "pwned"}},
      {{"messages.json", json}, {"media/ok.1.png", "x"}, {"media/link", "", '2', "/etc/passwd"}},
      {{"messages.json", json}, {"media/ok.1.png", "x"}, {"media/hard", "", '1', "messages.json"}},
  };
  for (const auto& entries : bad) {
    st::TempDir dir;
    st::write_file(dir / "e.tar", st::make_tar(entries, st::TarDialect::pax));
    auto source = sd::InputSource::open(dir / "e.tar");
    BOOST_CHECK_THROW(sd::write_media_files(*source, dir / "out"), se::InputError);
    BOOST_TEST(files_below(dir.path()) == 1U);  // only e.tar itself
  }
}

BOOST_AUTO_TEST_CASE(a_symlink_planted_in_the_output_is_never_followed) {
  st::TempDir dir;
  st::write_file(dir / "e.tar",
                 st::make_tar({{"messages.json", json}, {"media/0-abc.1.png", "PNGDATA"}}));
  std::filesystem::create_directories(dir / "out");
  std::filesystem::create_directories(dir / "elsewhere");
  std::filesystem::create_directory_symlink(dir / "elsewhere", dir / "out" / "media");
  auto source = sd::InputSource::open(dir / "e.tar");
  BOOST_CHECK_THROW(sd::write_media_files(*source, dir / "out"), se::OutputError);
  BOOST_TEST(files_below(dir / "elsewhere") == 0U);
}

// Issue 15: media went to `<output-dir>/<input name without extension>`, and an input named
// "...tar" gave "..": the files landed beside the output directory.
BOOST_AUTO_TEST_CASE(media_directory_names_are_one_safe_visible_component) {
  std::set<std::string> taken;
  const auto name = [&taken](const std::string& input) {
    return sd::media_directory_name(input, taken);
  };
  BOOST_TEST(name("/x/8_live_me_export.tar") == "8_live_me_export");
  BOOST_TEST(name("/x/old.tar.gz") == "old");
  BOOST_TEST(name("messages.json") == "messages");
  BOOST_TEST(name("/x/...tar") == "__");
  BOOST_TEST(name("/x/..") == "_");
  BOOST_TEST(name("/x/.tar") == "_tar");
  BOOST_TEST(name("/x/a\nb\x7f.tar") == "a_b_");
  BOOST_TEST(name("/x/n\xFF.tar") == "n\\xFF");
  BOOST_TEST(name("/x/unpacked/") == "unpacked");
  BOOST_TEST(name("") == "export");
  BOOST_TEST(name("/x/.gz") == "_gz");
  // Cut at a character boundary, not inside one.
  std::string long_name;
  for (int i = 0; i < 150; ++i) long_name += "\xC3\xA9";  // é, 2 bytes
  const std::string cut = name("/x/" + long_name + ".tar");
  BOOST_TEST(cut.size() <= sd::k_max_media_directory_name);
  BOOST_TEST(cut.size() % 2 == 0U);
  BOOST_TEST(long_name.compare(0, cut.size(), cut) == 0);
  // Unique in the run: two inputs of the same name get two directories.
  BOOST_TEST(name("/a/e.tar") == "e");
  BOOST_TEST(name("/b/e.tar") == "e-2");
  BOOST_TEST(name("/c/e.tar.gz") == "e-3");
  for (const auto& n : taken) {
    BOOST_TEST(n.find('/') == std::string::npos);
    BOOST_TEST(n.front() != '.');
  }
}

// Issue 15: media were written before the export was read and kept whatever happened. They
// are staged inside the output directory and appear only when published.
BOOST_AUTO_TEST_CASE(staged_media_appear_only_when_published) {
  st::TempDir dir;
  st::write_file(dir / "e.tar", st::make_tar({{"messages.json", json},
                                              {"media/0-abc.json", "{\"filename\":\"a.png\"}"},
                                              {"media/0-abc.1.png", "PNGDATA"}}));
  auto source = sd::InputSource::open(dir / "e.tar");
  {
    sd::MediaStaging staging(dir / "out" / "new", "e");  // creates the output directory
    BOOST_TEST(staging.write(*source) == 2U);
    BOOST_TEST(staging.staging().parent_path() == dir / "out" / "new");
    BOOST_TEST(files_below(dir / "out") == 2U);
    BOOST_TEST(!std::filesystem::exists(dir / "out" / "new" / "e"));
  }  // never published: removed
  BOOST_TEST(std::filesystem::is_empty(dir / "out" / "new"));

  {
    sd::MediaStaging staging(dir / "out/", "e");
    staging.write(*source);
    staging.publish();
    BOOST_TEST(staging.target() == dir / "out/" / "e");
  }
  BOOST_TEST(slurp(dir / "out" / "e" / "media" / "0-abc.1.png") == "PNGDATA");
  BOOST_TEST(files_below(dir / "out") == 2U);  // nothing staged is left

  // Another run's media for an input of the same name replace the directory whole.
  st::write_file(dir / "out" / "e" / "stale.txt", "from before");
  st::write_file(dir / "e2.tar",
                 st::make_tar({{"messages.json", json}, {"media/0-new.1.jpg", "JPEG"}}));
  auto second = sd::InputSource::open(dir / "e2.tar");
  {
    sd::MediaStaging staging(dir / "out", "e");
    staging.write(*second);
    staging.publish();
  }
  BOOST_TEST(slurp(dir / "out" / "e" / "media" / "0-new.1.jpg") == "JPEG");
  BOOST_TEST(files_below(dir / "out") == 1U);
  BOOST_TEST(std::distance(std::filesystem::directory_iterator(dir / "out"),
                           std::filesystem::directory_iterator()) == 2);  // e, new
}

BOOST_AUTO_TEST_CASE(staging_refuses_targets_outside_or_not_directories) {
  st::TempDir dir;
  std::filesystem::create_directories(dir / "out");
  std::filesystem::create_directories(dir / "elsewhere");
  // Names that are not one plain component.
  for (const char* name : {"..", ".", "", "a/b", "../out2"})
    BOOST_CHECK_THROW(sd::MediaStaging(dir / "out", name), se::OutputError);
  // A symbolic link where the media would go: never replaced, never followed.
  std::filesystem::create_directory_symlink(dir / "elsewhere", dir / "out" / "link");
  BOOST_CHECK_THROW(sd::MediaStaging(dir / "out", "link"), se::OutputError);
  std::filesystem::create_symlink(dir / "nowhere", dir / "out" / "dangling");
  BOOST_CHECK_THROW(sd::MediaStaging(dir / "out", "dangling"), se::OutputError);
  st::write_file(dir / "out" / "file", "x");
  BOOST_CHECK_THROW(sd::MediaStaging(dir / "out", "file"), se::OutputError);
  BOOST_TEST(std::filesystem::is_empty(dir / "elsewhere"));
  BOOST_TEST(!std::filesystem::exists(dir / "out2"));
  // Nothing was staged by the refused ones.
  for (const auto& e : std::filesystem::directory_iterator(dir / "out"))
    BOOST_TEST(e.path().filename().string().rfind(".skype-etl-partial-", 0) != 0U);
}

BOOST_AUTO_TEST_SUITE_END()
