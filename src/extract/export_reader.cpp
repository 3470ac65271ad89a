#include "extract/export_reader.hpp"

#include <simdjson.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "extract/json_error_position.hpp"
#include "extract/json_scanner.hpp"
#include "extract/media_index.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail {
namespace {

namespace od = simdjson::ondemand;

static_assert(input_padding >= simdjson::SIMDJSON_PADDING,
              "the input must carry simdjson's padding");

std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && is_json_space(s.back())) s.remove_suffix(1);
  return s;
}

/// The common spellings of versions and timestamps ("1671013838663", "1671013838663.0"),
/// which std::from_chars below would read exactly (at most 15 digits fit a double's 53
/// bits). False for anything else, which then takes the general path.
bool parse_plain_integer(std::string_view text, std::int64_t& out) noexcept {
  std::size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) i = 1;
  const std::size_t digits_begin = i;
  std::int64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    value = value * 10 + (text[i] - '0');
    ++i;
  }
  const std::size_t digits = i - digits_begin;
  if (digits == 0 || digits > 15) return false;
  if (i < text.size()) {  // only ".0", ".00", ... may follow
    if (text[i] != '.' || i + 1 == text.size()) return false;
    for (++i; i < text.size(); ++i)
      if (text[i] != '0') return false;
  }
  out = negative ? -value : value;
  return true;
}

/// Whether `s` (a view into the input) holds a backslash. Most strings are short, where a
/// call to memchr costs more than the search: with AVX2 they are checked 32 bytes at a
/// time, reading up to 31 bytes past `s`, which stays inside the input's padding.
bool has_backslash(std::string_view s) noexcept {
#ifdef __AVX2__
  const __m256i backslash = _mm256_set1_epi8('\\');
  for (std::size_t i = 0; i < s.size(); i += 32) {
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.data() + i));
    auto mask =
        static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, backslash)));
    if (s.size() - i < 32) mask &= (std::uint32_t{1} << (s.size() - i)) - 1;
    if (mask != 0) return true;
  }
  return false;
#else
  return s.find('\\') != std::string_view::npos;
#endif
}

/// simdjson's description of `err` without its closing period: " at byte N" follows it.
std::string json_error_text(simdjson::error_code err) {
  std::string text = simdjson::error_message(err);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

bool parse_int_text(std::string_view text, std::int64_t& out) noexcept {
  text = trim_right(text);
  if (text.empty()) return false;
  if (parse_plain_integer(text, out)) return true;
  double d = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(d) ||
      std::fabs(d) > 9.0e18)
    return false;
  out = static_cast<std::int64_t>(std::llround(d));
  return true;
}

}  // namespace

struct ExportReader::Impl {
  std::shared_ptr<InputSource> source;
  std::string_view json;
  std::string file;
  std::uint64_t base = 0;
  std::string offsets_of;  // what base + positions count bytes of (InputError::offset_of)
  ReaderOptions options;
  od::parser parser;
  od::parser side_parser;  // for values parsed while `parser` iterates a message
  // With with_media: the tar's media metadata, read once and shared by every batch.
  std::shared_ptr<const MediaIndex> media;

  // Where the containers an error may name as never closing open.
  std::size_t top_begin = 0;            // the top-level '{'
  std::size_t conversations_begin = 0;  // the '[' of "conversations"
  std::size_t conv_begin = 0;           // the current conversation's '{'
  std::size_t user_id_at = 0;           // the value of "userId"

  // Position of the next element in the conversations array (after '[' or ',').
  std::size_t conv_pos = 0;
  bool conversations_done = false;
  // The top-level object continues after the conversations array (processed in place).
  bool top_tail_pending = false;
  std::size_t conv_index = 0;

  // The conversation being read.
  std::shared_ptr<ConversationMeta> conv;
  bool conv_started = false;  // its first chunk has been emitted
  std::size_t msg_pos = 0;
  std::size_t list_end = 0;  // position of the MessageList's ']' (or msg_pos when none)
  std::uint32_t msg_index = 0;
  std::size_t msg_begin = 0;  // the '{' of message msg_index, for error messages
  // Where the messages of the last MessageList scanned lie (see skip_array_recording), and
  // the next one to use. Bounded: messages past the first max_message_spans are scanned
  // one by one.
  static constexpr std::size_t max_message_spans = std::size_t{1} << 16U;  // 1 MB
  std::vector<ElementSpan> message_spans;
  std::size_t next_span = 0;

  bool emitted_last = false;
  std::uint64_t export_sequence = 0;
  std::size_t batch_bytes = 0;  // of the input, spanned by the batch being filled

