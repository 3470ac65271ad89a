// `skype-etl export` and `skype-etl stats`: reading loaded history back out (README,
// "Reading your history").
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "cli/common.hpp"

namespace skype_etl::cli {

struct ExportOptions {
  std::string dir;
  DbOptions db;
  std::string account;
  std::vector<std::string> conversations;
  std::string since, until;  ///< as typed: parse_date checks them
  std::string format = "html";
  std::string with_media;
  std::uint64_t messages_per_page = 0;  ///< html; 0: not given (the html writer's default)
  bool force = false;
  bool quiet = false;
};

struct StatsOptions {
  DbOptions db;
  std::string account;
  std::string since, until;
  std::string format = "table";
};

/// The formats `export --format` knows, the default first.
extern const std::vector<std::string> k_export_formats;

CLI::App* add_export_command(CLI::App& app, ExportOptions& o, LogOptions& log);
CLI::App* add_stats_command(CLI::App& app, StatsOptions& o, LogOptions& log);

/// Runs the commands; errors are thrown (main maps them to exit codes).
int export_command(const ExportOptions& o);
int stats_command(const StatsOptions& o);

}  // namespace skype_etl::cli
