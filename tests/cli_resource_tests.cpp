// The resource contract of README.md ("Resources: memory and disk"), checked on the
// command: hostile gzip files, a large valid one, large messages. Each run is a child
// process whose RssAnon is sampled from outside every millisecond, besides the peak its own
// MemoryMonitor reports (statistics.memory.peak_mb of the JSON report).
#define BOOST_TEST_MODULE cli_resource_tests
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "generator/generator.hpp"
#include "support/cli_run.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"
#include "support/test_database.hpp"

namespace st = skype_etl::test;
using st::lines;

namespace {

/// The contract's base: private memory of any run, whatever the input's size, beyond what
/// its largest messages cost (README.md).
constexpr double k_base_mb = 64;
/// value_memory_factor of src/extract/export_reader.hpp: what a message may cost at most,
/// in multiples of its size.
constexpr double k_value_factor = 24;

struct Run : st::CliOutput {
  double sampled_peak_mb = 0;  ///< highest RssAnon seen from outside
  nlohmann::json report;       ///< the run's --report
};

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// RssAnon of `pid` in MB once it runs skype-etl (before exec it is a copy of this test),
/// else 0.
double rss_anon_mb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  bool ours = false;
  while (std::getline(status, line)) {
    if (line.rfind("Name:", 0) == 0) ours = line.find("skype-etl") != std::string::npos;
    if (line.rfind("RssAnon:", 0) == 0)
      return ours ? std::strtod(line.c_str() + 8, nullptr) / 1024.0 : 0.0;
  }
  return 0;
}

/// Runs `skype-etl run ARGS --db DB --report R`, sampling the child's RssAnon meanwhile.
Run run_cli(st::TestDatabase& db, std::vector<std::string> args) {
  st::TempDir dir;
  args.insert(args.begin(), "run");
  for (const std::string& a : {std::string("--db"), db.conninfo(), std::string("--report"),
                               (dir / "report.json").string()})
    args.push_back(a);
  Run run;
  // No deadline and the test's standard input; RssAnon sampled every millisecond.
  const st::CliRun how = st::CliRun()
                             .with_timeout(std::nullopt)
                             .with_input(std::nullopt)
                             .with_poll(std::chrono::milliseconds(1), [&run](pid_t pid) {
                               run.sampled_peak_mb =
                                   std::max(run.sampled_peak_mb, rss_anon_mb(pid));
                             });
  static_cast<st::CliOutput&>(run) = st::run_cli(args, how);
  run.report = nlohmann::json::parse(slurp(dir / "report.json"), nullptr, false);
  return run;
}

double report_peak_mb(const Run& run) {
  return run.report["statistics"]["memory"]["peak_mb"].get<double>();
}

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer's redzones and its quarantine of freed blocks (256 MB) are private
// memory of the run: the contract is the plain build's (scripts/test.sh runs this suite in
// Release first, then under ASan for everything else it checks).
constexpr bool k_memory_is_measured = false;
#else
constexpr bool k_memory_is_measured = true;
#endif