  /// Before reading a value of `size` bytes, which the reader, the transform and the load
  /// copy a few times over: the memory limit holds before those allocations, not after.
  /// `what()` names the value (called only for a large one).
  template <typename What>
  void check_value_memory(std::size_t size, const What& what) const {
    if (!options.memory || size < MemoryMonitor::large_allocation) return;
    options.memory->check_allocation(
        size * value_memory_factor,
        what() + " (" + std::to_string((size + (1U << 20U) - 1) >> 20U) + " MB)");
  }

  /// Throws the InputError for a problem at json[pos]: `pos` is the bad byte itself (see
  /// InputError::offset), never past the end of json.
  [[noreturn]] void fail(std::size_t pos, const std::string& problem,
                         const std::string& where = {}) const {
    throw InputError(file, problem, base + pos, where, offsets_of);
  }
  /// The data ends inside the container (or string) opening at `open`, which is the byte
  /// named: the end of the data is past the last byte, so it cannot be.
  [[noreturn]] void fail_truncated(std::size_t open, const std::string& what,
                                   const std::string& where = {}) const {
    fail(open, "truncated JSON: " + what + " never closes", where);
  }

  std::string where_conversation() const {
    std::string w = "conversation " + std::to_string(conv_index);
    if (conv && !conv->id.empty()) w += " (" + conv->id + ")";
    return w;
  }
  /// Context of a problem at json[at] in message `index` of the current conversation, which
  /// starts at json[start]: its start is named unless it is the byte reported.
  std::string where_message(std::uint32_t index, std::size_t start, std::size_t at) const {
    std::string w = where_conversation() + ", message " + std::to_string(index);
    if (at != start) w += ", which starts at byte " + std::to_string(base + start);
    return w;
  }
  std::string where_message(std::size_t at) const {
    return where_message(msg_index, msg_begin, at);
  }

  /// Where simdjson failed with `err` on the document json[begin, end); `doc` is null when
  /// it was never iterated (its iterator is then not to be asked).
  std::size_t error_at(simdjson::error_code err, od::document* doc, std::size_t begin,
                       std::size_t end) {
    return json_error_position(json, begin, end, err, stop_of(doc, json.data(), json.size()));
  }
  /// Where the iterator of `doc` (over `text`, `size` bytes) stands, or npos.
  static std::size_t stop_of(od::document* doc, const char* text, std::size_t size) {
    const char* at = nullptr;
    if (!doc || doc->current_location().get(at) != simdjson::SUCCESS || at < text ||
        at >= text + size)
      return std::string_view::npos;
    return static_cast<std::size_t>(at - text);
  }

  /// On the error path: the message of the MessageList whose first element is at or after
  /// `first` that holds json[position], as its index and start. False when `position` lies
  /// between messages.
  bool find_message(std::size_t first, std::size_t position, std::uint32_t& index,
                    std::size_t& start) const {
    std::size_t pos = skip_space(json, first);
    for (std::uint32_t i = 0; pos <= position && pos < json.size(); ++i) {
      std::size_t end = json.size();
      try {
        end = skip_value(json, pos, 3);
      } catch (const ScanError&) {  // the error being reported: it lies in this element
      }
      if (position < end) {
        index = i;
        start = pos;
        return true;
      }
      pos = skip_space(json, end);
      if (pos >= json.size() || json[pos] != ',') return false;
      pos = skip_space(json, pos + 1);
    }
    return false;
  }

  std::size_t scan_value(std::size_t pos, int depth, const std::string& where) const {
    try {
      return skip_value(json, pos, depth);
    } catch (const ScanError& e) {
      fail(e.position(), e.what(), where);
    }
  }
  /// scan_value inside the current message: the error context is built only on failure
  /// (building it for every value was most of the reader's time).
  std::size_t scan_message_value(std::size_t pos, int depth) const {
    try {
      return skip_value(json, pos, depth);
    } catch (const ScanError& e) {
      fail(e.position(), e.what(), where_message(e.position()));
    }
  }
  std::size_t scan_string(std::size_t pos, const std::string& where) const {
    try {
      return skip_string(json, pos);
    } catch (const ScanError& e) {
      fail(e.position(), e.what(), where);
    }
  }

  /// Parses json[begin, end) as a document of its own, in place.
  simdjson::error_code iterate(od::parser& p, std::size_t begin, std::size_t end,
                               od::document& doc) {
    return p.iterate(json.data() + begin, end - begin, end - begin + simdjson::SIMDJSON_PADDING)
        .get(doc);
  }

