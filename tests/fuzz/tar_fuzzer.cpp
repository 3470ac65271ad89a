// libFuzzer target: the tar lister (src/extract/tar.hpp) on arbitrary bytes.
//
// Besides not crashing (ASan, UBSan), it checks what InputSource and the media writer rely
// on: list_tar either throws InputError naming the file and a byte of the archive, or lists
// members whose headers are 512-byte blocks in increasing order and whose data lies inside
// the archive, before the next header; and is_unsafe_member_name refuses every absolute
// name and every name with a ".." part.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "extract/tar.hpp"
#include "fuzz_support.hpp"
#include "skype_etl/errors.hpp"

namespace {

namespace sd = skype_etl::detail;
using skype_etl::fuzz::excerpt;

constexpr std::uint64_t block = 512;

/// Written from the rule, not from tar.cpp: a name is safe when it is not empty, not
/// absolute and has no ".." between slashes.
bool safe_by_rule(std::string_view name) {
  if (name.empty() || name.front() == '/') return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = name.find('/', start);
    const std::string_view part = name.substr(start, slash - start);
    if (part == "..") return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view archive(reinterpret_cast<const char*>(data), size);
  const std::string file = "fuzz.tar";
  // What offsets count is passed through unchanged: alternate it so both spellings run.
  const std::string offsets_of = size % 2 ? "the decompressed tar" : "";
  (void)sd::looks_like_tar(archive);  // any answer will do: it must only read the bytes given
  std::vector<sd::TarMember> members;
  try {
    members = sd::list_tar(archive, file, offsets_of);
  } catch (const skype_etl::InputError& e) {
    FUZZ_CHECK(e.file() == file, e.what());
    FUZZ_CHECK(e.offset_of() == offsets_of, e.what());
    FUZZ_CHECK(!e.offset() || *e.offset() < size, std::string(e.what()) +
                                                      ": the offset is past the archive's " +
                                                      std::to_string(size) + " bytes");
    return 0;
  } catch (const std::exception& e) {
    skype_etl::fuzz::broken(std::string("list_tar threw something else than InputError: ") +
                            e.what());
  }
  FUZZ_CHECK(members.empty() || size >= block, "members listed from less than one block");
  std::uint64_t next_header = 0;  // no member's header may start before this
  for (std::size_t i = 0; i < members.size(); ++i) {
    const sd::TarMember& m = members[i];
    const std::string which = "member " + std::to_string(i) + " " + excerpt(m.name);
    FUZZ_CHECK(m.header_offset % block == 0, which);
    FUZZ_CHECK(m.header_offset >= next_header, which + ": headers out of order or overlapping");
    FUZZ_CHECK(m.offset == m.header_offset + block, which + ": data does not follow its header");
    FUZZ_CHECK(m.offset <= size && m.size <= size - m.offset,
               which + ": data runs past the end of the archive");
    next_header = m.offset + (m.size + block - 1) / block * block;
    const bool unsafe = sd::is_unsafe_member_name(m.name);
    FUZZ_CHECK(unsafe || safe_by_rule(m.name), which + " is called safe");
  }
  // The rule on the input itself too, as a name (links' targets and PAX paths are free text).
  const std::string_view as_name = archive.substr(0, 256);
  FUZZ_CHECK(sd::is_unsafe_member_name(as_name) || safe_by_rule(as_name),
             excerpt(as_name) + " is called safe");
  return 0;
}