/// Both peaks of `run` (sampled from outside, and its report's) under `bound_mb`.
void check_peak_within(const Run& run, double bound_mb) {
  if (!k_memory_is_measured) return;
  BOOST_TEST(run.sampled_peak_mb < bound_mb);
  BOOST_TEST(report_peak_mb(run) < bound_mb);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

long long messages(st::TestDatabase& db) {
  if (db.text("SELECT to_regclass('skype.messages')::text").empty()) return 0;
  return db.scalar("SELECT count(*) FROM skype.messages");
}

std::size_t entries(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

const std::string export_head =
    R"({"userId":"8:live:.cid.tester","exportDate":"2025-04-30T10:13","conversations":[)";

/// A message of `bytes` characters of text (markup and escapes in it, as real ones have).
std::string text_message(int id, std::size_t bytes) {
  const std::string piece = "line with <b>bold</b> \\\"quoted\\\" text &amp; more\\n";
  std::string content;
  while (content.size() < bytes) content += piece;
  return st::message_json(std::to_string(id), content);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_resource_tests)

BOOST_AUTO_TEST_CASE(a_forged_gzip_size_fails_at_once_in_one_line) {
  st::TestDatabase db;
  st::TempDir dir;
  std::string forged = st::gzip("{}");  // 22 bytes whose trailer claims 4 GiB - 1
  forged.replace(forged.size() - 4, 4, "\xff\xff\xff\xff");
  st::write_file(dir / "forged.json.gz", forged);
  const auto started = std::chrono::steady_clock::now();
  const Run run = run_cli(db, {(dir / "forged.json.gz").string()});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  BOOST_TEST(run.code == 3, run.err);
  BOOST_TEST(lines(run.err) == 1U, run.err);
  BOOST_TEST(contains(run.err, "corrupt gzip data: incorrect length check"), run.err);
  check_peak_within(run, k_base_mb);
  BOOST_TEST(seconds < 5.0);
  BOOST_TEST(messages(db) == 0);
}

BOOST_AUTO_TEST_CASE(a_gzip_bomb_is_refused_and_loads_flat_when_allowed) {
  st::TestDatabase db;
  st::TempDir dir;
  st::TempDir temp;
  // 192 MiB of whitespace inside the conversations array (valid JSON) from about 200 KB.
  st::write_file(dir / "bomb.json.gz", st::gzip_bomb(export_head, 192, ' ', "]}"));
  const Run refused =
      run_cli(db, {(dir / "bomb.json.gz").string(), "--temp-dir", temp.path().string()});
  BOOST_TEST(refused.code == 3, refused.err);
  BOOST_TEST(lines(refused.err) == 1U, refused.err);
  BOOST_TEST(contains(refused.err, "inflates to more than 100 times its compressed size"),
             refused.err);
  BOOST_TEST(contains(refused.err, "load it with --max-gzip-ratio 0"), refused.err);
  check_peak_within(refused, k_base_mb);

  // What the message says: it loads (an export of no conversation), in flat memory, and the
  // temporary file is gone.
  const Run allowed = run_cli(db, {(dir / "bomb.json.gz").string(), "--temp-dir",
                                   temp.path().string(), "--max-gzip-ratio", "0"});
  BOOST_TEST(allowed.code == 0, allowed.err);
  BOOST_TEST(allowed.report["exports"][0]["kind"] == "json.gz");
  check_peak_within(allowed, k_base_mb);
  BOOST_TEST(entries(temp.path()) == 0U);
}

BOOST_AUTO_TEST_CASE(media_metadata_named_by_every_message_costs_it_once) {
  // 3,000 messages that all name one 60 KiB media/<id>.json (under the size at which the
  // metadata is skipped): copied into every message once, that was 180 MB.
  st::TestDatabase db;
  st::TempDir dir;
  st::TempDir out;
  std::vector<std::string> list;
  const std::string file_object =
      R"(<URIObject type=\"File.1\" doc_id=\"0-big\">a file</URIObject>)";
  for (int i = 0; i < 3000; ++i)
    list.push_back(st::message_json(
        std::to_string(i + 1), file_object,
        R"("messagetype":"RichText/Media_GenericFile","amsreferences":["0-big"])"));
  const std::string metadata =
      R"({"filename":"big.pdf","contents":{"1":{"type":"application/pdf"}},"pad":")" +
      std::string(60 * 1024, 'x') + R"("})";
  st::write_file(
      dir / "media.tar",
      st::make_tar({{"messages.json", st::export_json({st::conversation_json("8:bob", list)})},
                    {"media/0-big.json", metadata},
                    {"media/0-big.1.pdf", std::string(100, 'p')}}));
  const Run run = run_cli(
      db, {(dir / "media.tar").string(), "--with-media", "--output-dir", out.path().string()});
  BOOST_TEST(run.code == 0, run.err);
  BOOST_TEST(messages(db) == 3000);
  BOOST_TEST(db.scalar("SELECT count(*) FROM skype.attachments WHERE name = 'big.pdf'") == 3000);
  check_peak_within(run, k_base_mb);
}