  /// The text of a scalar document (string unescaped; number/bool as written; null empty).
  std::string scalar_text(std::size_t begin, std::size_t end, const std::string& what,
                          const std::string& where, bool* is_null = nullptr) {
    od::document doc;
    simdjson::error_code err = iterate(side_parser, begin, end, doc);
    od::document* iterated = err ? nullptr : &doc;
    od::json_type type{};
    if (!err) err = doc.type().get(type);
    if (err)
      fail(error_at(err, iterated, begin, end),
           "invalid JSON in " + what + ": " + json_error_text(err), where);
    if (is_null) *is_null = false;
    switch (type) {
      case od::json_type::string: {
        std::string_view s;
        if ((err = doc.get_string().get(s)))
          fail(error_at(err, iterated, begin, end),
               "invalid string in " + what + ": " + json_error_text(err), where);
        return std::string(s);
      }
      case od::json_type::null:
        if (is_null) *is_null = true;
        return {};
      default:
        return std::string(trim_right(json.substr(begin, end - begin)));
    }
  }

  /// Checks a raw JSON value (object/array/scalar) that we keep as text is valid JSON.
  void validate_json(std::size_t begin, std::size_t end, const std::string& what,
                     const std::string& where) {
    // Only the UTF-8 and the brackets matter for keeping it verbatim: PostgreSQL's jsonb
    // input re-checks the grammar, and simdjson's DOM would cost a second parse.
    if (!simdjson::validate_utf8(json.data() + begin, end - begin))
      fail(json_error_position(json, begin, end, simdjson::UTF8_ERROR, std::string_view::npos),
           "invalid UTF-8 in " + what, where);
  }

  // ---- top level --------------------------------------------------------------------

  /// Walks the top-level keys from `pos`. Returns when the conversations array may be
  /// read in place (its '[' is at conv_pos - 1), or at the end of the object.
  void walk_top_level(std::size_t pos, bool after_value, ExportInfo& info, bool& have_user,
                      bool& have_date, bool& have_conversations, std::size_t& deferred) {
    const std::string where = "top-level object";
    while (true) {
      pos = skip_space(json, pos);
      if (after_value) {
        if (pos >= json.size()) fail_truncated(top_begin, "the top-level object");
        if (json[pos] == '}') {
          pos = skip_space(json, pos + 1);
          if (pos < json.size())
            fail(pos, "trailing data after the JSON document: " + describe_byte(json, pos));
          return;
        }
        if (json[pos] != ',')
          fail(pos, "invalid JSON: expected ',' or '}' in the top-level object, found " +
                        describe_byte(json, pos));
        pos = skip_space(json, pos + 1);
      } else if (pos < json.size() && json[pos] == '}') {
        pos = skip_space(json, pos + 1);
        if (pos < json.size())
          fail(pos, "trailing data after the JSON document: " + describe_byte(json, pos));
        return;
      }
      if (pos >= json.size()) fail_truncated(top_begin, "the top-level object");
      if (json[pos] != '"')
        fail(pos, "invalid JSON: expected a key in the top-level object, found " +
                      describe_byte(json, pos));
      const std::size_t key_end = scan_string(pos, where);
      const std::string_view key = json.substr(pos + 1, key_end - pos - 2);
      pos = skip_space(json, key_end);
      if (pos >= json.size()) fail_truncated(top_begin, "the top-level object");
      if (json[pos] != ':')
        fail(pos, "invalid JSON: expected ':' after key \"" + std::string(key) + "\", found " +
                      describe_byte(json, pos));
      pos = skip_space(json, pos + 1);
      if (pos >= json.size()) fail_truncated(top_begin, "the top-level object");
      after_value = true;
      if (key == "conversations") {
        if (json[pos] != '[')
          fail(pos, "wrong shape: \"conversations\" is not an array (found " +
                        describe_byte(json, pos) + ")");
        have_conversations = true;
        conversations_begin = pos;
        if (have_user && have_date) {
          conv_pos = pos + 1;  // read in place; the rest of the object is checked after it
          top_tail_pending = true;
          return;
        }
        deferred = pos + 1;
        pos = scan_value(pos, 1, "\"conversations\" array");
        continue;
      }
      const std::size_t end = scan_value(pos, 1, where);
      if (key == "userId") {
        bool is_null = false;
        info.user_id = scalar_text(pos, end, "userId", where, &is_null);
        have_user = true;
        user_id_at = pos;
      } else if (key == "exportDate") {
        info.export_date = scalar_text(pos, end, "exportDate", where);
        have_date = true;
      } else {
        validate_json(pos, end, "top-level key \"" + std::string(key) + "\"", where);
      }
      pos = end;
    }
  }

