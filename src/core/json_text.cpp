#include "core/json_text.hpp"

namespace skype_etl::detail {

std::string json_text(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json valid_utf8(const nlohmann::json& value) {
  return nlohmann::json::parse(json_text(value));
}

std::string valid_utf8(const std::string& text) {
  return valid_utf8(nlohmann::json(text)).get<std::string>();
}

}  // namespace skype_etl::detail
