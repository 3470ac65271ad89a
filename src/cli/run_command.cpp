#include "cli/run_command.hpp"

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <unistd.h>

#include <cstdlib>

#include <spdlog/spdlog.h>

#include "cli/progress_display.hpp"
#include "core/json_text.hpp"
#include "load/pg_connection.hpp"
#include "load/server_settings.hpp"
#include "report.hpp"
#include "run_sampler.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/graph.hpp"

namespace skype_etl::cli {
namespace {

std::string seconds_text(double s) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", s);
  return buffer;
}

bool is_export_name(const std::filesystem::path& path) {
  std::string name = path.filename().string();
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* ending : {".tar", ".tar.gz", ".tgz", ".json", ".json.gz"})
    if (name.size() > std::strlen(ending) &&
        name.compare(name.size() - std::strlen(ending), std::string::npos, ending) == 0)
      return true;
  return false;
}

/// Reads a list of exports, one path a line (blank lines and lines starting with '#' left
/// out), from `source` ("-": standard input).
std::vector<std::string> read_list(const std::string& source) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (source != "-") {
    file.open(source);
    if (!file) throw UsageError("cannot read the list of exports '" + source + "'");
    in = &file;
  }
  std::vector<std::string> list;
  for (std::string line; std::getline(*in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    list.push_back(line);
  }
  return list;
}

}  // namespace

std::vector<std::filesystem::path> expand_inputs(const RunOptions& o) {
  std::vector<std::string> given = o.inputs;
  if (!o.files_from.empty()) {
    const auto listed = read_list(o.files_from);
    given.insert(given.end(), listed.begin(), listed.end());
  }
  std::vector<std::filesystem::path> inputs;
  for (const std::string& arg : given) {
    if (arg == "-") {
      for (const std::string& line : read_list("-")) inputs.emplace_back(line);
      continue;
    }
    const std::filesystem::path path(arg);
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec) &&
        !std::filesystem::exists(path / "messages.json", ec)) {
      // A directory of exports (an unpacked export has its messages.json): its exports
      // and unpacked exports, by name.
      std::vector<std::filesystem::path> found;
      for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
        const bool unpacked =
            entry.is_directory(ec) && std::filesystem::exists(entry.path() / "messages.json", ec);
        if (unpacked || (entry.is_regular_file(ec) && is_export_name(entry.path())))
          found.push_back(entry.path());
      }
      if (ec) throw UsageError("cannot list directory '" + arg + "': " + ec.message());
      if (found.empty())
        throw UsageError("no export in directory '" + arg +
                         "' (.tar, .tar.gz, .tgz, .json, .json.gz, or a directory with a "
                         "messages.json)");
      std::sort(found.begin(), found.end());
      inputs.insert(inputs.end(), found.begin(), found.end());
      continue;
    }
    if (!std::filesystem::exists(path, ec) && arg.find_first_of("*?[") != std::string::npos) {
      // A pattern the shell did not expand (quoted, or no shell).
      glob_t matches{};
      const int rc = ::glob(arg.c_str(), 0, nullptr, &matches);
      std::vector<std::filesystem::path> found;
      if (rc == 0)
        for (std::size_t i = 0; i < matches.gl_pathc; ++i) found.emplace_back(matches.gl_pathv[i]);
      ::globfree(&matches);
      if (found.empty()) throw UsageError("no file matches '" + arg + "'");
      inputs.insert(inputs.end(), found.begin(), found.end());
      continue;
    }
    inputs.push_back(path);
  }
  if (inputs.empty()) throw UsageError("no export to load");
  return inputs;
}

