#include "extract/tar.hpp"

#include <cstring>

#include "skype_etl/errors.hpp"

namespace skype_etl::detail {
namespace {

constexpr std::size_t block = 512;

bool all_zero(std::string_view bytes) noexcept {
  for (char c : bytes)
    if (c != 0) return false;
  return true;
}

/// A NUL-terminated (or full-width) header field.
std::string_view field(std::string_view header, std::size_t offset, std::size_t width) {
  std::string_view f = header.substr(offset, width);
  const auto nul = f.find('\0');
  return nul == std::string_view::npos ? f : f.substr(0, nul);
}

/// Octal number field, or GNU base-256 when the high bit of the first byte is set.
bool parse_number(std::string_view f, std::uint64_t& out) noexcept {
  out = 0;
  if (!f.empty() && (static_cast<unsigned char>(f[0]) & 0x80U)) {
    for (std::size_t i = 1; i < f.size(); ++i) out = (out << 8U) | static_cast<unsigned char>(f[i]);
    return true;
  }
  std::size_t i = 0;
  while (i < f.size() && (f[i] == ' ' || f[i] == '\0')) ++i;
  bool any = false;
  for (; i < f.size() && f[i] >= '0' && f[i] <= '7'; ++i) {
    out = out * 8 + static_cast<std::uint64_t>(f[i] - '0');
    any = true;
  }
  for (; i < f.size(); ++i)
    if (f[i] != ' ' && f[i] != '\0') return false;
  return any || f.find_first_not_of(std::string_view("\0 ", 2)) == std::string_view::npos;
}

bool checksum_ok(std::string_view header) noexcept {
  std::uint64_t stored = 0;
  if (!parse_number(header.substr(148, 8), stored)) return false;
  std::uint64_t unsigned_sum = 0;
  std::int64_t signed_sum = 0;
  for (std::size_t i = 0; i < block; ++i) {
    const bool in_field = i >= 148 && i < 156;
    const unsigned char u = in_field ? ' ' : static_cast<unsigned char>(header[i]);
    unsigned_sum += u;
    signed_sum += in_field ? ' ' : static_cast<signed char>(header[i]);
  }
  return stored == unsigned_sum || static_cast<std::int64_t>(stored) == signed_sum;
}

/// Applies the records of a PAX extended header ("<len> key=value\n"...).
void apply_pax(std::string_view data, std::string& path, std::uint64_t& size, bool& has_size) {
  while (!data.empty()) {
    std::size_t len = 0;
    std::size_t i = 0;
    while (i < data.size() && data[i] >= '0' && data[i] <= '9') len = len * 10 + (data[i++] - '0');
    if (len == 0 || len > data.size() || i >= data.size() || data[i] != ' ') return;
    std::string_view record = data.substr(i + 1, len - i - 1);
    if (!record.empty() && record.back() == '\n') record.remove_suffix(1);
    const auto eq = record.find('=');
    if (eq != std::string_view::npos) {
      const std::string_view key = record.substr(0, eq);
      const std::string_view value = record.substr(eq + 1);
      if (key == "path") path = std::string(value);
      if (key == "size" && !value.empty() &&
          value.find_first_not_of("0123456789") == std::string_view::npos) {
        size = 0;  // PAX sizes are decimal
        for (char c : value) size = size * 10 + static_cast<std::uint64_t>(c - '0');
        has_size = true;
      }
    }
    data.remove_prefix(len);
  }
}

}  // namespace

bool looks_like_tar(std::string_view archive) noexcept {
  if (archive.size() < block) return false;
  const std::string_view header = archive.substr(0, block);
  if (header.substr(257, 5) == "ustar") return true;
  return !all_zero(header) && checksum_ok(header);
}

bool is_unsafe_member_name(std::string_view name) noexcept {
  if (name.empty() || name.front() == '/') return true;
  std::size_t start = 0;
  while (start <= name.size()) {
    const auto slash = name.find('/', start);
    const auto part =
        name.substr(start, slash == std::string_view::npos ? name.npos : slash - start);
    if (part == "..") return true;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return false;
}

std::vector<TarMember> list_tar(std::string_view archive, const std::string& file,
                                const std::string& offsets_of) {
  std::vector<TarMember> members;
  std::string long_name;
  std::string pax_path;
  std::uint64_t pax_size = 0;
  bool pax_has_size = false;
  std::uint64_t pos = 0;
  while (true) {
    if (pos == archive.size()) break;  // no end-of-archive blocks: tolerated
    if (archive.size() - pos < block)
      throw InputError(file, "truncated tar: incomplete header block", pos, {}, offsets_of);
    const std::string_view header = archive.substr(pos, block);
    if (all_zero(header)) break;  // end of archive
    if (!checksum_ok(header))
      throw InputError(file, "corrupt tar: bad header checksum (not a tar archive, or damaged)",
                       pos, {}, offsets_of);
    std::uint64_t size = 0;
    if (!parse_number(header.substr(124, 12), size))
      throw InputError(file, "corrupt tar: bad size field", pos + 124, {}, offsets_of);
    const char type = header[156] == '\0' ? '0' : header[156];
    if (pax_has_size) size = pax_size;
    const std::uint64_t data = pos + block;
    if (size > archive.size() - data)
      throw InputError(file,
                       "truncated tar: entry '" + std::string(field(header, 0, 100)) + "' needs " +
                           std::to_string(size) + " bytes, only " +
                           std::to_string(archive.size() - data) + " present",
                       pos, {}, offsets_of);
    const std::uint64_t next = data + (size + block - 1) / block * block;
    const std::string_view payload = archive.substr(data, size);
    switch (type) {
      case 'L':  // GNU long name of the next member
        long_name = std::string(field(payload, 0, payload.size()));
        break;
      case 'K':  // GNU long link name: not needed
        break;
      case 'x':  // PAX header of the next member
        // Its path and size apply to the next member.
        apply_pax(payload, pax_path, pax_size, pax_has_size);
        break;
      case 'g':  // PAX global header
        break;
      default: {
        TarMember member;
        if (!pax_path.empty()) {
          member.name = pax_path;
        } else if (!long_name.empty()) {
          member.name = long_name;
        } else {
          const std::string_view prefix = header.substr(257, 6) == std::string_view("ustar\0", 6) ||
                                                  header.substr(257, 5) == "ustar"
                                              ? field(header, 345, 155)
                                              : std::string_view();
          member.name = prefix.empty()
                            ? std::string(field(header, 0, 100))
                            : std::string(prefix) + "/" + std::string(field(header, 0, 100));
        }
        member.type = type;
        member.offset = data;
        member.size = size;
        member.header_offset = pos;
        members.push_back(std::move(member));
        long_name.clear();
        pax_path.clear();
        pax_has_size = false;
        break;
      }
    }
    pos = next > archive.size() ? archive.size() : next;
  }
  return members;
}

}  // namespace skype_etl::detail
