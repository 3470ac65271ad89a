#include "core/file_name.hpp"

#include <cstddef>

#include "core/utf8.hpp"

namespace skype_etl::detail {

std::string escape_file_name(std::string_view name) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(name.size());
  for (std::size_t i = 0; i < name.size();) {
    if (name[i] == '\\') {
      out += "\\\\";
      ++i;
      continue;
    }
    // NUL is escaped too.
    const std::size_t n = name[i] == '\0' ? 0 : utf8_length(name, i);
    if (n == 0) {
      const auto b = static_cast<unsigned char>(name[i]);
      out += "\\x";
      out += hex[b >> 4U];
      out += hex[b & 15U];
      ++i;
    } else {
      out.append(name, i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace skype_etl::detail
