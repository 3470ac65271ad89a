#include "cli/common.hpp"

#include "core/fold_lines.hpp"
#include "load/server_settings.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <system_error>
#include <utility>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace skype_etl::cli {
namespace {

std::string errno_text(int error) {
  return std::generic_category().message(error);
}

/// libpq's and the server's messages run over several lines: one line, with what is left
/// of control characters escaped.
std::string one_line(const std::string& message) {
  return printable(detail::fold_lines(message), 8192);
}

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

}  // namespace

int code(ExitCode c) {
  return static_cast<int>(c);
}

void print_error(const std::string& message) {
  spdlog::error("{}", one_line(message));
}

void print_warning(const std::string& message) {
  spdlog::warn("{}", one_line(message));
}

std::string error_message(const std::exception& error) {
  if (dynamic_cast<const std::bad_alloc*>(&error))
    return "out of memory: the system refused an allocation (std::bad_alloc)";
  if (dynamic_cast<const Error*>(&error)) return error.what();
  return std::string("internal error: ") + error.what();
}

// --- logging ---------------------------------------------------------------------------

void add_log_options(CLI::App& command, LogOptions& log, bool with_short_flags) {
  command.add_flag(with_short_flags ? "-v,--verbose" : "--verbose", log.verbose,
                   "log more on stderr: once, info (phases, the database used); twice (-vv), "
                   "debug (connections, the local database's server programs); default: off");
  command
      .add_option("--log-level", log.log_level,
                  "what is logged on stderr: debug, info, warn (warnings and errors) or error; "
                  "the more verbose of this and -v wins; default: warn")
      ->type_name("LEVEL")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            for (const char* name : {"debug", "info", "warn", "error"})
              if (value == name) return {};
            return "must be debug, info, warn or error (got " + skype_etl::quoted(value) + ")";
          },
          "", "LEVEL"));
  command.add_flag(with_short_flags ? "-q,--quiet" : "--quiet", log.quiet,
                   "print only errors and the command's result (run: the final summary line and "
                   "its failed: lines; "
                   "no warnings, no progress), whatever -v or --log-level say; default: off");
}

void start_logging() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("skype-etl", std::move(sink));
  // "skype-etl: warning: ..." and "skype-etl: error: ...": spdlog's names of the levels.
  logger->set_pattern("skype-etl: %l: %v");
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

void apply_log_options(const LogOptions& log) {
  spdlog::level::level_enum level = spdlog::level::warn;
  if (log.quiet)
    level = spdlog::level::err;
  else if (log.verbose >= 2 || log.log_level == "debug")
    level = spdlog::level::debug;
  else if (log.verbose == 1 || log.log_level == "info")
    level = spdlog::level::info;
  else if (log.log_level == "error")
    level = spdlog::level::err;
  const auto current = spdlog::default_logger();
  current->set_level(level);
  // At debug, each line says when: what took long is what one looks for there.
  if (level == spdlog::level::debug) current->set_pattern("%H:%M:%S.%e skype-etl: %l: %v");
}

// --- option values ---------------------------------------------------------------------

CLI::Validator whole_number(std::uint64_t min, std::uint64_t max) {
  const std::string allowed =
      "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        std::uint64_t number = 0;
        const bool digits = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c)) != 0;
        });
        if (digits) {
          const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
          if (ec == std::errc() && end == value.data() + value.size() && number >= min &&
              number <= max)
            return {};
        }
        return allowed + " (got " + skype_etl::quoted(value) + ")";
      },
      "", "N");
}

std::optional<std::uint64_t> parse_size(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0)
    ++digits;
  if (digits == 0 || digits > 12) return std::nullopt;
  std::uint64_t number = 0;
  std::from_chars(text.data(), text.data() + digits, number);
  std::string unit = text.substr(digits);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::pair<const char*, unsigned> units[] = {
      {"kb", 10U}, {"mb", 20U}, {"gb", 30U}, {"tb", 40U}};
  for (const auto& [name, shift] : units)
    if (unit == name) return number << shift;  // at most 12 digits: no overflow
  return std::nullopt;
}

CLI::Validator size_value(std::uint64_t min, std::uint64_t max) {
  const std::string allowed = "must be a size from " + detail::postgres_size(min) + " to " +
                              detail::postgres_size(max) +
                              " (a whole number of kB, MB, GB or TB, such as 512MB or 2GB)";
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        const auto bytes = parse_size(value);
        if (bytes && *bytes >= min && *bytes <= max) return {};
        return allowed + " (got " + skype_etl::quoted(value) + ")";
      },
      "", "SIZE");
}

