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
  /// The library's knobs, bound to the options of the same names: their defaults are
  /// Options'. db, parallel_processing, temp_dir and output_dir are set from the fields
  /// below when the run starts.
  Options run;
  bool sequential = false;  ///< --sequential: run.parallel_processing = false
  std::string temp_dir;     ///< empty: $TMPDIR, else /tmp
  std::string output_dir;   ///< empty: none
  std::vector<std::string> reports;
  bool quiet = false;
  std::string files_from;  ///< a file listing exports, one a line ("-": standard input)
  /// --progress: "none", "bar", "plain", or empty (a bar on a terminal, none elsewhere).
  std::string progress;
  /// --progress-interval: seconds between the lines of --progress=plain.
  double progress_interval = 10;
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
