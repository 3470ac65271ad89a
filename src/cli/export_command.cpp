#include "cli/export_command.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "archive/archive_reader.hpp"
#include "archive/html_writer.hpp"
#include "archive/partial_directory.hpp"
#include "archive/writers.hpp"
#include "load/pg_connection.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::cli {

namespace fs = std::filesystem;
namespace ar = detail::archive;

const std::vector<std::string> k_export_formats{"html", "txt", "csv", "json"};

namespace {

/// The most --messages-per-page takes: a page of a billion messages is one page anyway.
constexpr std::uint64_t k_max_messages_per_page = 1000000000;

void add_filter_options(CLI::App& command, std::string& account, std::string& since,
                        std::string& until) {
  command
      .add_option("--account", account,
                  "the account (an export's owner), its id in any form; default: the "
                  "database's only account")
      ->type_name("ID");
  command
      .add_option("--since", since,
                  std::string("only messages sent at or after DATE: ") + k_date_formats +
                      "; default: any time")
      ->type_name("DATE");
  command
      .add_option("--until", until,
                  std::string("only messages sent before DATE (same formats); default: any "
                              "time"))
      ->type_name("DATE");
}

/// Accepts one of `words` (an empty description, so that --help keeps the option on one line).
CLI::Validator one_of(std::vector<std::string> words) {
  return CLI::Validator(
      [words](std::string& value) -> std::string {
        for (const auto& w : words)
          if (value == w) return {};
        std::string list;
        for (std::size_t i = 0; i < words.size(); ++i)
          list += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
        return "must be " + list + " (got " + skype_etl::quoted(value) + ")";
      },
      "", "");
}

ar::ArchiveFilter filter_of(const std::string& account, const std::string& since,
                            const std::string& until) {
  ar::ArchiveFilter f;
  f.account = account;
  if (!since.empty()) f.since = parse_date("--since", since);
  if (!until.empty()) f.until = parse_date("--until", until);
  return f;
}

std::unique_ptr<ar::ArchiveWriter> make_writer(const ExportOptions& o, const fs::path& dir) {
  if (o.format == "txt") return ar::make_txt_writer(dir);
  if (o.format == "csv") return ar::make_csv_writer(dir);
  if (o.format == "json") return ar::make_json_writer(dir);
  if (o.format == "html") {
    ar::HtmlOptions options;
    if (o.messages_per_page != 0) options.messages_per_page = o.messages_per_page;
    return ar::make_html_writer(dir, options);
  }
  throw UsageError("--format " + o.format + ": not one of html, txt, csv, json");
}

/// Removes what killed exports into `target` left beside it (their partial directories,
/// which no live export holds), and says so in one line.
void clean_up_stale_partials(const fs::path& target) {
  const ar::StaleRemoval stale = ar::remove_stale_partial_directories(target);
  if (!stale.removed.empty()) {
    std::string names;
    for (const auto& path : stale.removed)
      names += (names.empty() ? "" : ", ") + quoted(path.string(), 1024);
    print_warning("removed " +
                  (stale.removed.size() == 1
                       ? std::string("the partial directory of an interrupted export: ")
                       : std::to_string(stale.removed.size()) +
                             " partial directories of interrupted exports: ") +
                  names);
  }
  for (const auto& failure : stale.failed)
    print_warning("cannot remove the partial directory of an interrupted export: " + failure);
}

/// DIR as an absolute path without a trailing separator.
fs::path target_of(const std::string& dir) {
  if (dir.empty()) throw UsageError("export needs a directory to write (DIR)");
  fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  if (p == p.root_path())
    throw UsageError("export: DIR " + quoted(dir, 1024) + " is the root directory");
  return p;
}

/// Whether the target exists as a non-empty directory (UsageError for anything that is no
/// directory).
bool check_target(const fs::path& target, const std::string& dir) {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(target, ec);
  if (ec || status.type() == fs::file_type::not_found) return false;
  if (status.type() != fs::file_type::directory)
    throw UsageError("export: " + quoted(dir, 1024) +
                     " exists and is not a directory (a file or a symbolic link): give another "
                     "DIR");
  return !fs::is_empty(target, ec);
}

/// Puts `partial` in the place of `target`. An old directory there is swapped out in one
/// step (renameat2 RENAME_EXCHANGE) and only then removed.
void move_into_place(const fs::path& partial, const fs::path& target, bool replace) {
  if (!replace || !fs::exists(fs::symlink_status(target))) {
    if (::rename(partial.c_str(), target.c_str()) != 0)
      throw OutputError("export directory", target.string(), std::strerror(errno));
    return;
  }
  // Swapped out, the old directory has the partial directory's name: locked, so that another
  // export's clean-up leaves it to us (best effort: the lock may be unavailable).
  const int old_fd = ::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (old_fd >= 0) ::flock(old_fd, LOCK_EX | LOCK_NB);
  struct CloseOld {
    int fd;
    ~CloseOld() {
      if (fd >= 0) ::close(fd);
    }
  } close_old{old_fd};
  if (::renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0)
    throw OutputError("export directory", target.string(),
                      std::string("cannot replace it: ") + std::strerror(errno));
  std::error_code ec;
  fs::remove_all(partial, ec);  // now the old directory
  if (ec)
    throw OutputError(
        "old export directory", partial.string(),
        "the new export is in place, but the old one could not be removed: " + ec.message());
}

/// "exporting: 12000 of 47000 messages (25%)" on a terminal, redrawn at most 5 times a second.
class ExportProgress {
 public:
  ExportProgress(bool on, std::int64_t total) : m_on(on), m_total(total) {}
  void update(std::int64_t done) {
    if (!m_on) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - m_last < std::chrono::milliseconds(200)) return;
    m_last = now;
    const int percent = m_total > 0 ? static_cast<int>(done * 100 / m_total) : 100;
    std::fprintf(stderr, "\rexporting: %lld of %lld messages (%d%%)\033[K",
                 static_cast<long long>(done), static_cast<long long>(m_total), percent);
    std::fflush(stderr);
    m_shown = true;
  }
  ~ExportProgress() {
    if (m_shown) std::fprintf(stderr, "\r\033[K");
  }

