// Exception types thrown by skype-etl and the exit codes the CLI maps them to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "skype_etl/export.hpp"
namespace skype_etl {

/// Exit codes of the `skype-etl` command, the same for every subcommand (README.md, "Exit
/// codes").
enum class ExitCode : int {
  ok = 0,
  internal = 1,      ///< a bug or an unexpected failure, std::bad_alloc included
  usage = 2,         ///< bad command line or environment (UsageError)
  input = 3,         ///< unreadable or invalid export (InputError)
  database = 4,      ///< PostgreSQL refused or failed (DatabaseError)
  memory_limit = 5,  ///< --memory-limit-mb exceeded (MemoryLimitExceeded)
  output = 6,        ///< a file skype-etl writes cannot be written (OutputError)
};

/// `text` (untrusted: from an export, the database or the command line) made fit for a
/// one-line message on a terminal: control characters (C0, DEL, C1), line and paragraph
/// separators and bidirectional overrides are written as escapes (`\n`, `\x1b`, `\u202e`),
/// and so are the bytes of invalid UTF-8 (`\xff`); past `max_bytes` bytes of `text` it is
/// cut and `... (N bytes)` says how long it was.
SKYPE_ETL_API std::string printable(std::string_view text, std::size_t max_bytes = 4096);

/// `text` as a quoted value in a message: `"text"`, escaped like printable() plus `\"` and
/// `\\`, and past `max_bytes` bytes cut as `"start..." (N bytes)`.
SKYPE_ETL_API std::string quoted(std::string_view text, std::size_t max_bytes = 64);

/// Base of every error skype-etl throws on purpose.
class SKYPE_ETL_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The export cannot be read: missing file, bad archive, bad JSON, wrong shape.
/// what() is one line:
/// `cannot read export '<file>': <problem> at byte <offset> of <offset_of> (<where>)`, each
/// part after the problem left out when empty. The parts may quote the export's own text:
/// each is stored as printable() makes it (file and problem cut after 4096 bytes, where
/// after 1024), so that no message carries control characters or grows with the input.
class SKYPE_ETL_API InputError : public Error {
 public:
  InputError(std::string file, std::string problem, std::optional<std::uint64_t> offset = {},
             std::string where = {}, std::string offset_of = {});

  const std::string& file() const noexcept { return m_file; }
  const std::string& problem() const noexcept { return m_problem; }
  /// The byte where the problem lies: the first byte of what is wrong (a bad character, an
  /// unexpected token, a value of the wrong type, a container or string that never closes),
  /// never past the end of the data.
  std::optional<std::uint64_t> offset() const noexcept { return m_offset; }
  /// What offset() counts bytes of when that is not `file` itself: "the tar" (the archive
  /// holding messages.json), "the decompressed tar" or "the decompressed JSON" (a gzip
  /// file's content). Empty for the file named.
  const std::string& offset_of() const noexcept { return m_offset_of; }
  /// e.g. "conversation 3 (19:abc@thread.skype), message 120, which starts at byte 5082"
  /// (a byte offset counted like offset()); empty at top level.
  const std::string& where() const noexcept { return m_where; }

 private:
  struct Parts {
    std::string file, problem;
    std::optional<std::uint64_t> offset;
    std::string where, offset_of;
  };
  explicit InputError(Parts parts);

  std::string m_file;
  std::string m_problem;
  std::optional<std::uint64_t> m_offset;
  std::string m_where;
  std::string m_offset_of;
};

/// PostgreSQL failed. what() never contains a password, and is printable() (cut after 4096
/// bytes): the server's messages quote the values it refused.
class SKYPE_ETL_API DatabaseError : public Error {
 public:
  explicit DatabaseError(const std::string& message, std::string sqlstate = {});
  const std::string& sqlstate() const noexcept { return m_sqlstate; }

 private:
  std::string m_sqlstate;
};

/// A file or directory skype-etl writes on the local machine cannot be written: a report,
/// the media files under the output directory. A local problem (permissions, no such
/// directory, a full disk), neither the export's nor the database's. what() is one line:
/// `cannot write <what> '<path>': <problem>`, path and problem printable().
class SKYPE_ETL_API OutputError : public Error {
 public:
  /// `what`: e.g. "report", "media file", "media directory".
  OutputError(const std::string& what, const std::string& path, const std::string& problem);
  const std::string& path() const noexcept { return m_path; }

 private:
  std::string m_path;
};

/// What the caller asked for cannot be done as asked, and nothing was done yet: an option
/// value out of range, a date that is no date, a connection string libpq cannot parse.
/// The command maps it to exit code 2, like its own command-line errors.
class SKYPE_ETL_API UsageError : public Error {
 public:
  using Error::Error;
};

/// Private memory (RssAnon) went above --memory-limit-mb, or an allocation would take it
/// there.
class SKYPE_ETL_API MemoryLimitExceeded : public Error {
 public:
  /// "Memory usage (X MB) exceeds limit (Y MB)".
  MemoryLimitExceeded(std::size_t usage_mb, std::size_t limit_mb);
  /// Before an allocation: "Memory usage would exceed limit (Y MB): <what> needs about N MB
  /// more, X MB in use"; usage_mb() is X + N.
  MemoryLimitExceeded(std::size_t in_use_mb, std::size_t needed_mb, std::size_t limit_mb,
                      const std::string& what);
  std::size_t usage_mb() const noexcept { return m_usage_mb; }
  std::size_t limit_mb() const noexcept { return m_limit_mb; }

 private:
  std::size_t m_usage_mb;
  std::size_t m_limit_mb;
};

/// Maps an exception to the CLI's exit code: InputError 3, DatabaseError 4,
/// MemoryLimitExceeded 5, OutputError 6, UsageError 2, anything else (std::bad_alloc
/// included: the system refused memory, which no --memory-limit-mb decided) 1.
SKYPE_ETL_API ExitCode exit_code_for(const std::exception& error) noexcept;

}  // namespace skype_etl
