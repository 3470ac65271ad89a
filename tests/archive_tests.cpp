// `skype-etl export` and `skype-etl stats` end to end: tests/data/archive/messages.json (one
// message of every type of FORMAT.md) is loaded through the real pipeline (`skype-etl run`),
// exported as txt, csv and json and compared with the golden files of
// tests/data/archive/golden/ (txt and csv byte for byte, json parsed). With TZ=UTC, so that
// local times do not depend on the machine. SKYPE_ETL_UPDATE_GOLDEN=1 writes the golden
// files again instead of comparing (then look at the diff before committing it). The html
// export is opened in headless Chromium (skipped with a message when it is not installed):
// the fixture's, and one of an export whose every field attacks.
#define BOOST_TEST_MODULE archive_tests
#include <boost/test/unit_test.hpp>

#include <sys/file.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "archive/archive_reader.hpp"
#include "archive/partial_directory.hpp"
#include "archive/writers.hpp"
#include "load/pg_connection.hpp"
#include "load/schema.hpp"
#include "skype_etl/errors.hpp"
#include "support/browser.hpp"
#include "support/cli_run.hpp"
#include "support/export_builder.hpp"
#include "support/tar_writer.hpp"
#include "support/test_database.hpp"

namespace fs = std::filesystem;
namespace st = skype_etl::test;
namespace ar = skype_etl::detail::archive;