  // ---- conversations ----------------------------------------------------------------

  /// Moves past the element separator after a conversation; sets conversations_done at ']'.
  void after_conversation(std::size_t pos) {
    pos = skip_space(json, pos);
    if (pos >= json.size()) fail_truncated(conversations_begin, "the conversations array");
    if (json[pos] == ',') {
      conv_pos = pos + 1;
      return;
    }
    if (json[pos] != ']')
      fail(pos, "invalid JSON: expected ',' or ']' after conversation " +
                    std::to_string(conv_index) + ", found " + describe_byte(json, pos));
    conversations_done = true;
    if (top_tail_pending) {
      top_tail_pending = false;
      ExportInfo ignored;
      bool u = true, d = true, c = true;
      std::size_t deferred = 0;
      walk_top_level(pos + 1, true, ignored, u, d, c, deferred);
    }
  }

  /// Opens the conversation at conv_pos; false when the array has ended.
  bool open_conversation() {
    std::size_t pos = skip_space(json, conv_pos);
    if (pos >= json.size()) fail_truncated(conversations_begin, "the conversations array");
    if (json[pos] == ']') {
      // An empty array is fine; ']' right after a ',' is not JSON.
      if (json[conv_pos - 1] == ',') fail(pos, "invalid JSON: ']' after ',' in conversations");
      after_conversation(pos);
      return false;
    }
    conv = std::make_shared<ConversationMeta>();
    conv->index = conv_index;
    conv->offset = base + pos;
    conv_begin = pos;
    if (json[pos] != '{')
      fail(pos, "wrong shape: conversation " + std::to_string(conv_index) +
                    " is not an object (found " + describe_byte(json, pos) + ")");
    const std::string where = where_conversation();
    std::size_t list_begin = 0;
    list_end = 0;
    std::string extra;
    pos = skip_space(json, pos + 1);
    bool first = true;
    while (true) {
      if (pos >= json.size()) fail_truncated(conv_begin, "conversation", where_conversation());
      if (json[pos] == '}' && first) break;
      if (!first) {
        if (json[pos] == '}') break;
        if (json[pos] != ',')
          fail(pos,
               "invalid JSON: expected ',' or '}' in conversation, found " +
                   describe_byte(json, pos),
               where_conversation());
        pos = skip_space(json, pos + 1);
      }
      first = false;
      if (pos >= json.size()) fail_truncated(conv_begin, "conversation", where_conversation());
      if (json[pos] != '"')
        fail(pos, "invalid JSON: expected a key in conversation, found " + describe_byte(json, pos),
             where_conversation());
      const std::size_t key_end = scan_string(pos, where);
      const std::string_view key = json.substr(pos + 1, key_end - pos - 2);
      pos = skip_space(json, key_end);
      if (pos >= json.size()) fail_truncated(conv_begin, "conversation", where_conversation());
      if (json[pos] != ':')
        fail(pos, "invalid JSON: expected ':' after key, found " + describe_byte(json, pos),
             where_conversation());
      const std::size_t value = skip_space(json, pos + 1);
      if (value >= json.size()) fail_truncated(conv_begin, "conversation", where_conversation());
      std::size_t end = 0;
      if (key == "MessageList" && json[value] == '[') {
        // The scan that finds the list's end also notes where its messages lie, so that
        // read_messages need not scan each message again before parsing it.
        try {
          end = skip_array_recording(json, value, 2, message_spans, max_message_spans);
        } catch (const ScanError& e) {
          std::uint32_t index = 0;
          std::size_t start = 0;
          fail(e.position(), e.what(),
               find_message(value + 1, e.position(), index, start)
                   ? where_message(index, start, e.position())
                   : where_conversation());
        }
        next_span = 0;
      } else {
        end = scan_value(value, 2, where_conversation());
      }
      if (key == "MessageList") {
        if (json[value] == '[') {
          list_begin = value + 1;
          list_end = end - 1;
        } else if (json.compare(value, 4, "null") != 0) {
          fail(value,
               "wrong shape: \"MessageList\" is not an array (found " + describe_byte(json, value) +
                   ")",
               where_conversation());
        }
      } else {
        read_conversation_field(key, value, end, extra);
      }
      pos = skip_space(json, end);
    }
    after_conversation(pos + 1);
    if (!extra.empty()) conv->extra_json = "{" + extra + "}";
    msg_pos = list_begin;
    if (list_begin == 0) list_end = 0;
    msg_index = 0;
    conv_started = false;
    return true;
  }

