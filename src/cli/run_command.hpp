// `skype-etl run`: loads exports, prints what happened, writes the reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "skype_etl/options.hpp"

namespace skype_etl::cli {

struct RunOptions {
  std::vector<std::string> inputs;
  DbOptions db;
  std::string user_display_name;
  std::size_t batch_size = 1000;
  std::optional<std::size_t> memory_limit_mb;
  std::size_t batches_in_flight = 8;
  std::size_t copy_streams = 2;
  bool sequential = false;
  bool with_media = false;
  std::string temp_dir;
  std::uint64_t max_gzip_ratio = PipelineOptions{}.max_gzip_ratio;
  std::string output_dir;
  std::vector<std::string> reports;
  bool quiet = false;
  std::string files_from;  ///< a file listing exports, one a line ("-": standard input)
  bool fail_fast = false;
  /// --progress: "none", "bar", "plain", or empty (a bar on a terminal, none elsewhere).
  std::string progress;
  /// --progress-interval: seconds between the lines of --progress=plain.
  double progress_interval = 10;
  std::optional<std::size_t> fail_after_batches;
  std::optional<std::size_t> pause_after_batches;
};

/// The exports to load, in order: each argument as given, but "-" reads a list from
/// standard input (also --files-from FILE), a directory without a messages.json stands for
/// its exports and unpacked exports (by name), and a pattern with * ? [ that names no file
/// is expanded. Throws UsageError when that leaves nothing to load, or a directory or
/// pattern names none.
std::vector<std::filesystem::path> expand_inputs(const RunOptions& options);

/// Runs `skype-etl run`; returns the exit code.
int run_command(const RunOptions& options);

}  // namespace skype_etl::cli