namespace {

const fs::path k_data = fs::path(SKYPE_ETL_SOURCE_DIR) / "tests/data/archive";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// How the suite runs skype-etl: TZ=UTC, so that local times do not depend on the machine.
const st::CliRun k_utc =
    st::CliRun().with_env({{"TZ", "UTC"}}).with_timeout(std::chrono::seconds(300));

/// Runs the skype-etl binary with `args` and TZ=UTC, capturing its output and exit code.
st::CliOutput run_cli(const std::vector<std::string>& args) {
  return st::run_cli(args, k_utc);
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
    const st::CliOutput o = run_cli({"run", (k_data / "messages.json").string(), "--db",
                                     db.conninfo(), "--user-display-name", "Olivia", "-q"});
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
  const st::CliOutput o = run_cli(loaded.with_db(args));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(o.err.empty(), o.err);
  BOOST_TEST(st::lines(o.out) == 1u, o.out);
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
  const st::CliOutput o = run_cli(loaded.with_db({"stats", "--format", "json"}));
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
  const st::CliOutput table = run_cli(loaded.with_db({"stats"}));
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
  st::CliOutput o = run_cli(loaded.with_db({"export", day.string(), "--format", "json", "--since",
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
        std::string("\xd0\x9f\xd1\x80\xd0\xb8"), std::string("-rf"),
        std::string("\xe2\x80\xae\xe2\x80\x8b\xc2\x85"), std::string(30, '\xff'),
        std::string(100, '\xd0') + std::string("\xd0\x9f\xd1\x80\xd0\xb8")}) {
    const std::string stem = ar::file_stem_for(name, "19:x@thread.skype");
    BOOST_TEST(!stem.empty());
    BOOST_TEST(stem.size() <= 49u, stem);
    BOOST_TEST(stem.find('/') == std::string::npos, stem);
    BOOST_TEST(stem.find('\\') == std::string::npos, stem);
    BOOST_TEST(stem.find("..") == std::string::npos, stem);
    BOOST_TEST(stem.front() != '.', stem);
    BOOST_TEST(stem.front() != '-', stem);
    BOOST_TEST(stem.find('.') == std::string::npos, stem);
    for (unsigned char c : stem) BOOST_TEST((c > 0x20 && c != 0x7f), stem);
    std::string checked;
    ar::append_json_string(checked, stem);  // replaces invalid UTF-8 with U+FFFD
    BOOST_TEST(checked == "\"" + stem + "\"", stem << " is not valid UTF-8");
  }
  BOOST_TEST(ar::file_stem_for("Family", "a") != ar::file_stem_for("Family", "b"));
  BOOST_TEST(ar::file_stem_for("", "a").rfind("conversation-", 0) == 0u);
  // Letters of any script are kept, whole characters within the 40 bytes; invisible,
  // bidirectional, space and control characters and invalid UTF-8 are not.
  const auto without_hash = [](const std::string& stem) { return stem.substr(0, stem.size() - 9); };
  BOOST_TEST(without_hash(ar::file_stem_for("\xd0\x9f\xd1\x80\xd0\xb8", "x")) ==
             "\xd0\x9f\xd1\x80\xd0\xb8");
  BOOST_TEST(without_hash(ar::file_stem_for("Семья / family", "x")) == "Семья_family");
  BOOST_TEST(without_hash(ar::file_stem_for("家庭群", "x")) == "家庭群");
  std::string chinese;
  for (int i = 0; i < 20; ++i) chinese += "家";  // 60 bytes: 13 characters fit in 40
  BOOST_TEST(without_hash(ar::file_stem_for(chinese, "x")).size() == 39u);
  BOOST_TEST(without_hash(ar::file_stem_for("a\u200Bb\u202Ec\u00A0d\u3000e\u2044f\uFEFFg", "x")) ==
             "a_b_c_d_e_f_g");
  BOOST_TEST(without_hash(ar::file_stem_for("\xe5\xae\xb6\xff\xc0\xaf\xed\xa0\x80\xe5\xae", "x")) ==
             "\xe5\xae\xb6");
  BOOST_TEST(without_hash(ar::file_stem_for("--x", "x")) == "x");
  BOOST_TEST(without_hash(ar::file_stem_for("\xf0\x9f\x98\x80 party", "x")) ==
             "\xf0\x9f\x98\x80_party");

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
  const st::CliOutput o =
      run_cli({"export", out.string(), "--format", "txt", "--db", db.conninfo()});
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
  st::CliOutput o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt"}));
  BOOST_TEST(o.code == 2);
  BOOST_TEST(st::lines(o.err) == 1u, o.err);
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
    const st::CliOutput o = run_cli(args);
    BOOST_TEST(o.code == code, says << ": " << o.err);
    BOOST_TEST(st::lines(o.err) == 1u, o.err);
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
  st::CliOutput o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt"}));
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
  // On a pseudo-terminal (util-linux `script`), TERM as the test has it.
  const st::CliOutput terminal = st::run_on_terminal(
      loaded.with_db({"export", (tmp / "out").string(), "--format", "txt"}), {{"TZ", "UTC"}});
  BOOST_TEST_REQUIRE(terminal.code == 0, terminal.out);
  const std::string& seen = terminal.out;
  BOOST_TEST(seen.find("exporting: 47 of 47 messages (100%)") != std::string::npos, seen);
  // Through a pipe (run_cli): the summary line alone.
  const st::CliOutput o =
      run_cli(loaded.with_db({"export", (tmp / "out2").string(), "--format", "txt"}));
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
  const st::CliOutput o =
      run_cli({"export", (tmp / "out").string(), "--format", "txt", "--db", db.conninfo()});
  BOOST_TEST(o.code == 4);
  BOOST_TEST(st::lines(o.err) == 1u, o.err);
  BOOST_TEST(o.err.find("schema skype is at version 7, older than this skype-etl reads (8 or "
                        "later)") != std::string::npos,
             o.err);
  BOOST_TEST(names_in(tmp.path()).empty());
}

namespace {

/// Each payload, if it ever ran, would set the title to PWNED and add <div id="pwned">.
const std::string k_js =
    "document.title='PWNED';document.body.appendChild(document.createElement('div')).id='pwned'";
const std::string k_script = "<script>" + k_js + "</script>";
const std::string k_img = "<img src=x onerror=\"" + k_js + "\">";
const std::string k_textarea = "</textarea><svg onload=\"" + k_js + "\">";
const std::string k_css = "<style>body{display:none}</style><b style=\"color:red\">styled</b>";

/// Whether xml() escapes `"`.
enum class Quotes { escaped, kept };

/// `text` as XML character data or attribute value (how Skype writes text in content); with
/// Quotes::kept as Chromium's --dump-dom serialises a text node: & < > escaped, quotes not.
std::string xml(const std::string& text, Quotes quotes = Quotes::escaped) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '"' && quotes == Quotes::escaped)
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

nlohmann::json message(const std::string& id, const std::string& type, const std::string& content,
                       const std::string& sender, const std::string& sender_name, int minute) {
  char at[64];
  std::snprintf(at, sizeof at, "2023-11-14T22:%02d:00.000Z", minute);
  return {{"id", id},
          {"displayName", sender_name},
          {"messagetype", type},
          {"version", 1700000000000.0 + minute},
          {"content", content},
          {"from", sender},
          {"properties", nullptr},
          {"amsreferences", nullptr},
          {"originalarrivaltime", at}};
}

/// An export whose message texts, names, topics, file names, quotes, mentions and links
/// attack the page. (Raw invalid UTF-8 and lone \ud800 escapes make the extract refuse the
/// whole file, so bad code points come as character references, which the transform turns
/// into U+FFFD, and control characters as JSON escapes.)
std::string hostile_export() {
  const std::string mallory = "8:mallory";
  nlohmann::json messages = nlohmann::json::array();
  int minute = 0;
  const auto add = [&](const std::string& type, const std::string& content,
                       const std::string& name = "Mallory") {
    ++minute;
    messages.push_back(
        message("17000000" + std::to_string(10000 + minute), type, content, mallory, name, minute));
  };
  add("RichText", xml(k_script) + " " + xml(k_img), k_script);
  add("RichText", "<a href=\"javascript:" + xml(k_js) + "\">click1</a> <a href=\"JaVaScRiPt:" +
                      xml(k_js) + "\">click2</a> <a href=\"java&#x09;script:" + xml(k_js) +
                      "\">click3</a> <a href=\"  javascript:" + xml(k_js) +
                      "\">click4</a> <a href=\"https://ok.example/?q=&quot;&gt;&lt;script&gt;\">"
                      "ok</a>");
  add("RichText", "<quote author=\"8:mallory\" authorname=\"" + xml(k_img) +
                      "\" timestamp=\"1700000000\"><legacyquote>[1700000000] x: </legacyquote>" +
                      xml(k_textarea) +
                      "<legacyquote>\n\n&lt;&lt;&lt; </legacyquote></quote>reply");
  add("RichText", "hi <at id=\"8:mallory\">" + xml(k_script) + "</at>");
  add("RichText/Media_GenericFile",
      "<URIObject type=\"File.1\" uri=\"https://api.asm.skype.com/v1/objects/0-evil\" "
      "doc_id=\"0-evil\">To view this file, go to: <a href=\"javascript:" +
          xml(k_js) + "\">link</a><OriginalName v=\"" + xml(k_img) +
          ".pdf\"/><FileSize v=\"12\"/></URIObject>");
  messages.back()["amsreferences"] = {"0-evil"};
  add("RichText", xml(k_css));
  add("RichText", "entities &amp;lt;b&amp;gt; and &#x3C;script&#x3E;" + xml(k_js) +
                      "&#x3C;/script&#x3E; raw <script>" + xml(k_js) + "</script>");
  add("RichText", "bad &#xD800; &#0; &#x110000; ctl &#1; \x1b[31m end");
  add("ThreadActivity/TopicUpdate", "<topicupdate><eventtime>1700000000000</eventtime><initiator>" +
                                        mallory + "</initiator><value>" + xml(k_img) +
                                        "</value></topicupdate>");
  add("RichText/Html", "<p onclick=\"" + xml(k_js) + "\">html <a href=\"JaVaScRiPt:" + xml(k_js) +
                           "\">x</a></p>" + "<img src=x onerror=\"" + xml(k_js) + "\">");
  std::reverse(messages.begin(), messages.end());  // exports list the newest first

  nlohmann::json evil = {
      {"id", "19:evil@thread.skype"},
      {"displayName", k_img},
      {"version", 1.0},
      {"properties", nlohmann::json::object()},
      {"threadProperties",
       {{"membercount", 1}, {"members", "[\"8:mallory\"]"}, {"topic", k_script}}},
      {"MessageList", messages}};
  nlohmann::json styled = {
      {"id", "19:styled@thread.skype"},
      {"displayName", nullptr},
      {"version", 1.0},
      {"properties", nlohmann::json::object()},
      {"threadProperties", {{"membercount", 1}, {"members", "[\"8:mallory\"]"}, {"topic", k_css}}},
      {"MessageList", {message("1700000900000", "RichText", "plain", mallory, k_textarea, 59)}}};
  return nlohmann::json{{"userId", "live:.cid.owner"},
                        {"exportDate", "2023-11-20T00:00:00.000Z"},
                        {"conversations", {evil, styled}}}
      .dump();
}

/// The href and src values of `dom`.
std::vector<std::string> links_of(const std::string& dom) {
  static const std::regex link("\\s(?:href|src)=\"([^\"]*)\"");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), link); it != std::sregex_iterator();
       ++it)
    out.push_back((*it)[1].str());
  return out;
}

