#define BOOST_TEST_MODULE input_file_tests
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "extract/export_reader.hpp"
#include "extract/input_file.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/errors.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"

namespace se = skype_etl;
namespace sd = skype_etl::detail;
namespace st = skype_etl::test;

namespace {

constexpr std::size_t k_mib = std::size_t{1} << 20U;

/// The highest RssAnon of this process while it lives, above what it was when it started,
/// sampled every millisecond by a thread of its own (RssAnon has no peak field, and a
/// buffer allocated and freed inside the code under test would be missed by a read after).
class PeakGrowth {
 public:
  PeakGrowth() : m_base(se::MemoryMonitor::read_rss_anon_bytes()), m_peak(m_base) {
    m_thread = std::thread([this] {
      while (!m_stop.load()) {
        sample();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  ~PeakGrowth() { stop(); }
  /// Peak growth in bytes so far (stops the sampling).
  std::size_t stop() {
    if (m_thread.joinable()) {
      m_stop = true;
      m_thread.join();
      sample();
    }
    return m_peak > m_base ? m_peak - m_base : 0;
  }

 private:
  void sample() {
    const std::size_t now = se::MemoryMonitor::read_rss_anon_bytes();
    if (now > m_peak) m_peak = now;
  }
  std::size_t m_base;
  std::size_t m_peak;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

/// The InputError open() must raise.
se::InputError open_failure(const std::filesystem::path& path, const sd::InputOptions& options) {
  try {
    sd::InputSource::open(path, options);
  } catch (const se::InputError& error) {
    return error;
  }
  BOOST_FAIL("no InputError for " + path.string());
  throw std::logic_error("unreachable");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t entries(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++n;
  return n;
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

const std::string export_head =
    R"({"userId":"8:live:.cid.tester","exportDate":"2025-04-30T10:13","conversations":[)";

}  // namespace

BOOST_AUTO_TEST_SUITE(input_file_tests)

BOOST_AUTO_TEST_CASE(a_forged_gzip_size_allocates_nothing) {
  // 22 bytes whose trailer (ISIZE) claims 4 GiB - 1: main allocated and zeroed 4 GB before
  // failing. The trailer is never trusted now: the content is inflated in bounded steps.
  st::TempDir dir;
  std::string forged = st::gzip("{}");
  BOOST_REQUIRE(forged.size() == 22U);
  forged.replace(forged.size() - 4, 4, "\xff\xff\xff\xff");
  st::write_file(dir / "forged.json.gz", forged);
  // The same trailer on a stream that ends early.
  std::string cut = st::gzip(st::export_json({st::numbered_conversation("8:bob", 50)}));
  cut = cut.substr(0, cut.size() / 2) + "\xff\xff\xff\xff";
  st::write_file(dir / "cut.json.gz", cut);

  sd::InputOptions options;
  options.temp_dir = dir.path();
  const auto started = std::chrono::steady_clock::now();
  PeakGrowth growth;
  const auto forged_error = open_failure(dir / "forged.json.gz", options);
  const auto cut_error = open_failure(dir / "cut.json.gz", options);
  const std::size_t grown = growth.stop();
  BOOST_TEST(contains(forged_error.problem(), "corrupt gzip data: incorrect length check"),
             forged_error.what());
  BOOST_TEST(contains(cut_error.problem(), "gzip"), cut_error.what());
  BOOST_TEST(grown < 8 * k_mib, "RssAnon grew by " << grown / k_mib << " MB");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  BOOST_TEST(seconds < 2.0);
  BOOST_TEST(entries(dir.path()) == 2U);  // the two inputs: no temporary file is left
}

BOOST_AUTO_TEST_CASE(a_gzip_bomb_is_refused_past_the_ratio_with_a_way_to_load_it_anyway) {
  // 192 MiB of spaces inside the conversations array (valid JSON) from about 200 KB.
  st::TempDir dir;
  st::write_file(dir / "bomb.json.gz", st::gzip_bomb(export_head, 192, ' ', "]}"));
  sd::InputOptions options;
  options.temp_dir = dir.path();
  PeakGrowth growth;
  const auto error = open_failure(dir / "bomb.json.gz", options);
  const std::size_t grown = growth.stop();
  BOOST_TEST(contains(error.problem(),
                      "gzip data inflates to more than 100 times its "
                      "compressed size"),
             error.what());
  BOOST_TEST(contains(error.problem(), "--max-gzip-ratio 0"), error.what());
  BOOST_TEST(!contains(error.what(), "\n"));
  BOOST_TEST(grown < 8 * k_mib, "RssAnon grew by " << grown / k_mib << " MB");
  BOOST_TEST(entries(dir.path()) == 1U);  // the temporary file went with the error

  // A lower ratio refuses sooner; the allowance lets small files through whatever they hold.
  options.max_gzip_ratio = 2;
  BOOST_TEST(contains(open_failure(dir / "bomb.json.gz", options).problem(), "2 times"));
  st::write_file(dir / "small.json.gz", st::gzip_bomb(export_head, 8, ' ', "]}"));
  BOOST_TEST(sd::InputSource::open(dir / "small.json.gz", options)->json().size() > 8 * k_mib);
}

BOOST_AUTO_TEST_CASE(an_allowed_bomb_inflates_to_an_unlinked_file_not_to_memory) {
  st::TempDir dir;
  st::TempDir temp;
  const std::string bomb = st::gzip_bomb(export_head, 256, ' ', "]}");
  st::write_file(dir / "bomb.json.gz", bomb);
  sd::InputOptions options;
  options.temp_dir = temp.path();
  options.max_gzip_ratio = 0;
  PeakGrowth growth;
  {
    auto source = sd::InputSource::open(dir / "bomb.json.gz", options);
    BOOST_TEST(source->kind() == "json.gz");
    BOOST_TEST(source->json().size() == export_head.size() + 256 * k_mib + 2);
    BOOST_TEST(source->json_offsets_of() == "the decompressed JSON");
    // Listed nowhere: the file's blocks go when the source does, however the process ends.
    BOOST_TEST(entries(temp.path()) == 0U);
    sd::ExportReader reader(source, 0, {100, false});
    std::size_t batches = 0;
    while (reader.next()) ++batches;
    BOOST_TEST(batches == 1U);
    BOOST_TEST(reader.messages_read() == 0U);
    // The digest is of the file given, not of what it inflates to.
    const std::string sum = command_output("sha256sum '" + (dir / "bomb.json.gz").string() + "'");
    BOOST_TEST(reader.info()->digest.get() == "sha256:" + sum.substr(0, 64));
  }
  const std::size_t grown = growth.stop();
  BOOST_TEST(grown < 16 * k_mib, "RssAnon grew by " << grown / k_mib << " MB");
}

BOOST_AUTO_TEST_CASE(a_tar_gz_and_multi_member_gzip_read_as_before) {
  st::TempDir dir;
  const std::string json = st::export_json(
      {st::numbered_conversation("19:a@thread.skype", 30), st::numbered_conversation("8:b", 20)});
  const std::string tar = st::make_tar({{"messages.json", json}, {"media/0-x.json", "{}"}});
  // `cat a.gz b.gz`: one file of two members.
  const std::string gz = st::gzip(tar.substr(0, 1000)) + st::gzip(tar.substr(1000));
  st::write_file(dir / "export.tar.gz", gz);
  sd::InputOptions options;
  options.temp_dir = dir.path();
  auto source = sd::InputSource::open(dir / "export.tar.gz", options);
  BOOST_TEST(source->kind() == "tar.gz");
  BOOST_TEST(source->archive() == tar);
  BOOST_TEST(source->json() == json);
  BOOST_TEST(source->json_offset() == 512U);
  BOOST_TEST(source->json_offsets_of() == "the decompressed tar");
  BOOST_TEST(source->media().count("0-x") == 1U);
  BOOST_TEST(source->json().data()[json.size()] == '\0');  // the padding simdjson reads
  sd::ExportReader reader(source, 0, {7, false});
  std::size_t messages = 0;
  while (auto batch = reader.next()) messages += batch->raw.size();
  BOOST_TEST(messages == 50U);
}

BOOST_AUTO_TEST_CASE(a_disk_that_cannot_hold_the_content_is_named_in_one_line) {
  st::TempDir dir;
  st::write_file(dir / "e.json.gz",
                 st::gzip(st::export_json({st::numbered_conversation("8:b", 3)})));
  // The reserve: never fill the disk the temporary file is on.
  sd::InputOptions options;
  options.temp_dir = dir.path();
  options.keep_free_bytes = std::uint64_t{1} << 62U;
  const auto reserve = open_failure(dir / "e.json.gz", options);
  BOOST_TEST(contains(reserve.problem(), "cannot decompress into '" + dir.path().string() +
                                             "': its disk has too little free space"),
             reserve.what());
  BOOST_TEST(contains(reserve.problem(), "--temp-dir"), reserve.what());
  BOOST_TEST(!contains(reserve.what(), "\n"));

  // A write that fails (here past RLIMIT_FSIZE, as ENOSPC would on a full disk), in a child
  // so that the limit stays there.
  st::write_file(dir / "big.json.gz", st::gzip_bomb(export_head, 4, ' ', "]}"));
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // write() then says EFBIG
    const rlimit limit{k_mib, k_mib};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string message = "no error";
    try {
      sd::InputOptions child_options;
      child_options.temp_dir = dir.path();
      sd::InputSource::open(dir / "big.json.gz", child_options);
    } catch (const se::InputError& error) {
      message = error.what();
    } catch (const std::exception& error) {
      message = std::string("not an InputError: ") + error.what();
    }
    (void)!::write(fds[1], message.data(), message.size());
    std::_Exit(0);
  }
  ::close(fds[1]);
  std::string message;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;)
    message.append(buffer, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  BOOST_TEST(contains(message, "cannot decompress into '" + dir.path().string() +
                                   "': File too large after 1 MB of inflated data"),
             message);
  BOOST_TEST(entries(dir.path()) == 2U);

  // A directory that is not there.
  options = {};
  options.temp_dir = dir / "missing";
  BOOST_TEST(contains(open_failure(dir / "e.json.gz", options).problem(),
                      "cannot create a temporary file in '" + (dir / "missing").string() +
                          "' to decompress into: No such file or directory"));
}

BOOST_AUTO_TEST_CASE(the_memory_limit_holds_while_inflating_and_before_large_copies) {
  st::TempDir dir;
  st::write_file(dir / "e.json.gz", st::gzip_bomb(export_head, 4, ' ', "]}"));
  // A limit already passed: inflating samples memory and stops.
  se::MemoryMonitor passed(1, std::chrono::milliseconds(0));
  sd::InputOptions options;
  options.temp_dir = dir.path();
  options.memory = &passed;
  BOOST_CHECK_THROW(sd::InputSource::open(dir / "e.json.gz", options), se::MemoryLimitExceeded);
  BOOST_TEST(entries(dir.path()) == 1U);

  // A tar whose media metadata is 32 MiB: nothing copies it (the metadata is a view of the
  // archive, read only by the media index, which skips what is that large), so a limit
  // just above what is in use holds.
  const std::string json = st::export_json({st::numbered_conversation("8:b", 3)});
  st::write_file(
      dir / "media.tar",
      st::make_tar({{"messages.json", json}, {"media/0-big.json", std::string(32 * k_mib, ' ')}}));
  const std::size_t in_use = se::MemoryMonitor::read_rss_anon_bytes();
  se::MemoryMonitor limited((in_use + 16 * k_mib) / k_mib);
  options.memory = &limited;
  PeakGrowth growth;
  const auto source = sd::InputSource::open(dir / "media.tar", options);
  BOOST_TEST(source->media().count("0-big") == 1U);
  BOOST_TEST(growth.stop() < 8 * k_mib);
}

BOOST_AUTO_TEST_SUITE_END()