 private:
  bool m_on;
  std::int64_t m_total;
  std::chrono::steady_clock::time_point m_last{};
  bool m_shown = false;
};

std::string count_width(std::int64_t n, int width) {
  char text[32];
  std::snprintf(text, sizeof text, "%*lld", width, static_cast<long long>(n));
  return text;
}

}  // namespace

CLI::App* add_export_command(CLI::App& app, ExportOptions& o, LogOptions& log) {
  CLI::App* command = app.add_subcommand(
      "export",
      "write loaded history to files: an HTML archive, text, CSV or JSON (README: "
      "\"Reading your history\")");
  command->add_option("dir", o.dir, "the directory to write (must not exist or be empty)")
      ->required()
      ->type_name("DIR");
  command->add_option("--format", o.format, "html, txt, csv or json; default: html")
      ->check(one_of(k_export_formats))
      ->type_name("FORMAT");
  command
      ->add_option("--conversation", o.conversations,
                   "only this conversation: an id, a name, or a pattern with * and ? (ignoring "
                   "case); repeatable; default: every conversation")
      ->type_name("PATTERN");
  add_filter_options(*command, o.account, o.since, o.until);
  command
      ->add_option("--with-media", o.with_media,
                   "the directory the load wrote media to (run --with-media --output-dir): "
                   "attachments link to their files there; default: none")
      ->type_name("DIR");
  command
      ->add_option("--messages-per-page", o.messages_per_page,
                   "html: at most N messages on a conversation's page, a longer conversation "
                   "continues on more pages; default: " +
                       std::to_string(ar::HtmlOptions{}.messages_per_page))
      ->type_name("N")
      ->check(whole_number(1, k_max_messages_per_page));
  command->add_flag("--force", o.force,
                    "replace DIR when it exists and is not empty; default: refuse");
  add_db_options(*command, o.db);
  add_log_options(*command, log);
  return command;
}

CLI::App* add_stats_command(CLI::App& app, StatsOptions& o, LogOptions& log) {
  CLI::App* command = app.add_subcommand(
      "stats",
      "activity of loaded history: per month, hour by weekday, top conversations and "
      "senders (local time zone)");
  add_filter_options(*command, o.account, o.since, o.until);
  command->add_option("--format", o.format, "table or json; default: table")
      ->check(one_of({"table", "json"}))
      ->type_name("FORMAT");
  add_db_options(*command, o.db);
  add_log_options(*command, log);
  return command;
}