  void read_conversation_field(std::string_view key, std::size_t begin, std::size_t end,
                               std::string& extra) {
    const std::string where = where_conversation();
    check_value_memory(end - begin, [&] { return where + ", \"" + std::string(key) + "\""; });
    if (key == "id") {
      conv->id = scalar_text(begin, end, "conversation id", where);
    } else if (key == "displayName") {
      bool is_null = false;
      std::string name = scalar_text(begin, end, "displayName", where, &is_null);
      if (!is_null) conv->display_name = std::move(name);
    } else if (key == "version") {
      std::int64_t v = 0;
      if (parse_int_text(scalar_text(begin, end, "version", where), v)) conv->version = v;
    } else if (key == "properties" && json[begin] == '{') {
      validate_json(begin, end, "properties", where);
      conv->properties_json.assign(json.data() + begin, end - begin);
    } else if (key == "threadProperties" && json[begin] == '{') {
      validate_json(begin, end, "threadProperties", where);
      conv->thread_properties_json.assign(json.data() + begin, end - begin);
      read_thread_properties(begin, end);
    } else if ((key == "properties" || key == "threadProperties") &&
               json.compare(begin, 4, "null") == 0) {
      // null: nothing to keep
    } else {
      validate_json(begin, end, "conversation key", where);
      const auto key_at = static_cast<std::size_t>(key.data() - json.data());
      if (const std::size_t bad = first_invalid_utf8(json, key_at, key_at + key.size());
          bad != std::string_view::npos)
        fail(bad, "invalid UTF-8 in a conversation key", where);
      if (!extra.empty()) extra += ',';
      extra += '"';
      extra += key;
      extra += "\":";
      extra.append(json.data() + begin, end - begin);
    }
  }

  void read_thread_properties(std::size_t begin, std::size_t end) {
    const std::string where = where_conversation() + ", threadProperties";
    od::document doc;
    simdjson::error_code err = iterate(side_parser, begin, end, doc);
    od::document* iterated = err ? nullptr : &doc;
    const auto fail_json = [&](const std::string& what) {
      fail(error_at(err, iterated, begin, end), what + json_error_text(err), where);
    };
    od::object object;
    if (!err) err = doc.get_object().get(object);
    if (err) fail_json("invalid JSON: ");
    for (auto field_result : object) {
      od::field field;
      if ((err = std::move(field_result).get(field))) fail_json("invalid JSON: ");
      std::string_view key;
      if ((err = field.unescaped_key().get(key))) fail_json("invalid JSON: ");
      od::value value = field.value();
      od::json_type type{};
      if ((err = value.type().get(type))) fail_json("invalid JSON: ");
      if (key == "topic" && type == od::json_type::string) {
        std::string_view topic;
        if (!value.get_string().get(topic)) conv->topic = std::string(topic);
      } else if (key == "members") {
        const char* start = value.raw_json_token().data();
        const auto at = static_cast<std::size_t>(start - json.data());
        if (type == od::json_type::string) {
          // A JSON array inside a string: parse the string's content as a document.
          std::string_view text;
          if ((err = value.get_string().get(text))) fail_json("invalid members string: ");
          decode_members(simdjson::padded_string(text), where, at, true);
        } else if (type == od::json_type::array) {
          const std::size_t stop = scan_value(at, 3, where);
          decode_members(simdjson::padded_string(json.substr(at, stop - at)), where, at, false);
        }
      }
    }
  }

  /// Members are strings ("8:alice") or objects ({"MemberMri": "8:alice", ...} or "id").
  /// `text` is a copy of the members value at json[at]: its raw bytes, or when `in_string`
  /// the decoded content of the string there, so that errors are mapped back to the file.
  void decode_members(const simdjson::padded_string& text, const std::string& where, std::size_t at,
                      bool in_string) {
    od::parser members_parser;
    od::document doc;
    simdjson::error_code err = members_parser.iterate(text).get(doc);
    od::document* iterated = err ? nullptr : &doc;
    const auto fail_json = [&](const std::string& what) {
      const std::string_view decoded(text.data(), text.size());
      const std::size_t in_text = json_error_position(decoded, 0, decoded.size(), err,
                                                      stop_of(iterated, text.data(), text.size()));
      fail(in_string ? raw_position_in_string(json, at, in_text) : at + in_text,
           what + json_error_text(err), where);
    };
    od::array array;
    if (!err) err = doc.get_array().get(array);
    // Not a JSON array: keep the raw threadProperties (already stored) and say so.
    if (err) fail_json("threadProperties.members is not a JSON array: ");
    for (auto element : array) {
      od::json_type type{};
      if ((err = element.type().get(type))) fail_json("invalid members array: ");
      if (type == od::json_type::string) {
        std::string_view id;
        if (!element.get_string().get(id)) conv->members.emplace_back(id);
      } else if (type == od::json_type::object) {
        od::object member;
        if ((err = element.get_object().get(member))) fail_json("invalid member object: ");
        for (auto f : member) {
          std::string_view key;
          if ((err = f.unescaped_key().get(key))) fail_json("invalid member object: ");
          if (key == "MemberMri" || key == "memberMri" || key == "id" || key == "mri") {
            std::string_view id;
            if (!f.value().get_string().get(id)) {
              conv->members.emplace_back(id);
              break;
            }
          }
        }
      }
    }
  }

