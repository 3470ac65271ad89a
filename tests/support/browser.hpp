// Headless Chromium for the tests of the HTML archive: renders file:// pages and returns the
// DOM after load and what the browser logged (console messages, CSP violations).
#pragma once

#include <filesystem>
#include <string>

#include "support/tar_writer.hpp"

namespace skype_etl::test {

/// The Chromium executable (Debian's `chromium`), or "" when none is installed: the tests
/// that need one then say they skipped.
std::string find_chromium();

/// `text` quoted for /bin/sh.
std::string shell_word(const std::string& text);

/// Headless Chromium on file:// pages, with a profile of its own (removed with it).
/// Failures to run the browser throw std::runtime_error with the command.
class Browser {
 public:
  explicit Browser(std::string exe) : m_exe(std::move(exe)) {}
  struct Page {
    std::string dom;
    std::string log;  ///< stderr, with console messages and CSP violations
  };
  /// `page` loaded, its scripts run: the DOM serialised (`--dump-dom`). `page` may end in
  /// "#fragment".
  Page dump(const std::filesystem::path& page) const;
  /// A PNG of `page` at width x height pixels.
  void screenshot(const std::filesystem::path& page, const std::filesystem::path& png, int width,
                  int height) const;

 private:
  std::string common() const;
  std::string m_exe;
  TempDir m_profile;
};

}  // namespace skype_etl::test