int export_command(const ExportOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  if (o.messages_per_page != 0 && o.format != "html")
    throw UsageError("--messages-per-page is for --format html only (got --format " + o.format +
                     ")");
  ar::ArchiveFilter filter = filter_of(o.account, o.since, o.until);
  filter.conversations = o.conversations;
  filter.with_raw = o.format == "json";  // the others show neither content_raw nor properties
  const fs::path target = target_of(o.dir);
  const bool replace = check_target(target, o.dir);
  if (replace && !o.force)
    throw UsageError("export: " + quoted(o.dir, 1024) +
                     " exists and is not empty: give --force to replace it, or another DIR");
  if (!o.with_media.empty()) {
    filter.media_dir = o.with_media;
    filter.output_dir = target;
  }
  const std::string conninfo = resolve_conninfo(o.db, LocalCreate::refused);
  detail::PgConnection conn(conninfo);
  ar::ArchiveReader reader(conn, filter);
  // The statistics are computed on a second connection while the first streams messages,
  // and a third streams every other conversation (write_archive).
  detail::PgConnection statistics_conn(conninfo);
  detail::PgConnection second_reading_conn(conninfo);
  clean_up_stale_partials(target);
  ar::PartialDirectory partial(target);
  std::int64_t written = 0;
  {
    auto writer = make_writer(o, partial.path());
    ExportProgress progress(!o.quiet && ::isatty(STDERR_FILENO) == 1, reader.message_count());
    ar::write_archive(
        reader, *writer,
        [&](std::int64_t n) {
          written = n;
          progress.update(n);
        },
        &statistics_conn, &second_reading_conn);
  }
  // mkdtemp made it 0700: give it the mode mkdir would have.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(partial.path().c_str(), 0777 & ~mask);
  move_into_place(partial.path(), target, replace);
  partial.release();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!o.quiet)
    std::printf("exported %lld messages of %zu conversations to %s (%s) in %.2f s\n",
                static_cast<long long>(written), reader.conversations().size(), target.c_str(),
                o.format.c_str(), seconds);
  return 0;
}

int stats_command(const StatsOptions& o) {
  const ar::ArchiveFilter filter = filter_of(o.account, o.since, o.until);
  detail::PgConnection conn(resolve_conninfo(o.db, LocalCreate::refused));
  ar::ArchiveReader reader(conn, filter);
  const ar::Statistics s = reader.statistics();
  if (o.format == "json") {
    nlohmann::json j = ar::statistics_json(s);
    j["account_id"] = reader.account_id();
    j["time_zone"] = ar::local_time_zone_name();
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::string out = "account " + reader.account_id() + ": " + std::to_string(s.messages) +
                    " messages in " + std::to_string(s.conversations) + " conversations";
  if (s.first_message_at && s.last_message_at)
    out += ", " + ar::local_minute(*s.first_message_at) + " to " +
           ar::local_minute(*s.last_message_at);
  out += " (time zone " + ar::local_time_zone_name() + ")\n\nmessages per month:\n";
  for (const auto& m : s.per_month)
    out += "  " + m.month + "  " + count_width(m.messages, 8) + "\n";
  std::int64_t most = 0;
  for (const auto& day : s.hour_by_weekday)
    for (std::int64_t n : day) most = std::max(most, n);
  const int width = static_cast<int>(std::to_string(most).size());
  out += "\nmessages by hour (columns) and weekday:\n     ";
  for (int h = 0; h < 24; ++h) out += " " + count_width(h, width);
  out += "\n";
  static const char* const days[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  for (int d = 0; d < 7; ++d) {
    out += std::string("  ") + days[d] + " ";
    for (int h = 0; h < 24; ++h) out += " " + count_width(s.hour_by_weekday[d][h], width);
    out += "\n";
  }
  const auto ranked = [&](const char* title, const std::vector<ar::Statistics::Ranked>& list) {
    out += std::string("\n") + title + ":\n";
    for (const auto& r : list)
      out += "  " + count_width(r.messages, 8) + "  " + printable(r.name, 200) +
             (r.name == r.id ? std::string() : " (" + printable(r.id, 200) + ")") + "\n";
  };
  ranked("top conversations", s.top_conversations);
  ranked("top senders", s.top_senders);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace skype_etl::cli
