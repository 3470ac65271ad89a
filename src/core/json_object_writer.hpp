// JSON written by hand into a std::string, without building nlohmann::json values: the
// transformer's details of every message and the json export's messages. A million
// messages' objects built and dumped through nlohmann::json took four times the CPU.
#pragma once

#include <string>
#include <string_view>

namespace skype_etl::detail {

/// Appends `text` to `out` as a JSON string (quotes included): `"` `\` and control
/// characters escaped (\n \r \t by name, the others as \u00XX, NUL too), invalid UTF-8
/// bytes written as U+FFFD. '<' and '&' are not escaped.
void append_json_string(std::string& out, std::string_view text);

/// Writes one object into a string, managing the commas: `{` when made, `}` at finish().
/// Values are appended after key(k), or through the helpers below. A nested object or
/// array is written into key(k)'s string (a JsonObjectWriter of its own for an object).
class JsonObjectWriter {
 public:
  explicit JsonObjectWriter(std::string& out) : m_out(out) { m_out.push_back('{'); }
  void finish() { m_out.push_back('}'); }

  /// Appends `"k":` (after a comma but for the first key) and returns the string to
  /// append the value to. `k` is a key of ours: ASCII needing no escaping.
  std::string& key(std::string_view k) {
    if (!m_first) m_out.push_back(',');
    m_first = false;
    m_out.push_back('"');
    m_out.append(k);
    m_out.append("\":");
    return m_out;
  }
  void str(std::string_view k, std::string_view v) { append_json_string(key(k), v); }
  /// str(k, v) unless `v` is empty.
  void str_if(std::string_view k, std::string_view v) {
    if (!v.empty()) str(k, v);
  }
  void boolean(std::string_view k, bool v) { key(k).append(v ? "true" : "false"); }
  /// `json`, text that is JSON already, as the value.
  void raw(std::string_view k, std::string_view json) { key(k).append(json); }

 private:
  std::string& m_out;
  bool m_first = true;
};

}  // namespace skype_etl::detail
