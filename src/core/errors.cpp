#include "skype_etl/errors.hpp"

#include <new>
#include <stdexcept>

namespace skype_etl {
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
    : Error(input_message(file, problem, offset, where, offset_of)),
      m_file(std::move(file)),
      m_problem(std::move(problem)),
      m_offset(offset),
      m_where(std::move(where)),
      m_offset_of(std::move(offset_of)) {}

DatabaseError::DatabaseError(const std::string& message, std::string sqlstate)
    : Error(message), m_sqlstate(std::move(sqlstate)) {}

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
  if (dynamic_cast<const std::bad_alloc*>(&error)) return ExitCode::memory_limit;
  return ExitCode::internal;
}

}  // namespace skype_etl