BOOST_AUTO_TEST_CASE(a_large_valid_json_gz_loads_in_the_memory_of_a_plain_file) {
  st::TestDatabase db;
  st::TempDir dir;
  skype_etl::gen::GeneratorOptions options;
  options.seed = 42;
  options.messages = 200000;  // about 68 MB of JSON, 8 MB compressed
  skype_etl::gen::generate_export(options, dir / "messages.json");
  const std::string gzip = "gzip -1 '" + (dir / "messages.json").string() + "'";
  BOOST_REQUIRE(std::system(gzip.c_str()) == 0);
  const Run run = run_cli(db, {(dir / "messages.json.gz").string()});
  BOOST_TEST(run.code == 0, run.err);
  BOOST_TEST(run.report["exports"][0]["kind"] == "json.gz");
  BOOST_TEST(run.report["exports"][0]["messages"]["read"] == 200000);
  check_peak_within(run, k_base_mb);
}

BOOST_AUTO_TEST_CASE(many_large_messages_stay_within_the_base) {
  // 400 messages of 100 KB: 40 MB that one batch of 1000 messages held at once before
  // batches ended at 1 MiB of input (76 MB of private memory then, 27 MB now).
  st::TestDatabase db;
  st::TempDir dir;
  {
    std::vector<std::string> list;
    for (int i = 0; i < 400; ++i) list.push_back(text_message(i, 100 * 1000));
    st::write_file(dir / "m.json", st::export_json({st::conversation_json("8:bob", list)}));
  }
  const Run run = run_cli(db, {(dir / "m.json").string()});
  BOOST_TEST(run.code == 0, run.err);
  BOOST_TEST(messages(db) == 400);
  check_peak_within(run, k_base_mb);
}

BOOST_AUTO_TEST_CASE(the_memory_limit_fires_before_a_huge_message_is_read) {
  st::TestDatabase db;
  st::TempDir dir;
  constexpr double message_mb = 16;
  st::write_file(dir / "m.json.gz",
                 st::gzip(st::export_json({st::conversation_json(
                     "8:bob", {st::message_json("1", "hello"),
                               text_message(2, static_cast<std::size_t>(message_mb * 1e6))})})));
  // 24 x 16 MB is more than the limit allows: refused before reading it, not after.
  const Run limited = run_cli(db, {(dir / "m.json.gz").string(), "--memory-limit-mb", "200"});
  BOOST_TEST(limited.code == 5, limited.err);
  BOOST_TEST(lines(limited.err) == 1U, limited.err);
  BOOST_TEST(contains(limited.err,
                      "Memory usage would exceed limit (200 MB): conversation 0 (8:bob), "
                      "message 1 at byte "),
             limited.err);
  BOOST_TEST(contains(limited.err, " of the decompressed JSON (16 MB) needs about 367 MB more"),
             limited.err);
  if (k_memory_is_measured) BOOST_TEST(limited.sampled_peak_mb < k_base_mb);
  BOOST_TEST(messages(db) == 0);

  // Without a limit it loads, within the contract's bound for its largest message.
  const Run loaded = run_cli(db, {(dir / "m.json.gz").string()});
  BOOST_TEST(loaded.code == 0, loaded.err);
  BOOST_TEST(messages(db) == 2);
  if (k_memory_is_measured)
    BOOST_TEST(loaded.sampled_peak_mb < k_base_mb + k_value_factor * message_mb);
  BOOST_TEST_MESSAGE("a 16 MB message: peak RssAnon " << loaded.sampled_peak_mb << " MB");
}

BOOST_AUTO_TEST_SUITE_END()
