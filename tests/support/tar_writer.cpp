// Tar archives for fixtures. Headers follow POSIX ustar (IEEE 1003.1-1988) with the two
// common extensions for long names: GNU's '././@LongLink' entries ('L' name, 'K' link
// target) and POSIX.1-2001 pax extended headers ('x' with path=/linkpath= records).
#include "support/tar_writer.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace skype_etl::test {
namespace {

constexpr std::size_t block_size = 512;
// Fixed so that archives are byte-identical from run to run (2023-11-14T22:13:20Z).
constexpr unsigned long long fixture_mtime = 1700000000ULL;

struct HeaderFields {
  std::string_view name;
  std::string_view prefix;
  std::string_view link_name;
  std::uint64_t size = 0;
  char type = '0';
  unsigned mode = 0644;
  bool gnu_magic = false;
};

void put_field(char* field, std::size_t width, std::string_view value) {
  if (value.size() > width) throw std::invalid_argument("tar header field overflow");
  if (value.empty()) return;  // data() may be null: memcpy from null is undefined
  std::memcpy(field, value.data(), value.size());
}

// Octal number in `width` bytes: width-1 zero-padded digits and a terminating NUL.
void put_octal(char* field, std::size_t width, unsigned long long value) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%0*llo", static_cast<int>(width - 1), value);
  if (std::strlen(digits) != width - 1) {
    throw std::invalid_argument("tar header number does not fit its field: " +
                                std::to_string(value));
  }
  std::memcpy(field, digits, width);  // includes the NUL
}

std::string make_header(const HeaderFields& f) {
  std::string header(block_size, '\0');
  char* h = header.data();
  put_field(h + 0, 100, f.name);
  put_octal(h + 100, 8, f.mode);
  put_octal(h + 108, 8, 0);  // uid
  put_octal(h + 116, 8, 0);  // gid
  put_octal(h + 124, 12, f.size);
  put_octal(h + 136, 12, fixture_mtime);
  h[156] = f.type;
  put_field(h + 157, 100, f.link_name);
  if (f.gnu_magic) {
    std::memcpy(h + 257, "ustar  ", 8);  // "ustar" + two spaces + NUL: the old GNU format
  } else {
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
  }
  put_field(h + 265, 32, "root");
  put_field(h + 297, 32, "root");
  put_octal(h + 329, 8, 0);  // devmajor
  put_octal(h + 337, 8, 0);  // devminor
  put_field(h + 345, 155, f.prefix);
  // The checksum is computed with its own field as eight spaces.
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  char digits[8];
  std::snprintf(digits, sizeof digits, "%06o", sum);
  std::memcpy(h + 148, digits, 6);
  h[154] = '\0';
  h[155] = ' ';
  return header;
}

void append_data(std::string& out, std::string_view data) {
  out.append(data);
  out.append((block_size - data.size() % block_size) % block_size, '\0');
}

// A member of an archive whose header carries `data` (GNU long names, pax records).
void append_meta_entry(std::string& out, std::string_view name, char type, std::string_view data,
                       bool gnu_magic) {
  HeaderFields f;
  f.name = name;
  f.type = type;
  f.size = data.size();
  f.gnu_magic = gnu_magic;
  out += make_header(f);
  append_data(out, data);
}

// One pax record "<len> key=value\n" where <len> counts the whole record, itself included.
std::string pax_record(std::string_view key, std::string_view value) {
  const std::size_t body = 1 + key.size() + 1 + value.size() + 1;  // " key=value\n"
  std::size_t len = body + 1;
  while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
  std::string record = std::to_string(len);
  record += ' ';
  record += key;
  record += '=';
  record += value;
  record += '\n';
  return record;
}

// Splits a name of up to 255 bytes into ustar prefix and name at a '/'.
bool split_ustar_name(std::string_view full, std::string_view& prefix, std::string_view& name) {
  if (full.size() <= 100) {
    prefix = {};
    name = full;
    return true;
  }
  if (full.size() > 256) return false;
  // The separating '/' is in neither part: prefix <= 155 bytes, name <= 100 bytes.
  for (std::size_t slash = full.find('/'); slash != std::string_view::npos;
       slash = full.find('/', slash + 1)) {
    if (slash <= 155 && full.size() - slash - 1 <= 100 && slash + 1 < full.size()) {
      prefix = full.substr(0, slash);
      name = full.substr(slash + 1);
      return true;
    }
  }
  return false;
}

unsigned default_mode(char type) {
  switch (type) {
    case '5':
      return 0755;
    case '2':
      return 0777;
    default:
      return 0644;
  }
}

}  // namespace

