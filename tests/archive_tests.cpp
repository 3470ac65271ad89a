// `skype-etl export` and `skype-etl stats` end to end: tests/data/archive/messages.json (one
// message of every type of FORMAT.md) is loaded through the real pipeline (`skype-etl run`),
// exported as txt, csv and json and compared with the golden files of
// tests/data/archive/golden/ (txt and csv byte for byte, json parsed). With TZ=UTC, so that
// local times do not depend on the machine. SKYPE_ETL_UPDATE_GOLDEN=1 writes the golden
// files again instead of comparing (then look at the diff before committing it).
#define BOOST_TEST_MODULE archive_tests
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "archive/archive_reader.hpp"
#include "archive/writers.hpp"
#include "load/pg_connection.hpp"
#include "load/schema.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"
#include "support/test_database.hpp"

namespace fs = std::filesystem;
namespace st = skype_etl::test;
namespace ar = skype_etl::detail::archive;

namespace {

const fs::path k_data = fs::path(SKYPE_ETL_SOURCE_DIR) / "tests/data/archive";

struct Output {
  int code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs the skype-etl binary with `args` and TZ=UTC, capturing its output and exit code.
Output run_cli(const std::vector<std::string>& args) {
  st::TempDir dir;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    std::freopen("/dev/null", "r", stdin);
    std::freopen((dir / "out").c_str(), "w", stdout);
    std::freopen((dir / "err").c_str(), "w", stderr);
    ::setenv("TZ", "UTC", 1);
    std::vector<char*> argv{const_cast<char*>(SKYPE_ETL_EXE)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(SKYPE_ETL_EXE, argv.data());
    std::_Exit(127);
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      BOOST_ERROR("skype-etl did not finish within 300 s");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Output o;
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.out = slurp(dir / "out");
  o.err = slurp(dir / "err");
  return o;
}

std::size_t lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

/// The names in `dir`, sorted.
std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

bool updating_golden() {
  const char* v = std::getenv("SKYPE_ETL_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

/// A database with the fixture loaded (owner named Olivia).
struct Loaded {
  st::TestDatabase db;
  Loaded() {
    const Output o = run_cli({"run", (k_data / "messages.json").string(), "--db", db.conninfo(),
                              "--user-display-name", "Olivia", "-q"});
    BOOST_TEST_REQUIRE(o.code == 0, o.err);
  }
  std::vector<std::string> with_db(std::vector<std::string> args) const {
    args.push_back("--db");
    args.push_back(db.conninfo());
    return args;
  }
};

/// Exports `format` into a new directory `out` below `tmp` and checks it ran.
fs::path export_to(const Loaded& loaded, const st::TempDir& tmp, const std::string& format,
                   std::vector<std::string> extra = {}) {
  const fs::path out = tmp / ("out-" + format);
  std::vector<std::string> args{"export", out.string(), "--format", format};
  args.insert(args.end(), extra.begin(), extra.end());
  const Output o = run_cli(loaded.with_db(args));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(o.err.empty(), o.err);
  BOOST_TEST(lines(o.out) == 1u, o.out);
  return out;
}

/// Compares every file of `out` with tests/data/archive/golden/<format>/ (same names),
/// byte for byte, or with `compare` when given.
void check_golden(const fs::path& out, const std::string& format, bool parsed_json = false) {
  const fs::path golden = k_data / "golden" / format;
  if (updating_golden()) {
    fs::remove_all(golden);
    fs::create_directories(golden);
    for (const auto& e : fs::directory_iterator(out))
      fs::copy_file(e.path(), golden / e.path().filename());
    BOOST_TEST_MESSAGE("wrote " << golden);
    return;
  }
  BOOST_TEST_REQUIRE(fs::is_directory(golden));
  BOOST_TEST(names_in(out) == names_in(golden), "the files of " << format);
  for (const auto& name : names_in(golden)) {
    if (!fs::exists(out / name)) continue;
    const std::string want = slurp(golden / name), got = slurp(out / name);
    if (parsed_json) {
      BOOST_TEST(nlohmann::json::parse(got) == nlohmann::json::parse(want),
                 format << "/" << name << " differs from the golden file");
    } else {
      BOOST_TEST(got == want, format << "/" << name << " differs from the golden file");
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(txt_csv_json_match_the_golden_files) {
  Loaded loaded;
  st::TempDir tmp;
  check_golden(export_to(loaded, tmp, "txt"), "txt");
  check_golden(export_to(loaded, tmp, "csv"), "csv");
  check_golden(export_to(loaded, tmp, "json"), "json", true);
  // Nothing but DIR is left beside it (no partial directory).
  BOOST_TEST((names_in(tmp.path()) == std::set<std::string>{"out-txt", "out-csv", "out-json"}));
}

BOOST_AUTO_TEST_CASE(the_export_holds_every_message_in_order) {
  Loaded loaded;
  st::TempDir tmp;
  const fs::path out = export_to(loaded, tmp, "json");
  const auto index = nlohmann::json::parse(slurp(out / "index.json"));
  std::int64_t total = 0;
  for (const auto& c : index["conversations"]) {
    const auto file = nlohmann::json::parse(slurp(out / c["file"].get<std::string>()));
    BOOST_TEST(file["messages"].size() == c["message_count"].get<std::size_t>());
    total += c["message_count"].get<std::int64_t>();
    // sent_at ascending, messages without one last.
    std::string last;
    bool seen_null = false;
    for (const auto& m : file["messages"]) {
      if (m["sent_at"].is_null()) {
        seen_null = true;
        continue;
      }
      BOOST_TEST(!seen_null, "a message with a time after one without");
      const std::string at = m["sent_at"];
      BOOST_TEST(at >= last);
      last = at;
    }
  }
  BOOST_TEST(total == loaded.db.scalar("SELECT count(*) FROM skype.messages"));
  // Every message type of the fixture is in the export.
  std::set<std::string> types;
  for (const auto& c : index["conversations"]) {
    const auto file = nlohmann::json::parse(slurp(out / c["file"].get<std::string>()));
    for (const auto& m : file["messages"]) types.insert(m["message_type"].get<std::string>());
  }
  for (const char* type : {"Text",
                           "RichText",
                           "RichText/Html",
                           "RichText/UriObject",
                           "RichText/Media_GenericFile",
                           "RichText/Media_Video",
                           "RichText/Media_AudioMsg",
                           "RichText/Media_Album",
                           "RichText/Media_Card",
                           "RichText/Media_FlikMsg",
                           "RichText/Media_CallRecording",
                           "RichText/Files",
                           "RichText/Contacts",
                           "RichText/Location",
                           "RichText/ScheduledCallInvite",
                           "Event/Call",
                           "Event/BingBot",
                           "Poll",
                           "Notice",
                           "PopCard",
                           "InviteFreeRelationshipChanged/Initialized",
                           "ThreadActivity/AddMember",
                           "ThreadActivity/DeleteMember",
                           "ThreadActivity/TopicUpdate",
                           "ThreadActivity/PictureUpdate",
                           "ThreadActivity/RoleUpdate",
                           "ThreadActivity/HistoryDisclosedUpdate",
                           "ThreadActivity/JoiningEnabledUpdate",
                           "ThreadActivity/E2EEHandshakeInvite",
                           "ThreadActivity/E2EEHandshakeAccept",
                           "ThreadActivity/E2EEHandshakeComplete",
                           "ThreadActivity/E2EEHandshakeReject",
                           "EndToEndEncryption/EncryptedText",
                           "EndToEndEncryption/EncryptedMedia",
                           "RichText/SomethingNew"})
    BOOST_TEST(types.count(type) == 1u, type);
}

BOOST_AUTO_TEST_CASE(stats_json_counts_what_the_database_holds) {
  Loaded loaded;
  const Output o = run_cli(loaded.with_db({"stats", "--format", "json"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  const auto j = nlohmann::json::parse(o.out);
  BOOST_TEST(j["time_zone"] == "UTC");
  BOOST_TEST(j["messages"] == 47);
  BOOST_TEST(j["conversations"] == 5);
  BOOST_TEST(j["first_message_at"] == "2020-09-13T12:26:40.000Z");
  BOOST_TEST(j["last_message_at"] == "2023-11-16T02:02:00.000Z");
  // Every month from September 2020 to November 2023; their sum is the messages with a time.
  BOOST_TEST(j["per_month"].size() == 39u);
  BOOST_TEST(j["per_month"].front()["month"] == "2020-09");
  BOOST_TEST(j["per_month"].back()["month"] == "2023-11");
  std::int64_t by_month = 0, by_hour = 0;
  for (const auto& m : j["per_month"]) by_month += m["messages"].get<std::int64_t>();
  for (const auto& day : j["hour_by_weekday"])
    for (const auto& n : day) by_hour += n.get<std::int64_t>();
  BOOST_TEST(by_month == 46);  // one message has no time
  BOOST_TEST(by_hour == 46);
  // 2023-11-14 was a Tuesday: 22:00 to 22:59 UTC holds the 37 of the family's first evening.
  BOOST_TEST(j["hour_by_weekday"][1][22] == 37);
  BOOST_TEST(j["top_conversations"][0]["id"] == "19:family@thread.skype");
  BOOST_TEST(j["top_conversations"][0]["name"] == "Family");
  BOOST_TEST(j["top_conversations"][0]["messages"] == 39);
  BOOST_TEST(j["top_senders"][0]["id"] == "8:alice");
  BOOST_TEST(j["top_senders"][0]["messages"] ==
             loaded.db.scalar("SELECT count(*) FROM skype.messages WHERE sender_id = '8:alice'"));
  bool owner_named = false;
  for (const auto& s : j["top_senders"])
    if (s["id"] == "8:live:.cid.owner") owner_named = s["name"] == "Olivia";
  BOOST_TEST(owner_named);

  // The table says the same in words.
  const Output table = run_cli(loaded.with_db({"stats"}));
  BOOST_TEST_REQUIRE(table.code == 0, table.err);
  BOOST_TEST(table.out.find("47 messages in 5 conversations") != std::string::npos, table.out);
  BOOST_TEST(table.out.find("Family (19:family@thread.skype)") != std::string::npos, table.out);
}

BOOST_AUTO_TEST_CASE(filters_select_conversations_and_times) {
  Loaded loaded;
  st::TempDir tmp;
  // A glob on the name (ignoring case) and an exact id.
  fs::path out =
      export_to(loaded, tmp, "csv", {"--conversation", "fAm*", "--conversation", "8:bob"});
  auto names = names_in(out);
  BOOST_TEST(names.size() == 3u);  // two conversations and conversations.csv
  BOOST_TEST(names.count("conversations.csv") == 1u);
  // since/until: only the family's "next day" message (2023-11-16 00:00 UTC) and Bob's 02:00.
  const fs::path day = tmp / "day";
  Output o = run_cli(loaded.with_db({"export", day.string(), "--format", "json", "--since",
                                     "2023-11-15", "--until", "2023-11-16T02:01"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  const auto index = nlohmann::json::parse(slurp(day / "index.json"));
  BOOST_TEST(index["conversations"].size() == 2u);
  BOOST_TEST(index["statistics"]["messages"] == 2);
}

BOOST_AUTO_TEST_CASE(file_stems_are_safe_and_unique) {
  for (const std::string& name :
       {std::string("../../etc/passwd"), std::string("a/b\\c"), std::string(".."),
        std::string("\x01\x1b[31m"), std::string(300, 'x'), std::string("CON"),
        std::string("\xd0\x9f\xd1\x80\xd0\xb8")}) {
    const std::string stem = ar::file_stem_for(name, "19:x@thread.skype");
    BOOST_TEST(!stem.empty());
    BOOST_TEST(stem.size() <= 49u, stem);
    BOOST_TEST(stem.find('/') == std::string::npos, stem);
    BOOST_TEST(stem.find('\\') == std::string::npos, stem);
    BOOST_TEST(stem.find("..") == std::string::npos, stem);
    BOOST_TEST(stem.front() != '.', stem);
    for (unsigned char c : stem) BOOST_TEST((c > 0x20 && c < 0x7f), stem);
  }
  BOOST_TEST(ar::file_stem_for("Family", "a") != ar::file_stem_for("Family", "b"));
  BOOST_TEST(ar::file_stem_for("", "a").rfind("conversation-", 0) == 0u);

  // Names that differ only in case get stems that differ ignoring case too.
  st::TestDatabase db;
  st::TempDir tmp;
  const fs::path input = tmp / "messages.json";
  st::write_file(
      input,
      st::export_json({st::conversation_json("19:a@thread.skype", {st::message_json("1", "one")},
                                             R"("threadProperties": {"topic": "Same"})"),
                       st::conversation_json("19:b@thread.skype", {st::message_json("2", "two")},
                                             R"("threadProperties": {"topic": "SAME"})")}));
  BOOST_TEST_REQUIRE(run_cli({"run", input.string(), "--db", db.conninfo(), "-q"}).code == 0);
  const fs::path out = tmp / "out";
  const Output o = run_cli({"export", out.string(), "--format", "txt", "--db", db.conninfo()});
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  std::set<std::string> lowered;
  for (std::string name : names_in(out)) {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lowered.insert(name);
  }
  BOOST_TEST(lowered.size() == 2u);
}

BOOST_AUTO_TEST_CASE(csv_quotes_as_rfc_4180_says) {
  // The golden file holds them too; this says what to look for.
  Loaded loaded;
  st::TempDir tmp;
  const fs::path out = export_to(loaded, tmp, "csv", {"--conversation", "Family"});
  std::string family;
  for (const auto& name : names_in(out))
    if (name != "conversations.csv") family = slurp(out / name);
  BOOST_TEST(family.find("\"a <literal> tag, \"\"quoted\"\", and a comma\nsecond line\r\nthird "
                         "line\"") != std::string::npos);
  BOOST_TEST(family.find("\"report, final.pdf\"") != std::string::npos);
  // Every row ends in CRLF: the number of CRLF is rows + header (the one CR LF inside a
  // quoted field aside).
  std::size_t crlf = 0;
  for (std::size_t at = family.find("\r\n"); at != std::string::npos;
       at = family.find("\r\n", at + 2))
    ++crlf;
  BOOST_TEST(crlf == 39u + 1u + 1u);
}

BOOST_AUTO_TEST_CASE(with_media_links_the_files_the_load_wrote) {
  Loaded loaded;
  st::TempDir tmp;
  st::write_file(tmp / "media/e/0-pic.1.jpg", "jpeg");
  const fs::path out = export_to(
      loaded, tmp, "json", {"--with-media", (tmp / "media").string(), "--conversation", "Family"});
  std::string family;
  for (const auto& name : names_in(out))
    if (name != "index.json") family = slurp(out / name);
  const auto j = nlohmann::json::parse(family);
  int linked = 0;
  for (const auto& m : j["messages"])
    for (const auto& a : m["attachments"])
      if (!a["media_path"].get<std::string>().empty()) {
        BOOST_TEST(a["media_path"] == "../media/e/0-pic.1.jpg");
        BOOST_TEST(fs::exists(out / a["media_path"].get<std::string>()));
        ++linked;
      }
  BOOST_TEST(linked == 1);
}

BOOST_AUTO_TEST_CASE(an_existing_directory_is_replaced_only_with_force) {
  Loaded loaded;
  st::TempDir tmp;
  const fs::path out = tmp / "out";
  st::write_file(out / "keep.txt", "mine");
  Output o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt"}));
  BOOST_TEST(o.code == 2);
  BOOST_TEST(lines(o.err) == 1u, o.err);
  BOOST_TEST(o.err.find("exists and is not empty: give --force") != std::string::npos, o.err);
  BOOST_TEST(names_in(out) == std::set<std::string>{"keep.txt"});
  BOOST_TEST(names_in(tmp.path()) == std::set<std::string>{"out"});

  o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt", "--force"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(names_in(out).count("keep.txt") == 0u);
  BOOST_TEST(names_in(out).size() == 5u);
  BOOST_TEST(names_in(tmp.path()) == std::set<std::string>{"out"});

  // An empty directory is used without --force.
  fs::create_directory(tmp / "empty");
  o = run_cli(loaded.with_db({"export", (tmp / "empty").string(), "--format", "csv"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(names_in(tmp / "empty").size() == 6u);
}

BOOST_AUTO_TEST_CASE(bad_input_gives_one_line_an_exit_code_and_leaves_nothing) {
  Loaded loaded;
  st::TempDir tmp;
  const fs::path out = tmp / "out";
  const auto check = [&](const std::vector<std::string>& args, int code, const std::string& says) {
    const Output o = run_cli(args);
    BOOST_TEST(o.code == code, says << ": " << o.err);
    BOOST_TEST(lines(o.err) == 1u, o.err);
    BOOST_TEST(o.err.rfind("skype-etl: error: ", 0) == 0u, o.err);
    BOOST_TEST(o.err.find(says) != std::string::npos, o.err);
    BOOST_TEST(o.out.empty(), o.out);
    BOOST_TEST(names_in(tmp.path()).count("out") == 0u);
    BOOST_TEST(names_in(tmp.path()).size() <= 1u);  // "file" below, nothing else
  };
  st::TestDatabase empty;
  check({"export", out.string(), "--format", "txt", "--db", empty.conninfo()}, 4,
        "holds no skype-etl schema");
  check({"stats", "--db", empty.conninfo()}, 4, "holds no skype-etl schema");
  check(loaded.with_db({"export", out.string(), "--format", "txt", "--account", "nobody"}), 2,
        "no account \"nobody\" in the database; it holds \"8:live:.cid.owner\"");
  check(loaded.with_db({"export", out.string(), "--format", "txt", "--conversation", "nope*"}), 2,
        "--conversation \"nope*\" matches no conversation");
  check(loaded.with_db({"export", out.string(), "--format", "txt", "--since", "2023-02-30"}), 2,
        "--since \"2023-02-30\" is not a date");
  check(loaded.with_db({"export", out.string(), "--format", "pdf"}), 2, "--format");
  // A parent that is a file: no directory can be made there (as root too).
  st::write_file(tmp / "file", "x");
  check(loaded.with_db({"export", (tmp / "file" / "out").string(), "--format", "txt"}), 6,
        "cannot write export directory");
  check(loaded.with_db({"export", (tmp / "file").string(), "--format", "txt"}), 2,
        "exists and is not a directory");
}

BOOST_AUTO_TEST_CASE(several_accounts_need_account) {
  Loaded loaded;
  st::TempDir tmp;
  const fs::path second = tmp / "second.json";
  st::write_file(second,
                 st::export_json({st::conversation_json("8:zed", {st::message_json("1", "z")})},
                                 "8:second.owner"));
  BOOST_TEST_REQUIRE(run_cli({"run", second.string(), "--db", loaded.db.conninfo(), "-q"}).code ==
                     0);
  const fs::path out = tmp / "out";
  Output o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt"}));
  BOOST_TEST(o.code == 2);
  BOOST_TEST(o.err.find("holds 2 accounts: choose one with --account (\"8:live:.cid.owner\", "
                        "\"8:second.owner\")") != std::string::npos,
             o.err);
  BOOST_TEST(!fs::exists(out));
  // Any form of the id names it.
  o = run_cli(
      loaded.with_db({"export", out.string(), "--format", "txt", "--account", "second.owner"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(names_in(out).size() == 1u);
}

BOOST_AUTO_TEST_CASE(clean_text_keeps_terminals_safe) {
  BOOST_TEST(ar::clean_text("a\x1b[31mb") == "a\xEF\xBF\xBD[31mb");
  BOOST_TEST(ar::clean_text("a\r\nb\rc") == "a\nb\nc");
  BOOST_TEST(ar::clean_text("\xff\xc2\x85ok\xe2\x82\xac") ==
             "\xEF\xBF\xBD\xEF\xBF\xBDok\xe2\x82\xac");
  BOOST_TEST(ar::clean_text("tab\there") == "tab\there");
}

BOOST_AUTO_TEST_CASE(a_terminal_sees_progress_and_a_pipe_does_not) {
  Loaded loaded;
  st::TempDir tmp;
  // util-linux `script` gives the command a pseudo-terminal.
  const fs::path out = tmp / "out", log = tmp / "log";
  const std::string command = "TZ=UTC " + std::string(SKYPE_ETL_EXE) + " export '" + out.string() +
                              "' --format txt --db '" + loaded.db.conninfo() + "'";
  const std::string script = "script -qec \"" + command + "\" /dev/null > '" + log.string() + "'";
  BOOST_TEST_REQUIRE(std::system(script.c_str()) == 0);
  const std::string seen = slurp(log);
  BOOST_TEST(seen.find("exporting: 47 of 47 messages (100%)") != std::string::npos, seen);
  // Through a pipe (run_cli): the summary line alone.
  const Output o = run_cli(loaded.with_db({"export", (tmp / "out2").string(), "--format", "txt"}));
  BOOST_TEST(o.err.empty(), o.err);
  BOOST_TEST(o.out.find("exporting") == std::string::npos, o.out);
}

BOOST_AUTO_TEST_CASE(json_strings_are_valid_json_whatever_the_bytes) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  for (const std::string& text :
       {std::string("plain"), std::string("q\"b\\s/\n\r\t\b\f"), all,
        std::string("\xed\xa0\x80 surrogate, \xc0\xaf overlong, \xf4\x90\x80\x80 too high"),
        std::string("\xe2\x82\xac \xf0\x9f\x98\x80 ok"), std::string("cut \xe2\x82")}) {
    std::string out;
    ar::append_json_string(out, text);
    const auto parsed = nlohmann::json::parse(out, nullptr, false);
    BOOST_TEST_REQUIRE(parsed.is_string(), out);
  }
  // Valid UTF-8, control characters included, comes back as it was.
  for (const std::string& text : {std::string("q\"b\\s/\n\r\t\b\f\x01\x1f\x7f"),
                                  std::string("\xe2\x82\xac \xf0\x9f\x98\x80 ok")}) {
    std::string out;
    ar::append_json_string(out, text);
    BOOST_TEST(nlohmann::json::parse(out).get<std::string>() == text, out);
  }
  std::string out;
  ar::append_json_string(out, "q\"\x01\xe2\x82\xac\xff");
  BOOST_TEST(out == "\"q\\\"\\u0001\xe2\x82\xac\xEF\xBF\xBD\"");
  BOOST_TEST(nlohmann::json::parse(out).get<std::string>() == "q\"\x01\xe2\x82\xac\xEF\xBF\xBD");
}

BOOST_AUTO_TEST_CASE(a_schema_older_than_version_8_is_refused) {
  st::TestDatabase db;
  {
    skype_etl::detail::PgConnection conn(db.conninfo());
    skype_etl::detail::apply_migrations(conn, 7);
  }
  st::TempDir tmp;
  const Output o =
      run_cli({"export", (tmp / "out").string(), "--format", "txt", "--db", db.conninfo()});
  BOOST_TEST(o.code == 4);
  BOOST_TEST(lines(o.err) == 1u, o.err);
  BOOST_TEST(o.err.find("schema skype is at version 7, older than this skype-etl reads (8 or "
                        "later)") != std::string::npos,
             o.err);
  BOOST_TEST(names_in(tmp.path()).empty());
}
