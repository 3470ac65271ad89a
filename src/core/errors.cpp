#include "skype_etl/errors.hpp"

#include "core/fold_lines.hpp"
#include "core/utf8.hpp"

#include <algorithm>
#include <stdexcept>

namespace skype_etl {
namespace {

/// Code points a terminal acts on or that reorder or break the line.
bool is_invisible_control(char32_t cp) noexcept {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

void append_escaped(std::string& out, std::string_view text, std::size_t max_bytes, bool quote) {
  static const char* hex = "0123456789abcdef";
  std::size_t i = 0;
  while (i < text.size() && i < max_bytes) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += "\\x";
          out += hex[c >> 4U];
          out += hex[c & 15U];
      }
      ++i;
    } else if (c < 0x80) {
      if (quote && (c == '"' || c == '\\')) out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else {
      char32_t cp = 0;
      const std::size_t length = detail::decode_utf8(text, i, cp);
      if (length == 0) {
        out += "\\x";
        out += hex[c >> 4U];
        out += hex[c & 15U];
        ++i;
      } else if (is_invisible_control(cp)) {
        out += "\\u";
        for (int shift = 12; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 15U];
        i += length;
      } else {
        out.append(text.data() + i, length);
        i += length;
      }
    }
  }
}

}  // namespace

std::string printable(std::string_view text, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 16);
  append_escaped(out, text, max_bytes, false);
  if (text.size() > max_bytes) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

std::string quoted(std::string_view text, std::size_t max_bytes) {
  std::string out = "\"";
  append_escaped(out, text, max_bytes, true);
  if (text.size() > max_bytes)
    out += "...\" (" + std::to_string(text.size()) + " bytes)";
  else
    out += '"';
  return out;
}

namespace {

std::string input_message(const std::string& file, const std::string& problem,
                          std::optional<std::uint64_t> offset, const std::string& where,
                          const std::string& offset_of) {
  std::string message = "cannot read export '" + file + "': " + problem;
  if (offset) {
    message += " at byte " + std::to_string(*offset);
    if (!offset_of.empty()) message += " of " + offset_of;
  }
  if (!where.empty()) message += " (" + where + ")";
  return message;
}

}  // namespace

InputError::InputError(std::string file, std::string problem, std::optional<std::uint64_t> offset,
                       std::string where, std::string offset_of)
    : InputError(Parts{printable(file), printable(problem), offset, printable(where, 1024),
                       printable(offset_of)}) {}

InputError::InputError(Parts parts)
    : Error(input_message(parts.file, parts.problem, parts.offset, parts.where, parts.offset_of)),
      m_file(std::move(parts.file)),
      m_problem(std::move(parts.problem)),
      m_offset(parts.offset),
      m_where(std::move(parts.where)),
      m_offset_of(std::move(parts.offset_of)) {}

DatabaseError::DatabaseError(const std::string& message, std::string sqlstate)
    : Error(printable(detail::fold_lines(message))), m_sqlstate(std::move(sqlstate)) {}

OutputError::OutputError(const std::string& what, const std::string& path,
                         const std::string& problem)
    : Error("cannot write " + what + " '" + printable(path) + "': " + printable(problem)),
      m_path(path) {}

MemoryLimitExceeded::MemoryLimitExceeded(std::size_t usage_mb, std::size_t limit_mb)
    : Error("Memory usage (" + std::to_string(usage_mb) + " MB) exceeds limit (" +
            std::to_string(limit_mb) + " MB)"),
      m_usage_mb(usage_mb),
      m_limit_mb(limit_mb) {}

MemoryLimitExceeded::MemoryLimitExceeded(std::size_t in_use_mb, std::size_t needed_mb,
                                         std::size_t limit_mb, const std::string& what)
    : Error("Memory usage would exceed limit (" + std::to_string(limit_mb) + " MB): " + what +
            " needs about " + std::to_string(needed_mb) + " MB more, " + std::to_string(in_use_mb) +
            " MB in use"),
      m_usage_mb(in_use_mb + needed_mb),
      m_limit_mb(limit_mb) {}

ExitCode exit_code_for(const std::exception& error) noexcept {
  if (dynamic_cast<const InputError*>(&error)) return ExitCode::input;
  if (dynamic_cast<const DatabaseError*>(&error)) return ExitCode::database;
  if (dynamic_cast<const MemoryLimitExceeded*>(&error)) return ExitCode::memory_limit;
  if (dynamic_cast<const OutputError*>(&error)) return ExitCode::output;
  if (dynamic_cast<const UsageError*>(&error)) return ExitCode::usage;
  // std::bad_alloc: the system refused memory. Exit 5 is --memory-limit-mb's, which a
  // script may answer by raising the limit; this is not that, so it is an internal error.
  return ExitCode::internal;
}

std::string detail::fold_lines(const std::string& message) {
  std::string line;
  line.reserve(message.size());
  for (char c : message) {
    if (c == '\n' || c == '\r' || c == '\t') {
      if (!line.empty() && line.back() != ' ') line += ' ';
    } else {
      line += c;
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

}  // namespace skype_etl
