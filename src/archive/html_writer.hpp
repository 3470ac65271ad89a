// The html format of `skype-etl export`: a static archive that opens from file:// with no
// network: index.html (every conversation, filterable and sortable), a page per
// conversation (<file_stem>.html, then <file_stem>-p2.html ... past messages_per_page) and
// stats.html (inline SVG). Every page carries a Content-Security-Policy that allows no
// script but our own hashed one; every foreign string goes through core/html_escape.hpp.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

#include "archive/archive.hpp"

namespace skype_etl::detail::archive {

struct HtmlOptions {
  /// Messages per conversation page; a longer conversation gets more pages.
  std::size_t messages_per_page = 2000;
  /// Shown in every page's title and header.
  std::string title = "Skype history";
};

/// Writes into `dir` (which must exist). Memory: the conversation list, plus one page's
/// buffer at most (flushed as it grows). Throws OutputError when a file cannot be written.
std::unique_ptr<ArchiveWriter> make_html_writer(const std::filesystem::path& dir,
                                                const HtmlOptions& options = {});

/// The Content-Security-Policy every page states (for the tests).
std::string html_content_security_policy();

}  // namespace skype_etl::detail::archive