  // ---- messages ---------------------------------------------------------------------

  /// Text of a message value: strings as views of the input when they hold no escape,
  /// else unescaped into the arena; numbers and booleans as written; null empty; objects
  /// and arrays as raw JSON.
  simdjson::error_code value_text(od::value& value, Batch& batch, std::string_view& out,
                                  od::json_type& type) {
    if (auto err = value.type().get(type)) return err;
    switch (type) {
      case od::json_type::string: {
        const std::string_view token = trim_right(value.raw_json_token());
        if (token.size() >= 2) {
          const std::string_view inner = token.substr(1, token.size() - 2);
          if (!has_backslash(inner)) {
            out = inner;
            return simdjson::SUCCESS;
          }
        }
        std::string_view s;
        if (auto err = value.get_string().get(s)) return err;
        out = batch.arena.store(s);
        return simdjson::SUCCESS;
      }
      case od::json_type::null:
        out = {};
        return simdjson::SUCCESS;
      case od::json_type::number: {
        out = trim_right(value.raw_json_token());
        double d = 0;
        return value.get_double().get(d);
      }
      case od::json_type::boolean: {
        out = trim_right(value.raw_json_token());
        bool b = false;
        return value.get_bool().get(b);
      }
      default:
        out = raw_value(value);
        return simdjson::SUCCESS;
    }
  }

  /// Raw JSON text of an (unconsumed) object or array value.
  std::string_view raw_value(od::value& value) {
    const char* start = value.raw_json_token().data();
    const auto at = static_cast<std::size_t>(start - json.data());
    const std::size_t stop = scan_message_value(at, 3);
    return json.substr(at, stop - at);
  }

  /// Reads a message's properties object; an error is returned for read_message to report
  /// (where simdjson stopped is known from the message's document).
  simdjson::error_code read_properties(od::value& value, Batch& batch, RawMessage& m) {
    m.properties_json = raw_value(value);
    od::object object;
    simdjson::error_code err = value.get_object().get(object);
    if (err) return err;
    for (auto field_result : object) {
      // Used in place: copying simdjson's field and value objects stalls on store
      // forwarding, which cost more than the rest of the message's walk.
      if ((err = field_result.error())) break;
      od::field& field = field_result.value_unsafe();
      std::string_view key;
      if ((err = field.unescaped_key().get(key))) break;
      od::value& v = field.value();
      od::json_type type{};
      std::string_view text;
      if (key == "edittime") {
        err = value_text(v, batch, m.edit_time, type);
      } else if (key == "deletetime") {
        err = value_text(v, batch, m.delete_time, type);
      } else if (key == "isserversidegenerated") {
        err = value_text(v, batch, text, type);
        m.is_server_generated = text == "true" || text == "True" || text == "TRUE" || text == "1";
      } else if (key == "emotions") {
        // An array, or in some exports a string holding one: kept as raw JSON either way
        // (the transform decodes both), after value_text has checked the string.
        const std::string_view token = trim_right(v.raw_json_token());
        err = value_text(v, batch, text, type);
        if (type == od::json_type::array || type == od::json_type::object) m.emotions_json = text;
        if (type == od::json_type::string) m.emotions_json = token;
      }
      if (err) break;
    }
    return err;
  }

  /// The key's text as written (escapes kept), from its first byte to its closing quote.
  /// simdjson has already matched `"key" : value`, so the closing quote is the last quote
  /// before the ':' that precedes the value: found by stepping back over whitespace, not by
  /// scanning the key.
  std::string_view raw_key(const char* key_start, od::value& value) const noexcept {
    const char* p = value.raw_json_token().data();
    do --p;
    while (is_json_space(*p));  // now at ':'
    do --p;
    while (is_json_space(*p));  // now at the closing quote
    return {key_start, static_cast<std::size_t>(p - key_start)};
  }

