#include "core/identity.hpp"

#include <cstring>

namespace skype_etl::detail {
namespace {

constexpr std::string_view k_user_prefix = "8:";

constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

char lower_ascii(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool starts_with_ignoring_case(std::string_view s, std::string_view lower_prefix) noexcept {
  if (s.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i)
    if (lower_ascii(s[i]) != lower_prefix[i]) return false;
  return true;
}

/// "8:", "28:", "19:", ...: one or more ASCII digits, then ':'.
bool has_numeric_type(std::string_view id) noexcept {
  std::size_t i = 0;
  while (i < id.size() && is_digit(id[i])) ++i;
  return i > 0 && i < id.size() && id[i] == ':';
}

}  // namespace

std::string PersonId::str() const {
  std::string out;
  out.reserve(size());
  out.append(prefix);
  out.append(tail);
  return out;
}

PersonId parse_person_id(std::string_view raw) noexcept {
  std::string_view id = raw;
  while (!id.empty() && is_space(id.front())) id.remove_prefix(1);
  while (!id.empty() && is_space(id.back())) id.remove_suffix(1);
  if (starts_with_ignoring_case(id, "http://") || starts_with_ignoring_case(id, "https://"))
    id.remove_prefix(id.rfind('/') + 1);
  if (id.empty() || id == "*" || has_numeric_type(id) || id.compare(0, 6, "guest:") == 0)
    return {{}, id};
  return {k_user_prefix, id};
}

std::string canonical_person_id(std::string_view raw) {
  return parse_person_id(raw).str();
}

std::string_view canonical_person_id(std::string_view raw, TextArena& arena) {
  const PersonId id = parse_person_id(raw);
  if (id.in_place()) return id.tail;
  char* out = arena.allocate(id.size());
  std::memcpy(out, id.prefix.data(), id.prefix.size());
  std::memcpy(out + id.prefix.size(), id.tail.data(), id.tail.size());
  return arena.commit(out, id.size());
}

bool is_thread_id(std::string_view id) noexcept {
  return id.compare(0, 3, "19:") == 0;
}

}  // namespace skype_etl::detail