namespace {

/// Reads `count` digits at `at` of `text` into `value`; false if they are not all digits.
bool read_digits(const std::string& text, std::size_t at, std::size_t count, int& value) {
  if (at + count > text.size()) return false;
  value = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
    value = value * 10 + (text[i] - '0');
  }
  return true;
}

bool is_date_or_time(const std::string& text) {
  int year = 0, month = 0, day = 0;
  if (!read_digits(text, 0, 4, year) || text.size() < 10 || text[4] != '-' ||
      !read_digits(text, 5, 2, month) || text[7] != '-' || !read_digits(text, 8, 2, day))
    return false;
  static constexpr int k_month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > k_month_days[month - 1] ||
      (month == 2 && day == 29 && !leap))
    return false;
  if (text.size() == 10) return true;
  int hour = 0, minute = 0, second = 0;
  if ((text[10] != 'T' && text[10] != ' ') || !read_digits(text, 11, 2, hour) || text.size() < 16 ||
      text[13] != ':' || !read_digits(text, 14, 2, minute) || hour > 23 || minute > 59)
    return false;
  std::size_t at = 16;
  if (at < text.size() && text[at] == ':') {
    if (!read_digits(text, at + 1, 2, second) || second > 59) return false;
    at += 3;
    if (at < text.size() && text[at] == '.') {
      const std::size_t digits_from = ++at;
      while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) ++at;
      if (at == digits_from) return false;
    }
  }
  if (at == text.size()) return true;
  if (text[at] == 'Z' && at + 1 == text.size()) return true;
  if (text[at] != '+' && text[at] != '-') return false;
  int zone_hours = 0, zone_minutes = 0;
  if (!read_digits(text, at + 1, 2, zone_hours) || zone_hours > 14) return false;
  at += 3;
  if (at == text.size()) return true;
  if (text[at] == ':') ++at;
  return read_digits(text, at, 2, zone_minutes) && zone_minutes <= 59 && at + 2 == text.size();
}

}  // namespace

const char* const k_date_formats =
    "YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS[.fraction]] with an optional Z or +HH:MM (a space "
    "may replace the T; a time without a zone is UTC)";

std::string parse_date(const std::string& option, const std::string& text) {
  if (!is_date_or_time(text)) {
    throw UsageError(option + " " + skype_etl::quoted(text) +
                     " is not a date; accepted: " + k_date_formats);
  }
  // PostgreSQL would read a time without a zone in the server's TimeZone; the times search
  // prints are UTC, and so is what it is given.
  std::string value = text;
  if (value.size() == 10) return value + "T00:00:00Z";
  const std::size_t zone = value.find_first_of("Z+-", 16);
  if (zone == std::string::npos) value += 'Z';
  return value;
}

std::string usage_message(const CLI::ParseError& error, const std::string& command) {
  std::string text = error.what();
  // CLI11 writes a validator's complaint as "NAME: MESSAGE".
  if (const auto colon = text.find(": must "); colon != std::string::npos && text.find(' ') > colon)
    text.erase(colon, 1);
  return text + " (see skype-etl " + (command.empty() ? "" : command + " ") + "--help)";
}

// --- files the commands write ----------------------------------------------------------

bool is_html_report(const std::string& file) {
  std::string extension = std::filesystem::path(file).extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return extension == ".html" || extension == ".htm";
}

void check_writable(const std::string& what, const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw OutputError(what, file, errno_text(EISDIR));
    // A pipe or a device (/dev/stdout, a process substitution) is written as it is; opening
    // one now could end what its reader sees.
    if (!S_ISREG(st.st_mode)) return;
    const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);  // no O_TRUNC: nothing changes
    if (fd < 0) throw OutputError(what, file, errno_text(errno));
    ::close(fd);
    return;
  }
  // Created and removed at once: only the real thing tells (a read-only file system, an
  // ACL, a missing directory).
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw OutputError(what, file, errno_text(errno));
  ::close(fd);
  ::unlink(file.c_str());
}

void write_text_file(const std::string& what, const std::string& file, const std::string& text) {
  std::FILE* out = std::fopen(file.c_str(), "w");
  if (!out) throw OutputError(what, file, errno_text(errno));
  const bool written = std::fwrite(text.data(), 1, text.size(), out) == text.size();
  const int write_error = errno;
  if (std::fclose(out) != 0 || !written)
    throw OutputError(what, file, errno_text(written ? errno : write_error));
}

// --- choosing the database -------------------------------------------------------------