/// The html pages of `dir`, sorted.
std::vector<std::string> pages_in(const fs::path& dir) {
  std::vector<std::string> pages;
  for (const auto& name : names_in(dir))
    if (fs::path(name).extension() == ".html") pages.push_back(name);
  return pages;
}

}  // namespace

BOOST_AUTO_TEST_CASE(hostile_history_through_run_and_export_runs_no_script_in_chromium) {
  const std::string exe = st::find_chromium();
  if (exe.empty()) {
    BOOST_TEST_MESSAGE(
        "SKIPPED: no chromium (Debian package 'chromium', installed by "
        "scripts/install-deps.sh): the hostile html export is not rendered");
    return;
  }
  st::TestDatabase db;
  st::TempDir tmp;
  st::write_file(tmp / "messages.json", hostile_export());
  const st::CliOutput load = run_cli({"run", (tmp / "messages.json").string(), "--db",
                                      db.conninfo(), "--user-display-name", k_script, "-q"});
  BOOST_TEST_REQUIRE(load.code == 0, load.err);
  BOOST_TEST_REQUIRE(db.scalar("SELECT count(*) FROM skype.messages") == 11);
  const fs::path out = tmp / "out";
  const st::CliOutput o = run_cli({"export", out.string(), "--db", db.conninfo()});
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  const std::vector<std::string> pages = pages_in(out);
  BOOST_TEST(pages.size() == 4u);  // index, stats and the two conversations

  st::Browser browser(exe);
  std::string all;
  for (const auto& page : pages) {
    const auto p = browser.dump(out / page);
    BOOST_TEST(p.dom.find("<body") != std::string::npos, page << ": not rendered\n" << p.log);
    BOOST_TEST(p.dom.find("id=\"pwned\"") == std::string::npos, page << ": a payload ran");
    BOOST_TEST(p.dom.find("PWNED</title>") == std::string::npos, page << ": a payload ran");
    BOOST_TEST(p.dom.find("<title>PWNED") == std::string::npos, page << ": a payload ran");
    BOOST_TEST(p.log.find("Content Security Policy") == std::string::npos, page << "\n" << p.log);
    // No element the payloads bring: no <script> but our one in the index, no <img src=x>,
    // <svg onload>, <style> but ours, event handler or style attribute.
    std::size_t scripts = 0, styles = 0;
    for (std::size_t i = p.dom.find("<script"); i != std::string::npos;
         i = p.dom.find("<script", i + 1))
      ++scripts;
    for (std::size_t i = p.dom.find("<style"); i != std::string::npos;
         i = p.dom.find("<style", i + 1))
      ++styles;
    BOOST_TEST(scripts == (page == "index.html" ? 1u : 0u), page);
    BOOST_TEST(styles == 1u, page);
    BOOST_TEST(p.dom.find("<img src=\"x\"") == std::string::npos, page);
    BOOST_TEST(p.dom.find("<svg onload") == std::string::npos, page);
    BOOST_TEST(!std::regex_search(p.dom, std::regex("<[^>]*\\s(on[a-z]+|style)=\"")), page);
    // Every link is http(s), mailto or a page of the archive.
    for (const auto& url : links_of(p.dom)) {
      if (url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0 ||
          url.rfind("mailto:", 0) == 0)
        continue;
      BOOST_TEST(url.find(':') == std::string::npos, page << ": a link to " << url);
      BOOST_TEST(fs::exists(out / url.substr(0, url.find('#'))), page << ": " << url);
    }
    all += p.dom;
  }
  // The payloads are there as text: message texts, the owner's and the sender's names, the
  // conversation names and topics, the quote and its author, the mention, the file name.
  for (const std::string& text :
       {k_script, k_img, k_textarea, k_css, k_img + ".pdf", "@" + k_script,
        std::string("entities &lt;b&gt; and <script>") + k_js + "</script>"}) {
    BOOST_TEST(all.find(xml(text, Quotes::kept)) != std::string::npos, text);
  }
  BOOST_TEST(all.find("reply") != std::string::npos);
  // The hostile links are shown as text, never as links; the one https link is a link.
  BOOST_TEST(all.find("click1 click2 click3 click4 ok") != std::string::npos);
  for (const std::string& url :
       {"javascript:" + k_js, "JaVaScRiPt:" + k_js, "java\tscript:" + k_js})
    BOOST_TEST(all.find(url) != std::string::npos, url);
  const bool ok_link =
      all.find("href=\"https://ok.example/?q=%22%3E%3Cscript%3E\"") != std::string::npos ||
      all.find("href=\"https://ok.example/?q=&quot;&gt;&lt;script&gt;\"") != std::string::npos;
  BOOST_TEST(ok_link);
  // Bad code points become U+FFFD, control characters do not reach the page.
  BOOST_TEST(all.find("bad \xEF\xBF\xBD") != std::string::npos);
  BOOST_TEST(all.find('\x1b') == std::string::npos);
  BOOST_TEST(all.find('\x01') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_html_export_of_the_fixture_shows_every_message_in_order) {
  const std::string exe = st::find_chromium();
  if (exe.empty()) {
    BOOST_TEST_MESSAGE(
        "SKIPPED: no chromium (Debian package 'chromium', installed by "
        "scripts/install-deps.sh): the html export is not rendered");
    return;
  }
  // The command has no option for the page size (2000 messages a page): pagination is
  // tested on the writer with a small page (html_writer_tests).
  Loaded loaded;
  st::TempDir tmp;
  const fs::path html = export_to(loaded, tmp, "html");
  const fs::path json = export_to(loaded, tmp, "json");
  st::Browser browser(exe);
  const auto index = browser.dump(html / "index.html");
  BOOST_TEST(index.log.find("Content Security Policy") == std::string::npos, index.log);
  const auto conversations = nlohmann::json::parse(slurp(json / "index.json"))["conversations"];
  BOOST_TEST(conversations.size() == 5u);
  BOOST_TEST(index.dom.find("5 of 5 conversations") != std::string::npos, index.dom);
  for (const auto& c : conversations) {
    const std::string file = c["file"];
    const std::string page = fs::path(file).stem().string() + ".html";
    BOOST_TEST(index.dom.find("href=\"" + page + "\"") != std::string::npos, page);
    BOOST_TEST_REQUIRE(fs::exists(html / page), page);
    // The page's messages (articles and system lines, id m1, m2, ...) with their times
    // are the json export's, in its order.
    const auto p = browser.dump(html / page);
    BOOST_TEST(p.log.find("Content Security Policy") == std::string::npos, p.log);
    std::vector<std::string> want, got;
    const auto exported = nlohmann::json::parse(slurp(json / file));
    for (const auto& m : exported["messages"])
      want.push_back(m["sent_at"].is_null()
                         ? std::string()
                         : m["sent_at"].get<std::string>().substr(0, 19) + "+00:00");
    static const std::regex item("(?:<article|<div class=\"system\")[^>]* id=\"m(\\d+)\"");
    std::vector<std::size_t> starts;
    int expected = 1;
    for (auto it = std::sregex_iterator(p.dom.begin(), p.dom.end(), item);
         it != std::sregex_iterator(); ++it) {
      BOOST_TEST(std::stoi((*it)[1]) == expected++, page);
      starts.push_back(static_cast<std::size_t>(it->position()));
    }
    starts.push_back(p.dom.size());
    for (std::size_t i = 0; i + 1 < starts.size(); ++i) {
      const std::string part = p.dom.substr(starts[i], starts[i + 1] - starts[i]);
      const auto at = part.find("<time datetime=\"");
      got.push_back(at == std::string::npos ? std::string() : part.substr(at + 16, 25));
    }
    BOOST_TEST(got == want, boost::test_tools::per_element());
  }
  const auto stats = browser.dump(html / "stats.html");
  BOOST_TEST(stats.log.find("Content Security Policy") == std::string::npos, stats.log);
  BOOST_TEST(stats.dom.find("data-chart=\"months\"") != std::string::npos);
}

namespace {

/// A writer that fails at its `fail_at`-th message (counting from 1), as a full disk would.
class FailingWriter : public ar::ArchiveWriter {
 public:
  explicit FailingWriter(int fail_at) : m_fail_at(fail_at) {}
  void begin(const std::vector<ar::Conversation>&) override {}
  void begin_conversation(const ar::Conversation&) override {}
  void message(const ar::Message& m) override {
    ids.push_back(m.message_id);
    if (++m_seen == m_fail_at) throw skype_etl::OutputError("cannot write", "x.html", "disk full");
  }
  void end_conversation() override {}
  void finish(const ar::Statistics& s) override { finished_with = s.messages; }
  std::vector<std::string> ids;
  std::int64_t finished_with = -1;

 private:
  int m_fail_at;
  int m_seen = 0;
};

}  // namespace

BOOST_AUTO_TEST_CASE(write_archive_with_three_connections_reads_all_and_stops_on_errors) {
  Loaded loaded;
  namespace d = skype_etl::detail;
  // Every message once, in the order of one connection, with the statistics of another.
  std::vector<std::string> alone, shared;
  for (int connections : {1, 3}) {
    d::PgConnection conn(loaded.db.conninfo()), stats(loaded.db.conninfo()),
        second(loaded.db.conninfo());
    ar::ArchiveReader reader(conn, {});
    FailingWriter writer(-1);
    ar::write_archive(reader, writer, {}, connections == 3 ? &stats : nullptr,
                      connections == 3 ? &second : nullptr);
    BOOST_TEST(writer.finished_with == 47);
    (connections == 1 ? alone : shared) = writer.ids;
  }
  BOOST_TEST(alone.size() == 47u);
  BOOST_TEST(alone == shared);
  // A writer's error reaches the caller (the reading threads stop, nothing hangs), at the
  // first message and in the middle.
  for (int fail_at : {1, 20}) {
    d::PgConnection conn(loaded.db.conninfo()), stats(loaded.db.conninfo()),
        second(loaded.db.conninfo());
    ar::ArchiveReader reader(conn, {});
    FailingWriter writer(fail_at);
    BOOST_CHECK_THROW(ar::write_archive(reader, writer, {}, &stats, &second),
                      skype_etl::OutputError);
    BOOST_TEST(writer.ids.size() == static_cast<std::size_t>(fail_at));
    BOOST_TEST(writer.finished_with == -1);
  }
}

// --- partial directories left by killed exports, and --messages-per-page -----------------

namespace {

/// A partial directory of `target` (with a file in it) made by a child process, which is
/// then killed with SIGKILL: what `kill -9` leaves of an export. Its path.
fs::path left_by_a_killed_export(const fs::path& target) {
  int ready[2];
  BOOST_REQUIRE(::pipe(ready) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    try {
      ar::PartialDirectory partial(target);
      if (!partial.locked()) std::_Exit(2);
      st::write_file(partial.path() / "half.txt", "half written");
      const std::string line = partial.path().string() + "\n";
      if (::write(ready[1], line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        std::_Exit(3);
      for (;;) ::pause();  // until killed: no destructor runs
    } catch (...) {
      std::_Exit(1);
    }
  }
  ::close(ready[1]);
  std::string line;
  char c = 0;
  while (::read(ready[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(ready[0]);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_TEST_REQUIRE(!line.empty(),
                     "the child made no partial directory (status " << status << ")");
  BOOST_TEST_REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  const fs::path left(line);
  BOOST_TEST_REQUIRE(fs::is_regular_file(left / "half.txt"));
  return left;
}

}  // namespace

BOOST_AUTO_TEST_CASE(partial_directories_of_killed_exports_are_removed_by_the_next_export) {
  Loaded loaded;
  st::TempDir tmp;
  const fs::path out = tmp / "out";
  const fs::path first = left_by_a_killed_export(out), second = left_by_a_killed_export(out);
  // Another DIR's is not this export's to remove.
  const fs::path other = left_by_a_killed_export(tmp / "other");
  BOOST_TEST(names_in(tmp.path()).size() == 3u);

  st::CliOutput o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(st::lines(o.err) == 1u, o.err);
  BOOST_TEST(o.err.rfind("skype-etl: warning: removed 2 partial directories of interrupted "
                         "exports: ",
                         0) == 0u,
             o.err);
  BOOST_TEST(o.err.find(first.string()) != std::string::npos, o.err);
  BOOST_TEST(o.err.find(second.string()) != std::string::npos, o.err);
  BOOST_TEST(!fs::exists(fs::symlink_status(first)));
  BOOST_TEST(!fs::exists(fs::symlink_status(second)));
  BOOST_TEST((names_in(tmp.path()) == std::set<std::string>{"out", other.filename().string()}));
  BOOST_TEST(names_in(out).size() == 5u);

  // One, said so; then nothing left to say.
  const fs::path third = left_by_a_killed_export(out);
  o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt", "--force"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(o.err ==
             "skype-etl: warning: removed the partial directory of an interrupted "
             "export: \"" +
                 third.string() + "\"\n");
  o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt", "--force"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(o.err.empty(), o.err);
  // --quiet: removed all the same, without a word.
  const fs::path fourth = left_by_a_killed_export(out);
  o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt", "--force", "-q"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(o.err.empty(), o.err);
  BOOST_TEST(!fs::exists(fs::symlink_status(fourth)));
  BOOST_TEST((names_in(tmp.path()) == std::set<std::string>{"out", other.filename().string()}));
}

BOOST_AUTO_TEST_CASE(the_partial_directory_of_a_live_export_is_left_alone) {
  Loaded loaded;
  st::TempDir tmp;
  const fs::path out = tmp / "out";
  const fs::path stale = left_by_a_killed_export(out);
  std::set<std::string> held_names;
  {
    // This process is the live export: it holds its partial directory's lock throughout.
    ar::PartialDirectory held(out);
    BOOST_TEST_REQUIRE(held.locked());
    st::write_file(held.path() / "being-written.txt", "still writing");
    // Nobody else gets the lock while it lives.
    const int fd = ::open(held.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    BOOST_TEST_REQUIRE(fd >= 0);
    BOOST_TEST(::flock(fd, LOCK_EX | LOCK_NB) != 0);
    ::close(fd);

    const st::CliOutput o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt"}));
    BOOST_TEST_REQUIRE(o.code == 0, o.err);
    // The stale one went (so the clean-up ran), the held one stayed, whole.
    BOOST_TEST(st::lines(o.err) == 1u, o.err);
    BOOST_TEST(o.err.find(stale.string()) != std::string::npos, o.err);
    BOOST_TEST(o.err.find(held.path().string()) == std::string::npos, o.err);
    BOOST_TEST(!fs::exists(fs::symlink_status(stale)));
    BOOST_TEST(slurp(held.path() / "being-written.txt") == "still writing");
    held_names = names_in(tmp.path());
    BOOST_TEST((held_names == std::set<std::string>{"out", held.path().filename().string()}));
  }
  // Its own end removes it.
  BOOST_TEST(held_names.size() == 2u);
  BOOST_TEST(names_in(tmp.path()) == std::set<std::string>{"out"});
}

BOOST_AUTO_TEST_CASE(only_our_own_partial_directories_are_removed) {
  BOOST_TEST(ar::is_partial_directory_name(".out.skype-etl-partial-aZ09bY", "out"));
  for (const char* name : {".out.skype-etl-partial-abc", ".out.skype-etl-partial-abcdefg",
                           ".out.skype-etl-partial-ab_def", ".out.skype-etl-partial-ab.def",
                           "out.skype-etl-partial-abcdef", ".out2.skype-etl-partial-abcdef",
                           ".ou.skype-etl-partial-abcdef", ".out.skype-etl-partial-abcdef/",
                           ".out.skype-etl-partial--abcdef"})
    BOOST_TEST(!ar::is_partial_directory_name(name, "out"), name);
  BOOST_TEST(!ar::is_partial_directory_name("..skype-etl-partial-abcdef", ""));

  Loaded loaded;
  st::TempDir tmp;
  const fs::path out = tmp / "out";
  // What a symbolic link points to: never entered, never removed.
  st::write_file(tmp / "victim" / "keep.txt", "keep");
  // Stale and ours: removed, the link inside it and not what it names.
  const fs::path stale = tmp / ".out.skype-etl-partial-Stale1";
  fs::create_directory(stale);
  fs::create_directory_symlink(tmp / "victim", stale / "link");
  st::write_file(stale / "half.txt", "half");
  std::set<std::string> kept{"out", "victim"};
  // A file and a symbolic link with the name of one.
  st::write_file(tmp / ".out.skype-etl-partial-File01", "a file");
  fs::create_directory_symlink(tmp / "victim", tmp / ".out.skype-etl-partial-Link01");
  kept.insert({".out.skype-etl-partial-File01", ".out.skype-etl-partial-Link01"});
  // Directories whose names are not quite ours.
  for (const char* name : {".out.skype-etl-partial-abc", ".out.skype-etl-partial-abcdefg",
                           ".out.skype-etl-partial-ab_def", "out.skype-etl-partial-abcdef",
                           ".out2.skype-etl-partial-abcdef", ".ou.skype-etl-partial-abcdef"}) {
    st::write_file(tmp / name / "x.txt", "x");
    kept.insert(name);
  }
  // Another user's (only root can make one).
  if (::geteuid() == 0) {
    const fs::path theirs = tmp / ".out.skype-etl-partial-Other1";
    st::write_file(theirs / "x.txt", "x");
    BOOST_TEST_REQUIRE(::chown(theirs.c_str(), 65534, 65534) == 0);
    kept.insert(theirs.filename().string());
  } else {
    BOOST_TEST_MESSAGE("not root: another user's partial directory is not tried");
  }

  const st::CliOutput o = run_cli(loaded.with_db({"export", out.string(), "--format", "txt"}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  BOOST_TEST(o.err ==
             "skype-etl: warning: removed the partial directory of an interrupted "
             "export: \"" +
                 stale.string() + "\"\n");
  BOOST_TEST(names_in(tmp.path()) == kept);
  BOOST_TEST(slurp(tmp / "victim" / "keep.txt") == "keep");
  BOOST_TEST(slurp(tmp / ".out.skype-etl-partial-File01") == "a file");
  BOOST_TEST(fs::is_symlink(tmp / ".out.skype-etl-partial-Link01"));
  for (const auto& name : kept)
    if (name.find("skype-etl-partial") != std::string::npos && fs::is_directory(tmp / name) &&
        !fs::is_symlink(tmp / name))
      BOOST_TEST(fs::exists(tmp / name / "x.txt"), name);
}

BOOST_AUTO_TEST_CASE(messages_per_page_splits_html_conversations_into_pages) {
  Loaded loaded;
  st::TempDir tmp;
  // The conversations' file stems and message counts, from the json export's index.
  const auto index = nlohmann::json::parse(slurp(export_to(loaded, tmp, "json") / "index.json"));
  const fs::path out = export_to(loaded, tmp, "html", {"--messages-per-page", "2"});
  std::size_t split = 0, more_pages = 0;
  for (const auto& c : index["conversations"]) {
    const std::string stem = fs::path(c["file"].get<std::string>()).stem().string();
    const auto count = c["message_count"].get<std::int64_t>();
    const std::int64_t pages = std::max<std::int64_t>(1, (count + 1) / 2);
    BOOST_TEST(fs::is_regular_file(out / (stem + ".html")), stem);
    for (std::int64_t p = 2; p <= pages; ++p)
      BOOST_TEST(fs::is_regular_file(out / (stem + "-p" + std::to_string(p) + ".html")),
                 stem << " page " << p);
    BOOST_TEST(!fs::exists(out / (stem + "-p" + std::to_string(pages + 1) + ".html")), stem);
    split += pages > 1;
    more_pages += static_cast<std::size_t>(pages - 1);
  }
  BOOST_TEST(split >= 2u, "the fixture has conversations of more than 2 messages");
  // The default (2000) puts each of the fixture's conversations on one page.
  const fs::path whole = tmp / "whole";
  const st::CliOutput o = run_cli(loaded.with_db({"export", whole.string()}));
  BOOST_TEST_REQUIRE(o.code == 0, o.err);
  for (const auto& name : names_in(whole))
    BOOST_TEST(!std::regex_search(name, std::regex("-p[0-9]+\\.html$")), name);
  BOOST_TEST(names_in(whole).size() + more_pages == names_in(out).size());

  // Bad values, and any other format: a usage error (exit 2) in one line, nothing written.
  const fs::path none = tmp / "none";
  const auto refused = [&](std::vector<std::string> args, const std::string& says) {
    args.insert(args.begin(), {"export", none.string()});
    const st::CliOutput r = run_cli(loaded.with_db(args));
    BOOST_TEST(r.code == 2, says << ": " << r.err);
    BOOST_TEST(st::lines(r.err) == 1u, r.err);
    BOOST_TEST(r.err.find("skype-etl: error: " + says) == 0u, r.err);
    BOOST_TEST(r.out.empty(), r.out);
    BOOST_TEST(!fs::exists(none));
  };
  const std::string range = "--messages-per-page must be a whole number from 1 to 1000000000";
  refused({"--messages-per-page", "0"}, range + " (got \"0\")");
  refused({"--messages-per-page", "-5"}, range + " (got \"-5\")");
  refused({"--messages-per-page", "ten"}, range + " (got \"ten\")");
  refused({"--messages-per-page", "2.5"}, range + " (got \"2.5\")");
  refused({"--messages-per-page", "1000000001"}, range);
  refused({"--messages-per-page", "99999999999999999999999"}, range);
  for (const char* format : {"txt", "csv", "json"})
    refused(
        {"--format", format, "--messages-per-page", "2"},
        std::string("--messages-per-page is for --format html only (got --format ") + format + ")");
}
