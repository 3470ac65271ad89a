// File names as text. A POSIX file name is bytes, while PostgreSQL's text, JSON reports and
// the console want UTF-8: a name is written losslessly in UTF-8 by escaping what is not.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace skype_etl::detail {

/// `name` as valid UTF-8 that says exactly which bytes it has: each byte that is not part
/// of a valid UTF-8 sequence is written `\xHH` (two upper-case hex digits) and each
/// backslash is doubled (`\\`), so the text is reversible. Valid UTF-8 without backslashes
/// (nearly every name) comes back unchanged. "Valid" is what PostgreSQL accepts: no
/// overlong forms, no surrogates, nothing above U+10FFFF, no NUL.
std::string escape_file_name(std::string_view name);

}  // namespace skype_etl::detail
