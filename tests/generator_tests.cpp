#define BOOST_TEST_MODULE generator_tests
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "generator/generator.hpp"
#include "support/tar_writer.hpp"

namespace fs = std::filesystem;
using skype_etl::gen::generate_export;
using skype_etl::gen::GeneratorOptions;
using skype_etl::gen::GeneratorSummary;
using skype_etl::test::TempDir;

namespace {

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

GeneratorOptions options_for(std::uint64_t seed, std::uint64_t messages, bool quirks = true) {
  GeneratorOptions options;
  options.seed = seed;
  options.messages = messages;
  options.quirks = quirks;
  return options;
}

struct CommandResult {
  int status = -1;
  std::string output;
};

CommandResult run(const std::string& command) {
  CommandResult result;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  BOOST_REQUIRE_MESSAGE(pipe != nullptr, "popen failed for: " << command);
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  result.status = ::pclose(pipe);
  return result;
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// "YYYY-MM-DDTHH:MM:SS[.f{2,3}]Z" to ms since the epoch; -1 when malformed.
std::int64_t parse_timestamp(const std::string& s) {
  const bool shape = (s.size() == 20 || s.size() == 23 || s.size() == 24) && s[4] == '-' &&
                     s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s.back() == 'Z';
  if (!shape) return -1;
  const auto num = [&s](std::size_t at, std::size_t len) { return std::stoll(s.substr(at, len)); };
  std::int64_t ms = (days_from_civil(num(0, 4), static_cast<unsigned>(num(5, 2)),
                                     static_cast<unsigned>(num(8, 2))) *
                         86400 +
                     num(11, 2) * 3600 + num(14, 2) * 60 + num(17, 2)) *
                    1000;
  if (s.size() > 20) {
    if (s[19] != '.') return -1;
    const std::string frac = s.substr(20, s.size() - 21);
    ms += std::stoll(frac) * (frac.size() == 2 ? 10 : 1);
  }
  return ms;
}

struct Counts {
  std::uint64_t conversations = 0;
  std::uint64_t messages = 0;
  std::uint64_t distinct = 0;
  std::map<std::string, std::uint64_t> by_type;
};

Counts count(const nlohmann::json& doc) {
  Counts c;
  for (const auto& conversation : doc.at("conversations")) {
    ++c.conversations;
    std::set<std::string> ids;
    for (const auto& message : conversation.at("MessageList")) {
      ++c.messages;
      ++c.by_type[message.at("messagetype").get<std::string>()];
      ids.insert(message.at("id").get<std::string>());
    }
    c.distinct += ids.size();
  }
  return c;
}

void check_counts(const nlohmann::json& doc, const GeneratorSummary& summary) {
  const Counts c = count(doc);
  BOOST_TEST(c.conversations == summary.conversations);
  BOOST_TEST(c.messages == summary.messages);
  BOOST_TEST(c.distinct == summary.distinct_messages);
  BOOST_TEST(c.by_type == summary.messages_by_type);
}

// Reads an octal tar header field.
std::uint64_t octal(const std::string& block, std::size_t at, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = at; i < at + width && block[i] >= '0' && block[i] <= '7'; ++i) {
    value = value * 8 + static_cast<std::uint64_t>(block[i] - '0');
  }
  return value;
}

// The 35 message types FORMAT.md lists, plus the unknown type the generator adds.
const char* const all_types[] = {
    "Text",
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
    "Signal/Flamingo",
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(generator_tests)

BOOST_AUTO_TEST_CASE(same_seed_gives_same_bytes_and_different_seed_differs) {
  TempDir dir;
  const GeneratorOptions a = options_for(11, 3000);
  const GeneratorSummary first = generate_export(a, dir / "a1.json");
  const GeneratorSummary second = generate_export(a, dir / "a2.json");
  const std::string bytes = read_all(dir / "a1.json");
  BOOST_TEST(bytes == read_all(dir / "a2.json"));
  BOOST_TEST(first.file_bytes == second.file_bytes);
  BOOST_TEST(first.messages_by_type == second.messages_by_type);
  BOOST_TEST(bytes.size() == first.json_bytes);
  BOOST_TEST(first.json_bytes == first.file_bytes);

  generate_export(options_for(12, 3000), dir / "b.json");
  BOOST_TEST(bytes != read_all(dir / "b.json"));

  GeneratorOptions tar = a;
  tar.format = GeneratorOptions::Format::tar;
  const GeneratorSummary t1 = generate_export(tar, dir / "a1.tar");
  generate_export(tar, dir / "a2.tar");
  BOOST_TEST(read_all(dir / "a1.tar") == read_all(dir / "a2.tar"));
  BOOST_TEST(t1.json_bytes == first.json_bytes);
}

BOOST_AUTO_TEST_CASE(a_later_export_adds_newer_messages_and_keeps_the_others) {
  TempDir dir;
  const GeneratorOptions base = options_for(13, 6000);
  GeneratorOptions later = base;
  later.newer_percent = 10;
  generate_export(base, dir / "base.json");
  const GeneratorSummary summary = generate_export(later, dir / "later.json");
  const nlohmann::json a = nlohmann::json::parse(read_all(dir / "base.json"));
  const nlohmann::json b = nlohmann::json::parse(read_all(dir / "later.json"));
  BOOST_TEST(b.at("userId") == a.at("userId"));
  BOOST_TEST(parse_timestamp(b.at("exportDate").get<std::string>() + ":00Z") -
                 parse_timestamp(a.at("exportDate").get<std::string>() + ":00Z") ==
             30LL * 86'400'000);
  BOOST_REQUIRE(b.at("conversations").size() == a.at("conversations").size());
  std::uint64_t added = 0;
  for (std::size_t c = 0; c < a.at("conversations").size(); ++c) {
    const nlohmann::json& old_list = a.at("conversations")[c].at("MessageList");
    const nlohmann::json& new_list = b.at("conversations")[c].at("MessageList");
    const std::size_t extra = old_list.size() * 10 / 100;
    BOOST_REQUIRE(new_list.size() == old_list.size() + extra);
    added += extra;
    // The export's messages, unchanged, after the newer ones.
    BOOST_TEST(nlohmann::json(new_list.begin() + static_cast<std::ptrdiff_t>(extra),
                              new_list.end()) == old_list);
    std::set<std::string> old_ids;
    for (const auto& m : old_list) old_ids.insert(m.at("id").get<std::string>());
    for (std::size_t i = 0; i < extra; ++i) {
      BOOST_TEST(old_ids.count(new_list[i].at("id").get<std::string>()) == 0u);
      BOOST_TEST(parse_timestamp(new_list[i].at("originalarrivaltime")) >
                 parse_timestamp(new_list[extra].at("originalarrivaltime")));
    }
  }
  BOOST_TEST(added > 400u);
  BOOST_TEST(summary.messages == 6000u + added);
}

BOOST_AUTO_TEST_CASE(summary_matches_parsed_document) {
  TempDir dir;
  for (const bool quirks : {true, false}) {
    BOOST_TEST_CONTEXT("quirks " << quirks) {
      const GeneratorSummary summary =
          generate_export(options_for(5, 20000, quirks), dir / "e.json");
      const std::string bytes = read_all(dir / "e.json");
      BOOST_TEST(bytes.size() == summary.json_bytes);
      const nlohmann::json doc = nlohmann::json::parse(bytes);
      BOOST_TEST(summary.messages == 20000u);
      check_counts(doc, summary);
      if (quirks) {
        BOOST_TEST(summary.distinct_messages < summary.messages);
      } else {
        BOOST_TEST(summary.distinct_messages == summary.messages);
      }
      BOOST_TEST(doc.at("userId") == "8:live:.cid.0123456789abcdef");
      const std::string export_date = doc.at("exportDate");
      BOOST_TEST(export_date.size() == 16u);
      BOOST_TEST(parse_timestamp(export_date + ":00Z") > 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(message_lists_run_newest_first) {
  TempDir dir;
  generate_export(options_for(21, 30000), dir / "e.json");
  const nlohmann::json doc = nlohmann::json::parse(read_all(dir / "e.json"));
  std::map<std::size_t, std::uint64_t> fraction_digits;
  std::uint64_t repeated = 0;
  for (const auto& conversation : doc.at("conversations")) {
    const std::string id = conversation.at("id");
    std::int64_t previous = -1;
    std::map<std::string, double> version_of;
    for (const auto& message : conversation.at("MessageList")) {
      const std::string time = message.at("originalarrivaltime");
      const std::int64_t ms = parse_timestamp(time);
      BOOST_REQUIRE_MESSAGE(ms > 0, "bad originalarrivaltime " << time);
      fraction_digits[time.size() == 20 ? 0 : time.size() - 21]++;
      if (previous >= 0) BOOST_REQUIRE_MESSAGE(ms < previous, "not newest first in " << id);
      previous = ms;
      BOOST_TEST(message.at("conversationid") == id);
      const std::string message_id = message.at("id");
      BOOST_REQUIRE(!message_id.empty());
      BOOST_TEST(message_id.find_first_not_of("0123456789") == std::string::npos);
      if (!message.contains("version")) continue;
      const double version = message.at("version").get<double>();
      const auto seen = version_of.find(message_id);
      if (seen != version_of.end()) {
        // A server-side duplicate: listed first, with the higher version.
        ++repeated;
        BOOST_TEST(seen->second > version);
      }
      version_of.emplace(message_id, version);
    }
  }
  BOOST_TEST(repeated > 0u);
  BOOST_TEST(fraction_digits[0] > 0u);
  BOOST_TEST(fraction_digits[2] > 0u);
  BOOST_TEST(fraction_digits[3] > 0u);
  BOOST_TEST(fraction_digits.size() == 3u);
}

BOOST_AUTO_TEST_CASE(every_family_type_and_quirk_appears) {
  TempDir dir;
  const GeneratorSummary summary = generate_export(options_for(3, 60000), dir / "e.json");
  const std::string bytes = read_all(dir / "e.json");
  const nlohmann::json doc = nlohmann::json::parse(bytes);
  for (const char* type : all_types) {
    BOOST_TEST_CONTEXT(type) {
      BOOST_TEST(summary.messages_by_type.count(type) == 1u);
    }
  }
  BOOST_TEST(summary.messages_by_type.size() == std::size(all_types));

  std::map<std::string, int> families;
  std::map<std::string, int> seen;
  const auto note = [&seen](const char* what, bool condition) {
    if (condition) ++seen[what];
  };
  for (const auto& c : doc.at("conversations")) {
    const std::string id = c.at("id");
    for (const char* suffix : {"@thread.skype", "@thread.v2", "@p2p.thread.skype", "@cast.skype"}) {
      if (starts_with(id, "19:") && ends_with(id, suffix)) ++families[suffix];
    }
    for (const char* prefix : {"8:", "28:", "48:calllogs", "48:notes", "4:+", "guest:"}) {
      if (starts_with(id, prefix)) ++families[prefix];
    }
    note("conversation displayName null", c.contains("displayName") && c["displayName"].is_null());
    note("conversation displayName html",
         c.contains("displayName") && c["displayName"].is_string() &&
             c["displayName"].get<std::string>().find("<b>") != std::string::npos);
    note("conversation properties missing", !c.contains("properties"));
    note("conversation properties null", c.contains("properties") && c["properties"].is_null());
    BOOST_TEST(c.at("version").is_number_float());
    if (c.contains("threadProperties") && c["threadProperties"].is_object()) {
      const auto& tp = c["threadProperties"];
      BOOST_REQUIRE(tp.at("members").is_string());
      const auto members = nlohmann::json::parse(tp["members"].get<std::string>());
      BOOST_REQUIRE(members.is_array());
      BOOST_TEST(!members.empty());
      note("members as objects", members[0].is_object() && members[0].contains("MemberMri"));
      note("members as strings", members[0].is_string());
      note("membercount as string", tp.at("membercount").is_string());
    } else {
      note("threadProperties null", c.contains("threadProperties"));
      BOOST_TEST(!starts_with(id, "19:"));
    }
    for (const auto& m : c.at("MessageList")) {
      const std::string type = m.at("messagetype");
      const std::string content = m.at("content");
      const std::string from = m.at("from");
      note("from without prefix",
           from.find(':') == std::string::npos || starts_with(from, "live:"));
      note("displayName null", m.contains("displayName") && m["displayName"].is_null());
      note("displayName missing", !m.contains("displayName"));
      note("properties missing", !m.contains("properties"));
      note("version without fraction", m.contains("version") && m["version"].is_number_integer());
      note("deleted", content.empty());
      if (m.contains("properties") && m["properties"].is_object()) {
        const auto& p = m["properties"];
        note("edittime string", p.contains("edittime") && p["edittime"].is_string());
        note("edittime number", p.contains("edittime") && p["edittime"].is_number());
        note("deletetime", p.contains("deletetime"));
        note("server generated true",
             p.contains("isserversidegenerated") && p["isserversidegenerated"].is_boolean());
        note("server generated True",
             p.contains("isserversidegenerated") && p["isserversidegenerated"] == "True");
        note("emotions", p.contains("emotions") && p["emotions"].is_array());
        if (p.contains("urlpreviews")) {
          note("urlpreviews",
               nlohmann::json::parse(p["urlpreviews"].get<std::string>()).is_array());
        }
        if (p.contains("callLog")) {
          note("callLog", nlohmann::json::parse(p["callLog"].get<std::string>()).is_object());
        }
      }
      if (m.contains("amsreferences") && m["amsreferences"].is_array()) {
        note("amsreferences",
             content.find(m["amsreferences"][0].get<std::string>()) != std::string::npos);
      }
      if (type == "Notice" || type == "PopCard") {
        note("notice json", nlohmann::json::parse(content).is_array());
      }
      note("entity apos", content.find("&apos;") != std::string::npos);
      note("entity amp", content.find("&amp;") != std::string::npos);
      note("numeric entity", content.find("&#128") != std::string::npos);
      note("mention", content.find("<at id=\"") != std::string::npos);
      note("link", content.find("<a href=\"") != std::string::npos);
      note("emoticon", content.find("<ss type=") != std::string::npos);
      note("quote", content.find("<legacyquote>") != std::string::npos);
      note("edit marker", content.find("<e_m ") != std::string::npos);
      note("partlist", type == "Event/Call" && content.find("<partlist type=") == 0);
      note("uriobject", content.find("<URIObject") != std::string::npos);
      note("swift", content.find("<Swift b64=") != std::string::npos);
      note("literal lt in Text", type == "Text" && content.find('<') != std::string::npos);
      note("copy end marker", content.find("\n\\.\n") != std::string::npos);
      note("tab", content.find('\t') != std::string::npos);
      note("backslash", content.find('\\') != std::string::npos);
      note("double quote", content.find('"') != std::string::npos);
      note("control character", content.find('\x07') != std::string::npos);
      note("cyrillic", content.find("Привет") != std::string::npos ||
                           content.find("Спасибо") != std::string::npos);
      note("cjk", content.find("好") != std::string::npos);
      note("emoji", content.find("\xF0\x9F") != std::string::npos);
    }
  }
  for (const char* family : {"@thread.skype", "@thread.v2", "@p2p.thread.skype", "@cast.skype",
                             "8:", "28:", "48:calllogs", "48:notes", "4:+", "guest:"}) {
    BOOST_TEST_CONTEXT("family " << family) {
      BOOST_TEST(families[family] > 0);
    }
  }
  BOOST_TEST(families["48:calllogs"] == 1);
  for (const char* what : {"conversation displayName null",
                           "conversation displayName html",
                           "conversation properties missing",
                           "conversation properties null",
                           "members as objects",
                           "members as strings",
                           "membercount as string",
                           "threadProperties null",
                           "from without prefix",
                           "displayName null",
                           "displayName missing",
                           "properties missing",
                           "version without fraction",
                           "deleted",
                           "edittime string",
                           "edittime number",
                           "deletetime",
                           "server generated true",
                           "server generated True",
                           "emotions",
                           "urlpreviews",
                           "callLog",
                           "amsreferences",
                           "notice json",
                           "entity apos",
                           "entity amp",
                           "numeric entity",
                           "mention",
                           "link",
                           "emoticon",
                           "quote",
                           "edit marker",
                           "partlist",
                           "uriobject",
                           "swift",
                           "literal lt in Text",
                           "copy end marker",
                           "tab",
                           "backslash",
                           "double quote",
                           "control character",
                           "cyrillic",
                           "cjk",
                           "emoji"}) {
    BOOST_TEST_CONTEXT(what) {
      BOOST_TEST(seen[what] > 0);
    }
  }
  // JSON-level escapes: \u escapes of Latin-1 letters and surrogate pairs for emoji.
  BOOST_TEST(bytes.find("\\u00e9") != std::string::npos);
  BOOST_TEST(bytes.find("\\ud83d\\u") != std::string::npos);
  BOOST_TEST(bytes.find("\\u0007") != std::string::npos);
  BOOST_TEST(bytes.find("\\n\\\\.\\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(without_quirks_every_field_is_present_and_typed) {
  TempDir dir;
  const GeneratorSummary summary = generate_export(options_for(8, 20000, false), dir / "e.json");
  BOOST_TEST(summary.messages_by_type.count("Signal/Flamingo") == 0u);
  const nlohmann::json doc = nlohmann::json::parse(read_all(dir / "e.json"));
  for (const auto& c : doc.at("conversations")) {
    BOOST_REQUIRE(c.contains("properties"));
    BOOST_REQUIRE(c.contains("threadProperties"));
    if (c["threadProperties"].is_object()) {
      BOOST_TEST(c["threadProperties"].at("membercount").is_number_integer());
      for (const auto& member :
           nlohmann::json::parse(c["threadProperties"]["members"].get<std::string>())) {
        BOOST_TEST(member.is_string());
      }
    }
    for (const auto& m : c.at("MessageList")) {
      for (const char* key : {"id", "displayName", "originalarrivaltime", "messagetype", "version",
                              "content", "conversationid", "from", "properties", "amsreferences"}) {
        BOOST_REQUIRE_MESSAGE(m.contains(key), "missing " << key);
      }
      BOOST_TEST(m["version"].is_number_float());
      if (m["properties"].is_object()) {
        for (const char* key : {"edittime", "deletetime"}) {
          if (m["properties"].contains(key)) BOOST_TEST(m["properties"][key].is_string());
        }
        if (m["properties"].contains("isserversidegenerated")) {
          BOOST_TEST(m["properties"]["isserversidegenerated"].is_boolean());
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(conversation_count_and_edge_sizes) {
  TempDir dir;
  struct Case {
    std::uint64_t messages;
    std::size_t conversations;
  };
  for (const Case k : {Case{100, 7}, Case{5, 20}, Case{0, 0}, Case{1, 0}, Case{2000, 1}}) {
    BOOST_TEST_CONTEXT(k.messages << " messages in " << k.conversations << " conversations") {
      GeneratorOptions options = options_for(4, k.messages);
      options.conversations = k.conversations;
      const GeneratorSummary summary = generate_export(options, dir / "e.json");
      const nlohmann::json doc = nlohmann::json::parse(read_all(dir / "e.json"));
      check_counts(doc, summary);
      BOOST_TEST(summary.messages == k.messages);
      BOOST_TEST(summary.conversations == (k.conversations == 0 ? 1u : k.conversations));
    }
  }
  // Without a count the distribution is skewed: a few chats hold most messages.
  const GeneratorSummary summary = generate_export(options_for(4, 40000), dir / "e.json");
  const nlohmann::json doc = nlohmann::json::parse(read_all(dir / "e.json"));
  std::vector<std::size_t> sizes;
  for (const auto& c : doc.at("conversations")) sizes.push_back(c.at("MessageList").size());
  std::sort(sizes.rbegin(), sizes.rend());
  BOOST_TEST(summary.conversations == 400u);  // 2 * sqrt(40000)
  BOOST_TEST(sizes.front() > 40000u / 20);
  BOOST_TEST(sizes[sizes.size() / 2] < 40000u / 400);
}

BOOST_AUTO_TEST_CASE(average_message_is_realistically_sized) {
  TempDir dir;
  for (const std::uint64_t seed : {1u, 2u}) {
    const GeneratorSummary summary = generate_export(options_for(seed, 200000), dir / "e.json");
    const double average = static_cast<double>(summary.json_bytes) / summary.messages;
    BOOST_TEST_MESSAGE("seed " << seed << ": " << average << " bytes per message");
    BOOST_TEST(average >= 250.0);
    BOOST_TEST(average <= 350.0);
  }
}

BOOST_AUTO_TEST_CASE(tar_is_valid_ustar_holding_the_same_json) {
  TempDir dir;
  std::set<bool> layouts;  // messages.json first or endpoints.json first
  for (std::uint64_t seed = 1; seed <= 8 && layouts.size() < 2; ++seed) {
    BOOST_TEST_CONTEXT("seed " << seed) {
      GeneratorOptions options = options_for(seed, 2000);
      const GeneratorSummary json = generate_export(options, dir / "e.json");
      options.format = GeneratorOptions::Format::tar;
      const GeneratorSummary tar = generate_export(options, dir / "e.tar");
      const std::string bytes = read_all(dir / "e.tar");
      BOOST_REQUIRE_EQUAL(bytes.size(), tar.file_bytes);
      BOOST_TEST(bytes.size() % 512 == 0u);
      BOOST_TEST(bytes.substr(bytes.size() - 1024) == std::string(1024, '\0'));
      BOOST_TEST(tar.messages_by_type == json.messages_by_type);

      // Walk the headers ourselves.
      std::size_t at = 0;
      std::vector<std::string> names;
      std::string messages_json;
      while (at + 512 <= bytes.size() && bytes[at] != '\0') {
        const std::string header = bytes.substr(at, 512);
        unsigned sum = 0;
        for (std::size_t i = 0; i < 512; ++i) {
          sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(header[i]);
        }
        BOOST_TEST(octal(header, 148, 7) == sum);
        BOOST_TEST(header.compare(257, 8,
                                  std::string("ustar\0"
                                              "00",
                                              8)) == 0);
        BOOST_TEST(header[156] == '0');
        const std::string name = header.substr(0, 100).c_str();
        BOOST_TEST(header.substr(345, 155) == std::string(155, '\0'));  // at the root
        const std::uint64_t size = octal(header, 124, 12);
        names.push_back(name);
        if (name == "messages.json") {
          BOOST_TEST(size == tar.json_bytes);
          messages_json = bytes.substr(at + 512, size);
        }
        at += 512 + (size + 511) / 512 * 512;
      }
      BOOST_TEST(at + 1024 == bytes.size());
      BOOST_REQUIRE_EQUAL(names.size(), 2u);
      BOOST_TEST((names[0] == "messages.json" || names[1] == "messages.json"));
      BOOST_TEST((names[0] == "endpoints.json" || names[1] == "endpoints.json"));
      layouts.insert(names[0] == "messages.json");
      BOOST_TEST(messages_json == read_all(dir / "e.json"));

      // And with GNU tar, when it is installed.
      if (std::system("tar --version > /dev/null 2>&1") == 0) {
        const CommandResult list = run("tar -tvf '" + (dir / "e.tar").string() + "' 2>&1");
        BOOST_TEST(list.status == 0);
        BOOST_TEST(list.output.find(" " + std::to_string(tar.json_bytes) + " ") !=
                   std::string::npos);
        BOOST_TEST(list.output.find(" messages.json\n") != std::string::npos);
        const CommandResult extracted =
            run("tar -xOf '" + (dir / "e.tar").string() + "' messages.json");
        BOOST_TEST(extracted.status == 0);
        BOOST_TEST(extracted.output == messages_json);
      }
    }
  }
  BOOST_TEST(layouts.size() == 2u);
}

BOOST_AUTO_TEST_CASE(command_line_prints_the_summary) {
  TempDir dir;
  const fs::path out = dir / "cli.tar";
  const CommandResult result =
      run(std::string(SKYPE_ETL_GENERATE_EXE) + " --messages 1500 --seed 9 --format tar " +
          "--conversations 12 --no-quirks -o '" + out.string() + "'");
  BOOST_REQUIRE_EQUAL(result.status, 0);
  BOOST_REQUIRE(!result.output.empty());
  BOOST_TEST(result.output.find('\n') == result.output.size() - 1);  // one line
  const nlohmann::json line = nlohmann::json::parse(result.output);

  GeneratorOptions options = options_for(9, 1500, false);
  options.conversations = 12;
  options.format = GeneratorOptions::Format::tar;
  const GeneratorSummary summary = generate_export(options, dir / "lib.tar");
  BOOST_TEST(read_all(out) == read_all(dir / "lib.tar"));
  BOOST_TEST(line.at("messages") == summary.messages);
  BOOST_TEST(line.at("conversations") == 12);
  BOOST_TEST(line.at("distinct_messages") == summary.distinct_messages);
  BOOST_TEST(line.at("json_bytes") == summary.json_bytes);
  BOOST_TEST(line.at("file_bytes") == summary.file_bytes);
  using TypeCounts = std::map<std::string, std::uint64_t>;
  const auto by_type = line.at("messages_by_type").get<TypeCounts>();
  BOOST_TEST(by_type == summary.messages_by_type);

  const CommandResult bad = run(std::string(SKYPE_ETL_GENERATE_EXE) + " --format zip -o '" +
                                (dir / "x").string() + "' 2>&1");
  BOOST_TEST(bad.status != 0);
}

BOOST_AUTO_TEST_CASE(unwritable_output_is_reported) {
  BOOST_CHECK_EXCEPTION(generate_export(options_for(1, 10), "/proc/no/such/dir/e.json"),
                        std::runtime_error, [](const std::runtime_error& e) {
                          return std::string(e.what()).find("/proc/no/such/dir/e.json") !=
                                 std::string::npos;
                        });
}

BOOST_AUTO_TEST_SUITE_END()
