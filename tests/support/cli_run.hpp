// The skype-etl binary run as a child process by the suites of the command (cli_tests,
// archive_tests, cli_resource_tests): its exit code and what it wrote, through files or on a
// pseudo-terminal. The binary is the build tree's (SKYPE_ETL_EXE of tests/CMakeLists.txt): a
// suite that runs it also depends on the skype-etl target.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace skype_etl::test {

/// How a run of skype-etl ended: the exit code (128 + the signal's number when killed by
/// one) and what it wrote on stdout and stderr.
struct CliOutput {
  int code = -1;
  std::string out;
  std::string err;
};

/// Environment changes for a run: a name with a value is set, one with std::nullopt unset;
/// every other variable is inherited from the test.
using Env = std::map<std::string, std::optional<std::string>>;

/// How run_cli() runs the binary.
struct CliRun {
  Env env;
  /// A run that takes longer is killed (code 128 + SIGKILL) and fails the test; std::nullopt
  /// waits however long it takes.
  std::optional<std::chrono::seconds> timeout = std::chrono::seconds(600);
  /// Its standard input; std::nullopt inherits the test's.
  std::optional<std::filesystem::path> input = std::filesystem::path("/dev/null");
  /// How often the child is checked on while it runs.
  std::chrono::milliseconds poll = std::chrono::milliseconds(10);
  /// Called with the child's pid at each check while it runs (e.g. to sample its memory).
  std::function<void(pid_t)> on_poll;

  /// This with `changes` as env.
  CliRun with_env(Env changes) const {
    CliRun c = *this;
    c.env = std::move(changes);
    return c;
  }
  /// This with `limit` as timeout (std::nullopt: none).
  CliRun with_timeout(std::optional<std::chrono::seconds> limit) const {
    CliRun c = *this;
    c.timeout = limit;
    return c;
  }
  /// This with `file` as standard input (std::nullopt: the test's).
  CliRun with_input(std::optional<std::filesystem::path> file) const {
    CliRun c = *this;
    c.input = std::move(file);
    return c;
  }
  /// This checking on the child every `interval`, calling `check` with its pid each time.
  CliRun with_poll(std::chrono::milliseconds interval, std::function<void(pid_t)> check) const {
    CliRun c = *this;
    c.poll = interval;
    c.on_poll = std::move(check);
    return c;
  }
};

/// Runs the skype-etl binary with `args` as `how` says, capturing its output and exit code.
CliOutput run_cli(const std::vector<std::string>& args, const CliRun& how = {});

/// Runs the skype-etl binary with `args` on a pseudo-terminal (util-linux `script`) with `env`
/// changed, by default TERM=xterm and an 80-column terminal: what a user sees, stdout and
/// stderr together in `out`.
CliOutput run_on_terminal(const std::vector<std::string>& args,
                          const Env& env = {{"TERM", "xterm"}, {"COLUMNS", "80"}});

/// The number of lines of `text` (its newline characters).
std::size_t lines(const std::string& text);

}  // namespace skype_etl::test
