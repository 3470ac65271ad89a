#include "cli/run_command.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "core/json_text.hpp"
#include "report.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/graph.hpp"

namespace skype_etl::cli {
namespace {

std::string seconds_text(double s) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", s);
  return buffer;
}

/// Loads the exports; fills result's "success", "exports", and on failure "error" and
/// "exit_code".
void load_exports(const RunOptions& o, ETLContext& context, nlohmann::json& result) {
  PipelineOptions options;
  options.user_display_name = o.user_display_name;
  options.batches_in_flight = o.batches_in_flight;
  options.copy_streams = o.copy_streams;
  options.with_media = o.with_media;
  options.temp_dir = o.temp_dir;
  options.max_gzip_ratio = o.max_gzip_ratio;
  options.fail_after_batches = o.fail_after_batches;

  std::vector<std::filesystem::path> inputs(o.inputs.begin(), o.inputs.end());
  EtlGraph graph(inputs, options, context);
  if (o.pause_after_batches) {
    // Test hook: stop in the middle of a load so a test can kill -9 the process. The count
    // lives in the callback: the graph calls it after this block has ended.
    const std::size_t pause = *o.pause_after_batches;
    graph.on_batch_loaded([loaded = std::size_t{0}, pause](const Batch&) mutable {
      if (++loaded == pause) {
        std::fprintf(stderr, "skype-etl: paused after %zu batches\n", loaded);
        std::fflush(stderr);
        while (true) std::this_thread::sleep_for(std::chrono::hours(1));
      }
    });
  }
  try {
    result["exports"] = graph.run()["exports"];
    result["success"] = true;
  } catch (const std::exception& error) {
    result["error"] = error_message(error);
    result["exit_code"] = code(exit_code_for(error));
    result["exports"] = graph.result()["exports"];
  }
}

}  // namespace

int run_command(const RunOptions& o) {
  // A report that cannot be written is known before any work is done.
  try {
    for (const std::string& report : o.reports) check_writable("report", report);
  } catch (const OutputError& error) {
    print_error(error.what());
    return code(ExitCode::output);
  }
  const auto started = std::chrono::steady_clock::now();
  nlohmann::json result{{"success", false}, {"exports", nlohmann::json::array()}};
  std::optional<std::filesystem::path> output_dir;
  if (!o.output_dir.empty()) output_dir = o.output_dir;
  std::optional<ETLContext> context;
  try {
    DbConfig db{resolve_conninfo(o.db, LocalCreate::allowed)};
    context.emplace(db, o.batch_size, o.memory_limit_mb, !o.sequential, output_dir);
    context->set_logger(spdlog::default_logger());
    load_exports(o, *context, result);
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
        result["error_printed"] = true;
      }
    }
  }
  for (const auto& e : result["exports"]) {
    const std::string file = e.value("file", "");
    const auto& m = e["messages"];
    auto n = [&m](const char* name) {
      return static_cast<unsigned long long>(m.value(name, std::uint64_t{0}));
    };
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
  if (!result["success"].get<bool>()) {
    if (!result.value("error_printed", false)) print_error(result["error"].get<std::string>());
    return result["exit_code"].get<int>();
  }
  const auto& totals = result["totals"];
  const auto& m = totals["messages"];
  auto n = [&m](const char* name) {
    return static_cast<unsigned long long>(m.value(name, std::uint64_t{0}));
  };
  std::string exports = std::to_string(totals.value("exports", 0ULL)) +
                        (totals.value("exports", 0ULL) == 1 ? " export" : " exports");
  if (totals.value("already_loaded", 0ULL) > 0)
    exports += " (" + std::to_string(totals.value("already_loaded", 0ULL)) + " already loaded)";
  const std::string skipped =
      n("skipped") > 0 ? ", " + std::to_string(n("skipped")) + " skipped" : std::string();
  std::printf(
      "done: %s, %llu conversations, %llu messages read: %llu new, %llu updated, %llu "
      "unchanged, %llu superseded%s in %s s (%.0f messages/s)\n",
      exports.c_str(), static_cast<unsigned long long>(totals.value("conversations", 0ULL)),
      n("read"), n("new"), n("updated"), n("unchanged"), n("superseded"), skipped.c_str(),
      seconds_text(seconds).c_str(), seconds > 0 ? static_cast<double>(n("read")) / seconds : 0.0);
  return 0;
}

}  // namespace skype_etl::cli