namespace {

/// Loads the exports; fills result's "success", "exports", and on failure "error" and
/// "exit_code".
void load_exports(const RunOptions& o, const Options& options,
                  const std::vector<std::filesystem::path>& inputs, ETLContext& context,
                  nlohmann::json& result) {
  EtlGraph graph(inputs, options, context);
  if (o.pause_after_batches) {
    // Test hook: stop in the middle of a load so a test can kill -9 the process. The count
    // lives in the callback: the graph calls it after this block has ended.
    const std::size_t pause = *o.pause_after_batches;
    graph.on_batch_loaded([loaded = std::size_t{0}, pause](const BatchProgress&) mutable {
      if (++loaded == pause) {
        std::fprintf(stderr, "skype-etl: paused after %zu batches\n", loaded);
        std::fflush(stderr);
        while (true) std::this_thread::sleep_for(std::chrono::hours(1));
      }
    });
  }
  // Samples for the report, and the live progress, from a thread of their own.
  detail::RunSampler sampler(graph, context);
  ProgressMonitor monitor(
      sampler, context,
      choose_progress_mode(o.progress, o.quiet, ::isatty(STDERR_FILENO) == 1, std::getenv("TERM")),
      std::chrono::milliseconds(static_cast<std::int64_t>(o.progress_interval * 1000)));
  const RunResult run = graph.run();
  const nlohmann::json json = run.to_json();
  result["exports"] = json["exports"];
  result["success"] = run.success;
  if (!run.success) {
    result["error"] = run.error;
    result["exit_code"] = run.exit_code;
  }
  if (run.stopped) result["stopped"] = true;  // the run did not go through the exports
  monitor.stop();  // clears the live lines before anything else is printed
  result["sampling"] = sampler.to_json();
}

/// The server's WAL mark (server_settings.hpp) on a connection of its own, or nullopt: the
/// hint it serves never fails a run.
std::optional<detail::WalMark> wal_mark_of(const std::string& conninfo) {
  try {
    detail::PgConnection conn(conninfo);
    return detail::wal_mark(conn);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// The one line that names the server setting that slowed the run's load, or "".
std::string slow_load_hint_of(const std::string& conninfo, const detail::WalMark& before) {
  try {
    detail::PgConnection conn(conninfo);
    const auto after = detail::wal_mark(conn);
    return after ? detail::slow_load_hint(conn, before, *after) : std::string();
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace

int run_command(const RunOptions& o) {
  // What to load is decided before anything starts.
  std::vector<std::filesystem::path> inputs;
  try {
    inputs = expand_inputs(o);
  } catch (const UsageError& error) {
    print_error(error.what());
    return code(ExitCode::usage);
  }
  // And so is whether the reports can be written: no work is wasted.
  try {
    for (const std::string& report : o.reports) check_writable("report", report);
  } catch (const OutputError& error) {
    print_error(error.what());
    return code(ExitCode::output);
  }
  const auto started = std::chrono::steady_clock::now();
  nlohmann::json result{{"success", false}, {"exports", nlohmann::json::array()}};
  Options options = o.run;
  options.parallel_processing = !o.sequential;
  options.temp_dir = o.temp_dir;
  if (!o.output_dir.empty()) options.output_dir = o.output_dir;
  std::optional<ETLContext> context;
  try {
    // The local default database is tuned for loads when it starts: no hint for it.
    const bool local = choose_database(o.db).local.has_value();
    options.db.conninfo = resolve_conninfo(o.db, LocalCreate::allowed);
    context.emplace(options);
    context->set_logger(spdlog::default_logger());
    const auto before = local ? std::nullopt : wal_mark_of(options.db.conninfo);
    load_exports(o, options, inputs, *context, result);
    if (before) {
      const std::string hint = slow_load_hint_of(options.db.conninfo, *before);
      if (!hint.empty()) result["hint"] = hint;
    }
  } catch (const std::exception& error) {
    // Before the run began (the local database would not start, ...).
    result["error"] = error_message(error);
    result["exit_code"] = code(exit_code_for(error));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result["statistics"] = context ? context->statistics() : nlohmann::json::object();
  result["seconds"] = seconds;
  result["totals"] = detail::summarize_exports(result["exports"]);

  // Reports are written whatever happened: a failed run's report says why. One that cannot
  // be written after all (the disk filled meanwhile) fails a run that had not failed.
  for (const std::string& report : o.reports) {
    // FILE.html: a page with the phases' timeline; anything else: the JSON.
    try {
      write_text_file("report", report,
                      is_html_report(report) ? detail::render_html_report(result)
                                             : detail::json_text(result, 2) + "\n");
    } catch (const OutputError& error) {
      print_error(error.what());
      if (result["success"].get<bool>()) {
        result["success"] = false;
        result["exit_code"] = code(ExitCode::output);
        result["error"] = error_message(error);
      }
    }
  }
  for (const auto& e : result["exports"]) {
    const std::string file = e.value("file", "");
    const auto& m = e["messages"];
    auto n = [&m](const char* name) {
      return static_cast<unsigned long long>(m.value(name, std::uint64_t{0}));
    };
    if (e.value("status", "") == "failed") {
      // Its one error line (the message names the export, or gets its name).
      std::string error = e.value("error", "");
      if (error.find(file) == std::string::npos) error = "'" + file + "': " + error;
      print_error(error);
      continue;
    }
    if (!o.quiet) {
      if (e.value("status", "") == "already loaded") {
        std::printf("%s: already loaded, nothing stored", file.c_str());
        if (n("skipped") > 0)
          std::printf(" (%llu messages read, then skipped: another run loaded the file meanwhile)",
                      n("skipped"));
        std::printf("\n");
      } else {
        std::printf(
            "%s: loaded %llu conversations, %llu messages read: %llu new, %llu updated, %llu "
            "unchanged, %llu superseded",
            file.c_str(), static_cast<unsigned long long>(e.value("conversations", 0ULL)),
            n("read"), n("new"), n("updated"), n("unchanged"), n("superseded"));
        if (e.contains("export_id"))
          std::printf(" (export %lld)", static_cast<long long>(e["export_id"].get<long long>()));
        std::printf("\n");
      }
    }
    // Warnings obey the log level (-q, --log-level error) like every other line on stderr.
    const bool warn = spdlog::default_logger()->should_log(spdlog::level::warn);
    if (n("invalid_timestamps") > 0 && warn) {
      std::string where;
      const auto& transform = e.value("transform", nlohmann::json::object());
      const auto first = transform.find("first_invalid_timestamp");
      if (first != transform.end() && first->is_object()) {
        // The id and the value are the export's own text: escaped and cut.
        where = "; the first is message " + std::to_string(first->value("message_index", 0)) +
                " of conversation " + std::to_string(first->value("conversation_index", 0)) + " (" +
                skype_etl::printable(first->value("conversation_id", ""), 64) + ") at byte " +
                std::to_string(first->value("byte_offset", 0ULL)) + ": " +
                skype_etl::quoted(first->value("raw_value", ""));
      }
      std::fprintf(stderr,
                   "skype-etl: warning: %s: %llu messages have no valid timestamp "
                   "(originalarrivaltime): stored with sent_at NULL and the value found in "
                   "details.original_arrival_time%s\n",
                   skype_etl::printable(file).c_str(), n("invalid_timestamps"), where.c_str());
    }
    const auto media = e.value("media", nlohmann::json::object());
    const auto ignored = media.value("metadata_ignored", std::uint64_t{0});
    if (ignored > 0 && warn) {
      const auto first = media.value("first_ignored", nlohmann::json::object());
      // The entry's name comes from the archive: quoted, escaped and cut, it stays on one
      // short line.
      std::fprintf(stderr,
                   "skype-etl: warning: %s: %llu media metadata files (media/<docid>.json) "
                   "ignored, their attachments stored without name and content type; the "
                   "first, %s, is %s\n",
                   skype_etl::printable(file).c_str(), static_cast<unsigned long long>(ignored),
                   skype_etl::quoted(first.value("entry", ""), 256).c_str(),
                   skype_etl::printable(first.value("reason", ""), 256).c_str());
    }
  }
  if (result.value("stopped", false) || !result.contains("statistics") ||
      result["statistics"].empty()) {
    // The run stopped (or never began): its error, and no summary of what did not happen.
    print_error(result.value("error", ""));
    return result.value("exit_code", code(ExitCode::internal));
  }
  const auto& totals = result["totals"];
  const auto& m = totals["messages"];
  auto n = [&m](const char* name) {
    return static_cast<unsigned long long>(m.value(name, std::uint64_t{0}));
  };
  std::string exports = std::to_string(totals.value("exports", 0ULL)) +
                        (totals.value("exports", 0ULL) == 1 ? " export" : " exports");
  std::string how;
  for (const auto& [key, word] :
       {std::pair<const char*, const char*>{"already_loaded", "already loaded"},
        {"failed", "failed"}}) {
    if (totals.value(key, 0ULL) == 0) continue;
    how += (how.empty() ? "" : ", ") + std::to_string(totals.value(key, 0ULL)) + " " + word;
  }
  if (!how.empty())
    exports += " (" + std::to_string(totals.value("loaded", 0ULL)) + " loaded, " + how + ")";
  std::string skipped;
  for (const char* name : {"skipped", "failed"})
    if (n(name) > 0) skipped += ", " + std::to_string(n(name)) + " " + name;
  std::printf(
      "done: %s, %llu conversations, %llu messages read: %llu new, %llu updated, %llu "
      "unchanged, %llu superseded%s in %s s (%.0f messages/s)\n",
      exports.c_str(), static_cast<unsigned long long>(totals.value("conversations", 0ULL)),
      n("read"), n("new"), n("updated"), n("unchanged"), n("superseded"), skipped.c_str(),
      seconds_text(seconds).c_str(), seconds > 0 ? static_cast<double>(n("read")) / seconds : 0.0);
  if (result.contains("hint") && !o.quiet)
    std::printf("hint: %s\n", result["hint"].get<std::string>().c_str());
  // The exports that failed, with why: the run's exit code is the first one's.
  for (const auto& e : result["exports"])
    if (e.value("status", "") == "failed")
      std::printf("failed: %s: %s\n", skype_etl::printable(e.value("file", "")).c_str(),
                  skype_etl::printable(e.value("error", ""), 512).c_str());
  return result["success"].get<bool>() ? 0 : result.value("exit_code", code(ExitCode::internal));
}

}  // namespace skype_etl::cli