void add_db_options(CLI::App& command, DbOptions& db, bool with_db) {
  if (with_db) {
    command
        .add_option("--db", db.db,
                    "the database, as a libpq connection string (key=value or postgresql:// "
                    "URI); default: chosen as README's \"Choosing the database\" says "
                    "(DATABASE_URL, else the PG* environment when PGHOST, PGDATABASE or "
                    "PGSERVICE is set, else the local database)")
        ->type_name("CONNINFO");
  }
  command
      .add_option("--data-dir", db.data_dir,
                  "data directory of the local database (skype-etl's own PostgreSQL cluster; "
                  "only run and db start create one); default: $XDG_DATA_HOME/skype-etl/pg, "
                  "else ~/.local/share/skype-etl/pg, and as root /var/lib/skype-etl/pg when "
                  "the postgres user cannot enter that directory (here: " +
                      detail::LocalDatabase::default_data_dir().string() + ")")
      ->type_name("DIR");
}

detail::LocalDatabase local_database(const DbOptions& db) {
  return db.data_dir.empty() ? detail::LocalDatabase() : detail::LocalDatabase(db.data_dir);
}

namespace {

void check_parsable(const std::string& source, const std::string& conninfo) {
  if (auto problem = detail::conninfo_parse_error(conninfo)) {
    throw UsageError(source + " " + skype_etl::quoted(detail::redact_conninfo(conninfo), 256) +
                     " is not a connection string libpq can parse: " + *problem +
                     "; give key=value pairs (host=... dbname=...) or a postgresql:// URI");
  }
}

}  // namespace

DatabaseChoice choose_database(const DbOptions& db) {
  if (!db.db.empty()) {
    if (!db.data_dir.empty()) {
      throw UsageError(
          "--db and --data-dir cannot be given together: --data-dir chooses the local "
          "database, --db another one");
    }
    check_parsable("--db", db.db);
    return {db.db, "--db", std::nullopt};
  }
  if (!db.data_dir.empty()) return {"", "--data-dir", detail::LocalDatabase(db.data_dir)};
  // The environment's part of the rule is configured_conninfo's, which the library's own
  // callers use too.
  if (auto configured = detail::configured_conninfo("")) {
    if (configured->empty()) return {"", "the PG* environment", std::nullopt};
    check_parsable("DATABASE_URL", *configured);
    return {*configured, "DATABASE_URL", std::nullopt};
  }
  return {"", "default", detail::LocalDatabase()};
}

std::string describe_conninfo(const std::string& conninfo) {
  if (!conninfo.empty()) return detail::redact_conninfo(conninfo);
  std::string set;
  for (const char* name : {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"}) {
    const std::string value = env_or_empty(name);
    if (!value.empty()) set += (set.empty() ? "" : " ") + std::string(name) + "=" + value;
  }
  return "libpq defaults and the PG* environment" + (set.empty() ? "" : " (" + set + ")");
}

std::string start_local(detail::LocalDatabase& local, LocalCreate create,
                        const std::string& source) {
  const std::string where = skype_etl::quoted(local.data_dir().string(), 1024);
  if (!local.is_initialized() && create == LocalCreate::refused) {
    throw DatabaseError(
        "there is no local database in " + where +
        " yet: skype-etl run loads exports into it (creating it), skype-etl db start creates "
        "it empty" +
        (source == "--data-dir"
             ? "; is --data-dir right?"
             : "; --db, DATABASE_URL or the PG* environment choose another database"));
  }
  const bool existed = local.is_initialized();
  const bool was_running = local.is_running();
  const std::string conninfo = local.ensure_running(create == LocalCreate::allowed);
  if (!existed) {
    print_warning("created a new local database in " + where +
                  " (its server keeps running: skype-etl db stop stops it)");
  } else if (!was_running) {
    spdlog::info("started the local database in {}", where);
  }
  spdlog::info("database: the local database in {} ({})", where, source);
  return conninfo;
}

std::string resolve_conninfo(const DbOptions& db, LocalCreate create) {
  DatabaseChoice choice = choose_database(db);
  if (!choice.local) {
    spdlog::info("database: {} ({})", describe_conninfo(choice.conninfo), choice.source);
    return choice.conninfo;
  }
  return start_local(*choice.local, create, choice.source);
}

std::string describe_choice(const DbOptions& db) {
  try {
    const DatabaseChoice choice = choose_database(db);
    if (choice.local)
      return "the local database in " + skype_etl::quoted(choice.local->data_dir().string(), 1024) +
             " (" + choice.source + ")";
    return describe_conninfo(choice.conninfo) + " (" + choice.source + ")";
  } catch (const std::exception& error) {
    return error.what();
  }
}

}  // namespace skype_etl::cli