std::string make_tar(const std::vector<TarEntry>& entries, TarDialect dialect) {
  std::string out;
  for (const TarEntry& entry : entries) {
    std::string full_name = entry.name;
    if (entry.type == '5' && !full_name.empty() && full_name.back() != '/') full_name += '/';
    const bool has_data = entry.type == '0' || entry.type == '\0' || entry.type == '7';
    if (!has_data && !entry.data.empty()) {
      throw std::invalid_argument("tar entry '" + entry.name + "' of type '" +
                                  std::string(1, entry.type) + "' cannot carry data");
    }

    HeaderFields f;
    f.type = entry.type;
    f.mode = default_mode(entry.type);
    f.size = has_data ? entry.data.size() : 0;
    f.gnu_magic = dialect == TarDialect::gnu;
    std::string_view name = full_name;
    std::string_view link = entry.link_target;

    switch (dialect) {
      case TarDialect::ustar: {
        std::string_view prefix;
        std::string_view short_name;
        if (!split_ustar_name(name, prefix, short_name)) {
          throw std::invalid_argument("name '" + full_name +
                                      "' does not fit a ustar header (needs a '/' leaving at "
                                      "most 155 bytes before it and 100 after it)");
        }
        if (link.size() > 100) {
          throw std::invalid_argument("link target of '" + full_name +
                                      "' is longer than 100 bytes: use the gnu or pax dialect");
        }
        f.prefix = prefix;
        name = short_name;
        break;
      }
      case TarDialect::gnu:
        // The data of a LongLink entry is the NUL-terminated name; the header that
        // follows carries the first 100 bytes, as GNU tar writes it.
        if (link.size() > 100) {
          append_meta_entry(out, "././@LongLink", 'K', std::string(link) + '\0', true);
          link = link.substr(0, 100);
        }
        if (name.size() > 100) {
          append_meta_entry(out, "././@LongLink", 'L', std::string(name) + '\0', true);
          name = name.substr(0, 100);
        }
        break;
      case TarDialect::pax: {
        std::string records;
        if (name.size() > 100) records += pax_record("path", name);
        if (link.size() > 100) records += pax_record("linkpath", link);
        if (!records.empty()) {
          std::string_view base = name;
          if (base.size() > 1 && base.back() == '/') base.remove_suffix(1);
          base = base.substr(base.rfind('/') == std::string_view::npos ? 0 : base.rfind('/') + 1);
          std::string pax_name = "PaxHeaders/" + std::string(base.substr(0, 80));
          append_meta_entry(out, pax_name, 'x', records, false);
          name = name.substr(0, 100);
          link = link.substr(0, 100);
        }
        break;
      }
    }
    f.name = name;
    f.link_name = link;
    out += make_header(f);
    if (has_data) append_data(out, entry.data);
  }
  out.append(2 * block_size, '\0');
  return out;
}

void write_file(const std::filesystem::path& path, std::string_view data) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    throw std::runtime_error("cannot create '" + path.string() + "': " + std::strerror(errno));
  }
  const std::size_t written = data.empty() ? 0 : std::fwrite(data.data(), 1, data.size(), file);
  const int write_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (written != data.size() || !closed) {
    throw std::runtime_error("cannot write '" + path.string() +
                             "': " + std::strerror(written != data.size() ? write_errno : errno));
  }
}

std::string gzip(std::string_view data) {
  z_stream stream{};
  // 16 + MAX_WBITS selects the gzip wrapper (header and CRC-32 trailer) instead of zlib's.
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("gzip: deflateInit2 failed");
  }
  std::string out;
  const auto* next = reinterpret_cast<const Bytef*>(data.data());
  std::size_t remaining = data.size();
  char chunk[64 * 1024];
  int status = Z_OK;
  do {
    if (stream.avail_in == 0 && remaining > 0) {
      // avail_in is 32-bit: feed large inputs in pieces.
      const std::size_t piece = std::min<std::size_t>(remaining, 1u << 30);
      stream.next_in = const_cast<Bytef*>(next);
      stream.avail_in = static_cast<uInt>(piece);
      next += piece;
      remaining -= piece;
    }
    stream.next_out = reinterpret_cast<Bytef*>(chunk);
    stream.avail_out = sizeof chunk;
    status = deflate(&stream, remaining == 0 ? Z_FINISH : Z_NO_FLUSH);
    if (status == Z_STREAM_ERROR) {
      deflateEnd(&stream);
      throw std::runtime_error("gzip: deflate failed");
    }
    out.append(chunk, sizeof chunk - stream.avail_out);
  } while (status != Z_STREAM_END);
  deflateEnd(&stream);
  return out;
}

std::string gzip_bomb(std::string_view prefix, std::size_t filler_mib, char filler,
                      std::string_view suffix) {
  const std::string mib = gzip(std::string(std::size_t{1} << 20U, filler));
  std::string out = gzip(prefix);
  out.reserve(out.size() + mib.size() * filler_mib + 64);
  for (std::size_t i = 0; i < filler_mib; ++i) out += mib;
  return out + gzip(suffix);
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "skype-etl-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("cannot create a temporary directory from '" + pattern +
                             "': " + std::strerror(errno));
  }
  m_path = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;  // a destructor must not throw; a leftover temp dir is harmless
  std::filesystem::remove_all(m_path, ignored);
}

}  // namespace skype_etl::test
