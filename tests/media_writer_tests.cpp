#define BOOST_TEST_MODULE media_writer_tests
#include <boost/test/unit_test.hpp>

#include <fstream>
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
  BOOST_CHECK_THROW(sd::write_media_files(*source, dir / "out"), se::InputError);
  BOOST_TEST(files_below(dir / "elsewhere") == 0U);
}

BOOST_AUTO_TEST_SUITE_END()
