#include "extract/json_scanner.hpp"

#include <cstring>

namespace skype_etl::detail {

std::size_t skip_string(std::string_view text, std::size_t pos) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  const char* p = begin + pos + 1;
  while (true) {
    const auto* quote =
        static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (!quote) throw ScanError(pos, "truncated JSON: string never closes");
    // The quote is escaped when an odd number of backslashes precede it.
    const char* q = quote;
    while (q > begin + pos + 1 && q[-1] == '\\') --q;
    if (((quote - q) & 1) == 0) return static_cast<std::size_t>(quote - begin) + 1;
    p = quote + 1;
  }
}

std::size_t skip_value(std::string_view text, std::size_t pos, int depth) {
  if (pos >= text.size()) throw ScanError(pos, "truncated JSON: expected a value");
  const char first = text[pos];
  if (first == '"') return skip_string(text, pos);
  if (first != '{' && first != '[') {
    // A scalar: runs up to the next delimiter; simdjson checks its spelling later.
    std::size_t end = pos;
    while (end < text.size()) {
      const char c = text[end];
      if (c == ',' || c == '}' || c == ']' || c == ':' || is_json_space(c)) break;
      if (c == '{' || c == '[' || c == '"')
        throw ScanError(end, "invalid JSON: unexpected " + describe_byte(text, end));
      ++end;
    }
    if (end == pos)
      throw ScanError(pos, "invalid JSON: expected a value, found " + describe_byte(text, pos));
    return end;
  }
  char stack[max_nesting_depth + 1];
  int top = 0;
  std::size_t i = pos;
  const std::size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    switch (c) {
      case '"':
        i = skip_string(text, i);
        continue;
      case '{':
      case '[':
        if (depth + top >= max_nesting_depth)
          throw ScanError(
              i, "JSON nests deeper than " + std::to_string(max_nesting_depth) + " levels");
        stack[top++] = c;
        break;
      case '}':
      case ']':
        if (top == 0 || stack[top - 1] != (c == '}' ? '{' : '['))
          throw ScanError(i, std::string("invalid JSON: unbalanced '") + c + "'");
        if (--top == 0) return i + 1;
        break;
      default:
        break;
    }
    ++i;
  }
  throw ScanError(
      pos, std::string("truncated JSON: ") + (first == '{' ? "object" : "array") + " never closes");
}

std::string describe_byte(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return "end of data";
  const auto b = static_cast<unsigned char>(text[pos]);
  if (b >= 0x20 && b < 0x7f) return std::string("'") + static_cast<char>(b) + "'";
  static const char* hex = "0123456789abcdef";
  return std::string("byte 0x") + hex[b >> 4U] + hex[b & 15U];
}

}  // namespace skype_etl::detail