  void read_message(std::size_t begin, std::size_t end, Batch& batch, RawMessage& m) {
    od::document doc;
    simdjson::error_code err = iterate(parser, begin, end, doc);
    od::document* iterated = err ? nullptr : &doc;
    const char* in = "message";  // what held the error, for its message
    const auto fail_json = [&] {
      const std::size_t at = error_at(err, iterated, begin, end);
      fail(at, std::string("invalid JSON in ") + in + ": " + json_error_text(err),
           where_message(at));
    };
    od::object object;
    if (!err) err = doc.get_object().get(object);
    if (err) fail_json();
    std::string extra;
    for (auto field_result : object) {
      // Used in place: copying simdjson's field and value objects stalls on store
      // forwarding, which cost more than the rest of the message's walk.
      if ((err = field_result.error())) break;
      od::field& field = field_result.value_unsafe();
      const char* key_start = field.key().raw();
      od::value& value = field.value();
      const std::string_view key = raw_key(key_start, value);
      od::json_type type{};
      std::string_view text;
      if (key == "content") {
        err = value_text(value, batch, m.content, type);
      } else if (key == "id") {
        err = value_text(value, batch, m.id, type);
      } else if (key == "from") {
        err = value_text(value, batch, m.from, type);
      } else if (key == "messagetype") {
        err = value_text(value, batch, m.message_type, type);
      } else if (key == "originalarrivaltime") {
        err = value_text(value, batch, m.original_arrival_time, type);
      } else if (key == "displayName") {
        // "" is a name; null is none (the owner's messages carry null).
        err = value_text(value, batch, text, type);
        if (!err && type != od::json_type::null) m.display_name = text;
      } else if (key == "conversationid") {
        err = value_text(value, batch, m.conversation_id, type);
      } else if (key == "version") {
        err = value_text(value, batch, text, type);
        std::int64_t v = 0;
        if (!err && (type == od::json_type::number || type == od::json_type::string) &&
            parse_int_text(text, v))
          m.version = v;
      } else if (key == "properties" && value.type().get(type) == simdjson::SUCCESS &&
                 type == od::json_type::object) {
        in = "properties";
        err = read_properties(value, batch, m);
        if (!err) in = "message";
      } else if (key == "amsreferences" && value.type().get(type) == simdjson::SUCCESS &&
                 (type == od::json_type::array || type == od::json_type::null)) {
        if (type == od::json_type::array) m.ams_references_json = raw_value(value);
      } else if ((key == "properties") && value.type().get(type) == simdjson::SUCCESS &&
                 type == od::json_type::null) {
        // null properties: nothing to keep
      } else {
        // Unknown key (or a modelled key of an unexpected type): keep it verbatim.
        const char* start = value.raw_json_token().data();
        const auto at = static_cast<std::size_t>(start - json.data());
        const std::size_t stop = scan_message_value(at, 2);
        extra += extra.empty() ? "{\"" : ",\"";
        extra.append(key.data(), key.size());
        extra += "\":";
        extra.append(json.data() + at, stop - at);
      }
      if (err) break;
    }
    if (err) fail_json();
    if (!extra.empty()) {
      extra += '}';
      m.extra_json = batch.arena.store(extra);
    }
  }

  /// Reads messages of the current conversation into `batch` until it holds `limit`.
  /// Returns true when the conversation's MessageList is exhausted.
  bool read_messages(Batch& batch, std::size_t limit) {
    if (list_end == 0) return true;
    while (batch.raw.size() < limit && batch_bytes < options.batch_max_bytes) {
      std::size_t pos = skip_space(json, msg_pos);
      if (pos >= list_end) {
        if (msg_index > 0 && json[msg_pos - 1] == ',')
          fail(pos, "invalid JSON: ']' after ',' in MessageList", where_conversation());
        return true;
      }
      msg_begin = pos;
      if (json[pos] != '{')
        fail(pos, "wrong shape: message is not an object (found " + describe_byte(json, pos) + ")",
             where_message(pos));
      std::size_t end = 0;
      if (next_span < message_spans.size() && message_spans[next_span].begin == pos) {
        end = message_spans[next_span++].end;
      } else {
        next_span = message_spans.size();  // out of step: scan from here on
        end = scan_message_value(pos, 3);
      }
      batch_bytes += end - pos;
      check_value_memory(end - pos, [&] {
        return where_message(pos) + " at byte " + std::to_string(base + pos) +
               (offsets_of.empty() ? "" : " of " + offsets_of);
      });
      RawMessage& m = batch.raw.emplace_back();
      m.position = msg_index;
      m.offset = base + pos;
      read_message(pos, end, batch, m);
      ++msg_index;
      pos = skip_space(json, end);
      if (pos < list_end) {
        if (json[pos] != ',')  // msg_index has moved on: name the message before `pos`
          fail(pos,
               "invalid JSON: expected ',' or ']' after message, found " + describe_byte(json, pos),
               where_message(msg_index - 1, msg_begin, pos));
        ++pos;
      }
      msg_pos = pos;
    }
    return skip_space(json, msg_pos) >= list_end;
  }
};

