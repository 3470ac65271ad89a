#include "support/browser.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace skype_etl::test {

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void run(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("the browser failed: " + cmd);
}

}  // namespace

std::string find_chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (::access(c, X_OK) == 0) return c;
  return {};
}

std::string shell_word(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Browser::Page Browser::dump(const fs::path& page) const {
  run(common() + "--enable-logging=stderr --v=0 --dump-dom " +
      shell_word("file://" + page.string()) + " > " +
      shell_word((m_profile / "dom.html").string()) + " 2> " +
      shell_word((m_profile / "log.txt").string()));
  return {slurp(m_profile / "dom.html"), slurp(m_profile / "log.txt")};
}

void Browser::screenshot(const fs::path& page, const fs::path& png, int width, int height) const {
  run(common() + "--window-size=" + std::to_string(width) + "," + std::to_string(height) +
      " --screenshot=" + shell_word(png.string()) + " " + shell_word("file://" + page.string()) +
      " > /dev/null 2>&1");
  if (!fs::exists(png) || fs::file_size(png) <= 10000)
    throw std::runtime_error("the browser wrote no picture " + png.string());
}

std::string Browser::common() const {
  return shell_word(m_exe) +
         " --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run "
         "--user-data-dir=" +
         shell_word((m_profile.path() / "profile").string()) + " ";
}

}  // namespace skype_etl::test
