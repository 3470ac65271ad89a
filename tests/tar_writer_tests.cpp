#define BOOST_TEST_MODULE tar_writer_tests
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "support/tar_writer.hpp"

namespace fs = std::filesystem;
using skype_etl::test::make_tar;
using skype_etl::test::TarDialect;
using skype_etl::test::TarEntry;
using skype_etl::test::TempDir;

namespace {

struct CommandResult {
  int status = -1;
  std::string output;
};

// Runs `command` through the shell and captures its standard output.
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

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A 150-byte path whose last '/' leaves 100 bytes or fewer after it, so every dialect
// (ustar via its prefix field) can hold it.
std::string long_path() {
  std::string path = "top/" + std::string(60, 'd') + "/" + std::string(40, 'e') + "/";
  path += std::string(150 - path.size() - 4, 'f') + ".txt";
  BOOST_REQUIRE_EQUAL(path.size(), 150u);
  return path;
}

std::vector<TarEntry> common_entries() {
  std::vector<TarEntry> entries;
  entries.push_back({"top", "", '5', ""});
  entries.push_back({"top/hello.txt", "hello, tar\n", '0', ""});
  entries.push_back({long_path(), std::string(1000, 'x') + "end", '0', ""});
  entries.push_back({"top/empty.bin", "", '0', ""});
  entries.push_back({"top/link", "", '2', "hello.txt"});
  entries.push_back({"top/hard", "", '1', "top/hello.txt"});
  return entries;
}

// Lists `archive` with GNU tar and checks names, types and sizes, then extracts it.
void check_with_gnu_tar(const std::vector<TarEntry>& entries, TarDialect dialect) {
  TempDir dir;
  const fs::path archive = dir / "fixture.tar";
  const std::string bytes = make_tar(entries, dialect);
  BOOST_REQUIRE_EQUAL(bytes.size() % 512, 0u);
  skype_etl::test::write_file(archive, bytes);

  CommandResult list = run("tar -tvf " + quoted(archive) + " 2>&1");
  BOOST_TEST_MESSAGE(list.output);
  BOOST_REQUIRE_EQUAL(list.status, 0);
  const std::vector<std::string> lines = lines_of(list.output);
  BOOST_REQUIRE_EQUAL(lines.size(), entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const TarEntry& entry = entries[i];
    const std::string& line = lines[i];
    std::string expected_name = entry.name;
    if (entry.type == '5' && expected_name.back() != '/') expected_name += '/';
    BOOST_TEST_CONTEXT("entry " << entry.name << " listed as: " << line) {
      const char expected_kind = entry.type == '5'   ? 'd'
                                 : entry.type == '2' ? 'l'
                                 : entry.type == '1' ? 'h'
                                                     : '-';
      BOOST_TEST(line.front() == expected_kind);
      BOOST_TEST(line.find(" root/root ") != std::string::npos);
      if (entry.type == '2') {
        BOOST_TEST(line.find(" " + expected_name + " -> " + entry.link_target) !=
                   std::string::npos);
      } else if (entry.type == '1') {
        BOOST_TEST(line.find(" " + expected_name + " link to " + entry.link_target) !=
                   std::string::npos);
      } else {
        BOOST_TEST(line.size() > expected_name.size());
        BOOST_TEST(line.compare(line.size() - expected_name.size(), expected_name.size(),
                                expected_name) == 0);
        if (entry.type == '0') {
          BOOST_TEST(line.find(" " + std::to_string(entry.data.size()) + " ") != std::string::npos);
        }
      }
    }
  }

  const fs::path out = dir / "out";
  fs::create_directories(out);
  CommandResult extract = run("tar -xf " + quoted(archive) + " -C " + quoted(out) + " 2>&1");
  BOOST_REQUIRE_MESSAGE(extract.status == 0, extract.output);
  for (const TarEntry& entry : entries) {
    const fs::path path = out / entry.name;
    BOOST_TEST_CONTEXT("extracted " << entry.name) {
      switch (entry.type) {
        case '5':
          BOOST_TEST(fs::is_directory(path));
          break;
        case '2':
          BOOST_TEST(fs::is_symlink(path));
          BOOST_TEST(fs::read_symlink(path).string() == entry.link_target);
          break;
        case '1':
          BOOST_TEST(fs::is_regular_file(path));
          BOOST_TEST(fs::hard_link_count(path) == 2u);
          BOOST_TEST(read_all(path) == read_all(out / entry.link_target));
          break;
        default:
          BOOST_TEST(read_all(path) == entry.data);
      }
    }
  }
}

unsigned header_checksum(const std::string& block) {
  unsigned sum = 0;
  for (std::size_t i = 0; i < 512; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(block[i]);
  }
  return sum;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tar_writer_tests)

BOOST_AUTO_TEST_CASE(ustar_dialect_lists_and_extracts) {
  check_with_gnu_tar(common_entries(), TarDialect::ustar);
}

BOOST_AUTO_TEST_CASE(gnu_dialect_lists_and_extracts_long_names_and_links) {
  std::vector<TarEntry> entries = common_entries();
  // No '/' at all: only a GNU long-name entry can hold this name.
  entries.push_back({std::string(200, 'g') + ".json", "{}", '0', ""});
  entries.push_back({"top/long-link", "", '2', long_path()});
  check_with_gnu_tar(entries, TarDialect::gnu);

  const std::string bytes = make_tar(entries, TarDialect::gnu);
  BOOST_TEST(bytes.find("././@LongLink") != std::string::npos);
  BOOST_TEST(bytes.find(std::string("ustar  \0", 8)) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(pax_dialect_lists_and_extracts_long_names_and_links) {
  std::vector<TarEntry> entries = common_entries();
  entries.push_back({std::string(200, 'p') + ".json", "{\"a\":1}", '0', ""});
  entries.push_back({"top/long-link", "", '2', long_path()});
  check_with_gnu_tar(entries, TarDialect::pax);

  const std::string bytes = make_tar(entries, TarDialect::pax);
  const std::string record = " path=" + std::string(200, 'p') + ".json\n";
  const std::size_t at = bytes.find(record);
  BOOST_REQUIRE(at != std::string::npos);
  // The record's decimal length counts the whole record, its own digits included.
  const std::size_t start = bytes.rfind('\0', at) + 1;
  const std::size_t length = std::stoul(bytes.substr(start, at - start));
  BOOST_TEST(length == at - start + record.size());
}

BOOST_AUTO_TEST_CASE(headers_carry_checksum_mode_size_and_trailer) {
  const std::string bytes = make_tar({{"a.txt", "abc", '0', ""}, {"d", "", '5', ""}});
  BOOST_REQUIRE_EQUAL(bytes.size(), 512u * 2 + 512u + 1024u);
  const std::string first = bytes.substr(0, 512);
  BOOST_TEST(first.compare(0, 6, "a.txt\0", 6) == 0);
  BOOST_TEST(first.compare(100, 8, std::string("0000644\0", 8)) == 0);
  BOOST_TEST(first.compare(124, 12, std::string("00000000003\0", 12)) == 0);
  BOOST_TEST(first[156] == '0');
  BOOST_TEST(first.compare(257, 8,
                           std::string("ustar\0"
                                       "00",
                                       8)) == 0);
  BOOST_TEST(std::stoul(first.substr(148, 6), nullptr, 8) == header_checksum(first));
  BOOST_TEST(bytes.compare(512, 3, "abc") == 0);
  const std::string second = bytes.substr(1024, 512);
  BOOST_TEST(second.compare(0, 3, std::string("d/\0", 3)) == 0);
  BOOST_TEST(second[156] == '5');
  BOOST_TEST(second.compare(100, 8, std::string("0000755\0", 8)) == 0);
  BOOST_TEST(std::stoul(second.substr(148, 6), nullptr, 8) == header_checksum(second));
  BOOST_TEST(bytes.substr(1536) == std::string(1024, '\0'));
}

BOOST_AUTO_TEST_CASE(ustar_prefix_field_splits_at_a_slash) {
  const std::string name = long_path();
  const std::string bytes = make_tar({{name, "x", '0', ""}});
  const std::string name_field = bytes.substr(0, 100).c_str();
  const std::string prefix_field = bytes.substr(345, 155).c_str();
  BOOST_TEST(!prefix_field.empty());
  BOOST_TEST(name_field.size() <= 100u);
  BOOST_TEST(prefix_field + "/" + name_field == name);
}

BOOST_AUTO_TEST_CASE(ustar_rejects_names_it_cannot_hold) {
  BOOST_CHECK_THROW(make_tar({{std::string(150, 'n'), "x", '0', ""}}, TarDialect::ustar),
                    std::invalid_argument);
  BOOST_CHECK_THROW(make_tar({{"l", "", '2', std::string(150, 't')}}, TarDialect::ustar),
                    std::invalid_argument);
  BOOST_CHECK_THROW(make_tar({{"d", "data", '5', ""}}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(gzip_round_trips_through_gzip_tool) {
  TempDir dir;
  std::string data;
  for (int i = 0; i < 200000; ++i)
    data += std::to_string(i * 7919 % 100003) + (i % 13 ? ',' : '\n');
  for (const std::string& input : {data, std::string()}) {
    const std::string compressed = skype_etl::test::gzip(input);
    BOOST_REQUIRE_GE(compressed.size(), 18u);
    BOOST_TEST(static_cast<unsigned char>(compressed[0]) == 0x1fu);
    BOOST_TEST(static_cast<unsigned char>(compressed[1]) == 0x8bu);
    if (!input.empty()) BOOST_TEST(compressed.size() < input.size() / 2);
    skype_etl::test::write_file(dir / "data.gz", compressed);
    CommandResult out = run("gzip -dc " + quoted(dir / "data.gz"));
    BOOST_REQUIRE_EQUAL(out.status, 0);
    BOOST_TEST(out.output == input);
  }
}

BOOST_AUTO_TEST_CASE(tar_gz_lists_with_gnu_tar) {
  TempDir dir;
  skype_etl::test::write_file(dir / "a.tar.gz",
                              skype_etl::test::gzip(make_tar({{"messages.json", "{}", '0', ""}})));
  CommandResult list = run("tar -tzf " + quoted(dir / "a.tar.gz"));
  BOOST_REQUIRE_EQUAL(list.status, 0);
  BOOST_TEST(list.output == "messages.json\n");
}

BOOST_AUTO_TEST_CASE(write_file_creates_parents_and_temp_dir_cleans_up) {
  fs::path kept;
  {
    TempDir dir;
    kept = dir.path();
    BOOST_TEST(fs::is_directory(kept));
    BOOST_TEST(fs::is_empty(kept));
    BOOST_TEST(kept.parent_path() == fs::temp_directory_path());
    const fs::path nested = dir / "a/b/c.txt";
    skype_etl::test::write_file(nested, std::string("x\0y", 3));
    BOOST_TEST(read_all(nested) == std::string("x\0y", 3));
    TempDir other;
    BOOST_TEST(other.path() != kept);
  }
  BOOST_TEST(!fs::exists(kept));
  BOOST_CHECK_THROW(skype_etl::test::write_file("/proc/definitely/not/writable", "x"),
                    std::exception);
}

BOOST_AUTO_TEST_SUITE_END()
