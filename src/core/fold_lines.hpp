// Multi-line messages (libpq's, the server's) as one line.
#pragma once

#include <string>

namespace skype_etl::detail {

/// `message` on one line: runs of line breaks and tabs become one space, trailing ones go.
/// Other control characters are left for printable() to escape.
std::string fold_lines(const std::string& message);

}  // namespace skype_etl::detail
