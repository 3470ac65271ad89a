// JSON text of values that may hold invalid UTF-8 (file names, error messages and content of
// exports are bytes): nlohmann's dump() throws on them; these replace each invalid byte with
// U+FFFD instead.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace skype_etl::detail {

/// dump() of `value`, invalid UTF-8 replaced (`indent` as dump's; -1: one line).
std::string json_text(const nlohmann::json& value, int indent = -1);

/// `value` with every string and key valid UTF-8.
nlohmann::json valid_utf8(const nlohmann::json& value);
/// `text` as valid UTF-8.
std::string valid_utf8(const std::string& text);

}  // namespace skype_etl::detail
