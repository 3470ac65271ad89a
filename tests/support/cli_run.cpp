#include "support/cli_run.hpp"

#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/browser.hpp"
#include "support/tar_writer.hpp"

namespace skype_etl::test {

namespace {

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

CliOutput run_cli(const std::vector<std::string>& args, const CliRun& how) {
  TempDir dir;
  std::fflush(nullptr);  // or the child repeats what the parent had buffered
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    if (how.input) std::freopen(how.input->c_str(), "r", stdin);
    std::freopen((dir / "out").c_str(), "w", stdout);
    std::freopen((dir / "err").c_str(), "w", stderr);
    for (const auto& [name, value] : how.env) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
    std::vector<char*> argv{const_cast<char*>(SKYPE_ETL_EXE)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(SKYPE_ETL_EXE, argv.data());
    std::_Exit(127);
  }
  int status = 0;
  const auto start = std::chrono::steady_clock::now();
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (how.timeout && std::chrono::steady_clock::now() > start + *how.timeout) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      BOOST_ERROR("skype-etl did not finish within " << how.timeout->count() << " s");
      break;
    }
    if (how.on_poll) how.on_poll(pid);
    std::this_thread::sleep_for(how.poll);
  }
  CliOutput o;
  o.code = exit_code(status);
  o.out = slurp(dir / "out");
  o.err = slurp(dir / "err");
  return o;
}

CliOutput run_on_terminal(const std::vector<std::string>& args, const Env& env) {
  TempDir dir;
  std::string command = "env";
  for (const auto& [name, value] : env)
    command += value ? " " + shell_word(name + "=" + *value) : " -u " + shell_word(name);
  command += " " + shell_word(SKYPE_ETL_EXE);
  for (const auto& a : args) command += " " + shell_word(a);
  const std::string line = "script -qfec " + shell_word(command) + " /dev/null > " +
                           shell_word((dir / "out").string()) + " 2>&1 < /dev/null";
  CliOutput o;
  o.code = exit_code(std::system(line.c_str()));
  o.out = slurp(dir / "out");
  return o;
}

std::size_t lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

}  // namespace skype_etl::test
