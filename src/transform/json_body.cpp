#include "transform/json_body.hpp"

#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <utility>
#include <vector>

#include "transform/timestamps.hpp"

namespace skype_etl::detail {
namespace {

/// A member id in a JSON body: a string, or an object's "id" (or "mri", "MemberMri").
std::string json_member_id(const nlohmann::json& value) {
  if (value.is_string()) return std::string(trim_ascii(value.get_ref<const std::string&>()));
  if (value.is_object()) {
    for (const char* key : {"id", "mri", "MemberMri", "memberMri"}) {
      const auto it = value.find(key);
      if (it != value.end() && it->is_string())
        return std::string(trim_ascii(it->get_ref<const std::string&>()));
    }
  }
  return {};
}

/// The text of a string that names something: the first of `keys` an object holds.
std::string first_string(const nlohmann::json& object, std::initializer_list<const char*> keys) {
  if (!object.is_object()) return {};
  for (const char* key : keys) {
    const auto it = object.find(key);
    if (it != object.end() && it->is_string()) return markup_to_text(it->get<std::string>());
  }
  return {};
}

/// Keys whose strings are what a JSON body says to a reader, in the order they are read.
constexpr const char* kTextKeys[] = {"title",   "subtitle", "question",    "text",    "body",
                                     "message", "summary",  "description", "content", "caption"};

/// Appends the text of `value`'s text keys (markup removed), depth first, without repeats.
void collect_json_text(const nlohmann::json& value, std::vector<std::string>& parts, int depth) {
  if (depth > 32) return;
  if (value.is_array()) {
    for (const auto& element : value) collect_json_text(element, parts, depth + 1);
    return;
  }
  if (!value.is_object()) return;
  for (const char* key : kTextKeys) {
    const auto it = value.find(key);
    if (it == value.end()) continue;
    if (it->is_string()) {
      std::string text = markup_to_text(it->get<std::string>());
      if (!text.empty() && std::find(parts.begin(), parts.end(), text) == parts.end())
        parts.push_back(std::move(text));
    } else {
      collect_json_text(*it, parts, depth + 1);
    }
  }
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!it->is_structured()) continue;
    if (std::find(std::begin(kTextKeys), std::end(kTextKeys), it.key()) != std::end(kTextKeys))
      continue;  // read above
    collect_json_text(*it, parts, depth + 1);
  }
}

}  // namespace

bool membership_from_json(std::string_view message_type, const nlohmann::json& body,
                          MembershipInfo& info) {
  static constexpr std::pair<std::string_view, std::string_view> kKinds[] = {
      {"AddMember", "add_member"},        {"MemberAdded", "add_member"},
      {"MembersAdded", "add_member"},     {"DeleteMember", "delete_member"},
      {"MemberRemoved", "delete_member"}, {"MembersRemoved", "delete_member"},
      {"MemberJoined", "member_joined"},  {"MembersJoined", "member_joined"},
      {"MemberLeft", "member_left"},      {"MembersLeft", "member_left"},
  };
  if (!body.is_object()) return false;
  const auto slash = message_type.rfind('/');
  const std::string_view event =
      slash == std::string_view::npos ? message_type : message_type.substr(slash + 1);
  std::string_view kind;
  for (const auto& [name, k] : kKinds)
    if (event == name) kind = k;
  if (kind.empty()) return false;
  MembershipInfo m;
  m.kind = std::string(kind);
  if (const auto it = body.find("initiator"); it != body.end()) m.initiator = json_member_id(*it);
  auto add = [&m](std::string id) {
    if (!id.empty() && std::find(m.targets.begin(), m.targets.end(), id) == m.targets.end())
      m.targets.push_back(std::move(id));
  };
  for (const char* key : {"members", "targets", "target"}) {
    const auto it = body.find(key);
    if (it == body.end()) continue;
    if (it->is_array()) {
      for (const auto& member : *it) add(json_member_id(member));
    } else {
      add(json_member_id(*it));
    }
  }
  if (m.initiator.empty() && m.targets.empty()) return false;
  if (const auto it = body.find("eventtime"); it != body.end()) {
    if (it->is_number())
      m.time_us = parse_epoch_text_us(it->dump());
    else if (it->is_string())
      m.time_us = parse_epoch_text_us(it->get_ref<const std::string&>());
  }
  info = std::move(m);
  return true;
}

PollInfo poll_info_from_json(const nlohmann::json& body) {
  PollInfo info;
  info.question = first_string(body, {"question", "title"});
  if (!body.is_object()) return info;
  for (const char* key : {"options", "answers"}) {
    const auto it = body.find(key);
    if (it == body.end() || !it->is_array()) continue;
    for (const auto& option : *it) {
      std::string text =
          option.is_string()
              ? markup_to_text(option.get<std::string>())
              : first_string(option, {"text", "title", "value", "option", "answer", "name"});
      if (!text.empty()) info.options.push_back(std::move(text));
    }
    break;
  }
  return info;
}

std::string readable_json_text(const nlohmann::json& body) {
  std::vector<std::string> parts;
  collect_json_text(body, parts, 0);
  std::string line;
  for (const auto& part : parts) {
    if (!line.empty()) line += " - ";
    line += part;
  }
  if (!line.empty()) return line;
  auto scalars = [&line](const nlohmann::json& object) {
    if (!object.is_object()) return;
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (it->is_structured() || it->is_null()) continue;
      if (!line.empty()) line += ", ";
      line += it.key();
      line += ": ";
      line += it->is_string() ? markup_to_text(it->get<std::string>()) : it->dump();
    }
  };
  if (body.is_array()) {
    for (const auto& element : body) scalars(element);
  } else {
    scalars(body);
  }
  return line;
}

}  // namespace skype_etl::detail