ExportReader::ExportReader(std::shared_ptr<InputSource> source, std::size_t export_index,
                           ReaderOptions options)
    : m_impl(std::make_unique<Impl>()) {
  Impl& impl = *m_impl;
  impl.source = source;
  impl.json = source->json();
  impl.file = source->json_name();
  impl.base = source->json_offset();
  impl.offsets_of = source->json_offsets_of();
  impl.options = options;
  if (impl.options.batch_size == 0) impl.options.batch_size = 1;
  if (impl.options.with_media) impl.media = read_media_index(*source);
  if (impl.options.batch_max_bytes == 0) impl.options.batch_max_bytes = SIZE_MAX;

  auto info = std::make_shared<ExportInfo>();
  info->path = source->path();
  info->file_name = source->path().filename().string();
  info->kind = source->kind();
  info->file_size = source->file_size();
  info->index = export_index;

  std::size_t pos = 0;
  if (impl.json.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;
  pos = skip_space(impl.json, pos);
  if (pos >= impl.json.size() || impl.json[pos] != '{')
    impl.fail(pos, "wrong top-level shape: expected a JSON object");
  impl.top_begin = pos;
  bool have_user = false, have_date = false, have_conversations = false;
  std::size_t deferred = 0;
  impl.walk_top_level(pos + 1, false, *info, have_user, have_date, have_conversations, deferred);
  if (!have_conversations)
    impl.fail(impl.top_begin,
              "wrong top-level shape: no \"conversations\" array (is this a Skype "
              "messages.json?)");
  if (!impl.top_tail_pending) impl.conv_pos = deferred;
  // A missing key is the object's fault; an empty or null one, the value's.
  if (!have_user)
    impl.fail(impl.top_begin,
              "no \"userId\" in the top-level object: cannot tell whose export this is");
  if (info->user_id.empty())
    impl.fail(impl.user_id_at, "empty \"userId\": cannot tell whose export this is");
  // Hashing runs beside reading; the loader needs it only at the end of the export.
  info->digest = Digest(source->digest_async());
  m_info = std::move(info);
}

ExportReader::~ExportReader() = default;

const std::shared_ptr<const MediaIndex>& ExportReader::media() const noexcept {
  return m_impl->media;
}

BatchPtr ExportReader::next() {
  Impl& impl = *m_impl;
  if (impl.emitted_last) return nullptr;
  auto batch = std::make_shared<Batch>();
  batch->source = m_info;
  batch->input = impl.source;
  batch->media = impl.media;
  batch->export_sequence = impl.export_sequence++;
  const std::size_t limit = impl.options.batch_size;
  batch->raw.reserve(std::min<std::size_t>(limit, 4096));
  impl.batch_bytes = 0;
  while (batch->raw.size() < limit && batch->chunks.size() < limit &&
         impl.batch_bytes < impl.options.batch_max_bytes) {
    if (!impl.conv) {
      if (impl.conversations_done || !impl.open_conversation()) break;
    }
    ConversationChunk chunk;
    chunk.conversation = impl.conv;
    chunk.first_message = batch->raw.size();
    chunk.starts_conversation = !impl.conv_started;
    impl.conv_started = true;
    const bool done = impl.read_messages(*batch, limit);
    chunk.message_count = batch->raw.size() - chunk.first_message;
    chunk.ends_conversation = done;
    batch->chunks.push_back(std::move(chunk));
    if (done) {
      impl.conv.reset();
      ++impl.conv_index;
      ++m_conversations_read;
    }
  }
  m_messages_read += batch->raw.size();
  // Look ahead so the batch that ends the export says so.
  if (!impl.conv && !impl.conversations_done) {
    std::size_t pos = skip_space(impl.json, impl.conv_pos);
    if (pos < impl.json.size() && impl.json[pos] == ']') impl.after_conversation(pos);
  }
  if (!impl.conv && impl.conversations_done) {
    batch->last_of_export = true;
    impl.emitted_last = true;
    m_finished = true;
  }
  impl.source->release_before(impl.conv ? impl.msg_pos : impl.conv_pos);
  return batch;
}

}  // namespace skype_etl::detail
