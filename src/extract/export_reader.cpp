#include "extract/export_reader.hpp"

#include <simdjson.h>

#include "core/cpu.hpp"
#ifdef SKYPE_ETL_X86_DISPATCH
#include <immintrin.h>
#endif

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <vector>

#include "core/identity.hpp"
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
    // More digits than a double holds exactly: the general path decides (and accumulating
    // them would overflow from the 19th on).
    if (i - digits_begin == 15) return false;
    value = value * 10 + (text[i] - '0');
    ++i;
  }
  const std::size_t digits = i - digits_begin;
  if (digits == 0) return false;
  if (i < text.size()) {  // only ".0", ".00", ... may follow
    if (text[i] != '.' || i + 1 == text.size()) return false;
    for (++i; i < text.size(); ++i)
      if (text[i] != '0') return false;
  }
  out = negative ? -value : value;
  return true;
}

#ifdef SKYPE_ETL_X86_DISPATCH
/// has_backslash with AVX2.
SKYPE_ETL_TARGET_AVX2 bool has_backslash_avx2(std::string_view s) noexcept {
  const __m256i backslash = _mm256_set1_epi8('\\');
  for (std::size_t i = 0; i < s.size(); i += 32) {
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.data() + i));
    auto mask =
        static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, backslash)));
    if (s.size() - i < 32) mask &= (std::uint32_t{1} << (s.size() - i)) - 1;
    if (mask != 0) return true;
  }
  return false;
}
#endif

/// Whether `s` (a view into the input) holds a backslash. Most strings are short, where a
/// call to memchr costs more than the search: with AVX2 they are checked 32 bytes at a
/// time, reading up to 31 bytes past `s`, which stays inside the input's padding.
bool has_backslash(std::string_view s) noexcept {
#ifdef SKYPE_ETL_X86_DISPATCH
  if (cpu_has_avx2()) return has_backslash_avx2(s);
#endif
  return s.find('\\') != std::string_view::npos;
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

/// What a JSON value is, from its first byte, for messages about a value of the wrong type.
const char* kind_of_value(char first) noexcept {
  switch (first) {
    case '"':
      return "a string";
    case '{':
      return "an object";
    case '[':
      return "an array";
    case 'n':
      return "null";
    case 't':
    case 'f':
      return "a boolean";
    default:
      return "a number";
  }
}

/// The problem with a version `text` (of a value whose first byte is `first`) that is not a
/// number within +-9e18: stored as NULL, it would lose the order of a message's versions.
std::string bad_version(std::string_view text, char first) {
  std::string found;
  if (first == '"')
    found = skype_etl::quoted(text);
  else if (first == '-' || (first >= '0' && first <= '9'))
    found = printable(text, 40);
  else
    found = kind_of_value(first);
  return "\"version\" is not a number within +-9e18 (found " + found + ")";
}

/// Why `id` (unescaped) cannot be an identifier, or nullptr: see max_id_bytes. Ids are
/// keys: one cut short or merged with another by the database would merge records.
const char* bad_id(std::string_view id) noexcept {
  if (id.empty()) return "is empty";
  static_assert(max_id_bytes == 512, "the message below names the limit");
  if (id.size() > max_id_bytes) return "is longer than 512 bytes";
  for (const char c : id)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return "holds a control character";
  return nullptr;
}

/// Whether `token` (a JSON number as written) is a positive integer in plain digits: the
/// only number taken as a message id (see read_message).
bool is_plain_positive_integer(std::string_view token) noexcept {
  if (token.empty() || token.size() > 20 || token[0] == '0') return false;
  for (const char c : token)
    if (c < '0' || c > '9') return false;
  return true;
}

/// The known key that `key` (none of them) spells with damage, or empty: one with the same
/// letters and digits, compared without case, anything else left out ("MessageList\u0000",
/// "message_list", "ID"). Such a key would make its field vanish (a conversation without its
/// messages), so the reader refuses it rather than keep it as an unknown one.
template <std::size_t N>
std::string_view damaged_spelling_of(std::string_view key, const std::string_view (&known)[N]) {
  const auto fold = [](std::string_view text) {
    std::string out;
    for (const char c : text) {
      if (c >= 'A' && c <= 'Z') out += static_cast<char>(c - 'A' + 'a');
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) out += c;
    }
    return out;
  };
  const std::string folded = fold(key);
  if (folded.empty()) return {};
  for (const std::string_view k : known)
    if (fold(k) == folded) return k;
  return {};
}

constexpr std::string_view top_level_keys[] = {"userId", "exportDate", "conversations"};
constexpr std::string_view conversation_keys[] = {"id",         "displayName",      "version",
                                                  "properties", "threadProperties", "MessageList"};
constexpr std::string_view message_keys[] = {
    "id",         "displayName",  "originalarrivaltime", "messagetype",
    "version",    "content",      "conversationid",      "from",
    "properties", "amsreferences"};

constexpr unsigned unknown_key = 99;

/// The index of `key` in message_keys, or unknown_key: by its length, then one comparison.
inline unsigned message_key_index(std::string_view key) noexcept {
  switch (key.size()) {
    case 2:
      return key == "id" ? 0 : unknown_key;
    case 4:
      return key == "from" ? 7 : unknown_key;
    case 7:
      return key == "content" ? 5 : key == "version" ? 4 : unknown_key;
    case 10:
      return key == "properties" ? 8 : unknown_key;
    case 11:
      return key == "displayName" ? 1 : key == "messagetype" ? 3 : unknown_key;
    case 13:
      return key == "amsreferences" ? 9 : unknown_key;
    case 14:
      return key == "conversationid" ? 6 : unknown_key;
    case 19:
      return key == "originalarrivaltime" ? 2 : unknown_key;
    default:
      return unknown_key;
  }
}

/// A scanner's problem said of `what` ("properties", "a conversation key"): "invalid JSON:
/// x" becomes "invalid JSON in <what>: x", "invalid UTF-8" "invalid UTF-8 in <what>".
std::string scan_problem(const ScanError& e, const std::string& what) {
  std::string problem = e.what();
  if (what.empty()) return problem;
  constexpr std::string_view json = "invalid JSON: ";
  if (problem.compare(0, json.size(), json) == 0)
    return "invalid JSON in " + what + ": " + problem.substr(json.size());
  if (problem == "invalid UTF-8") return "invalid UTF-8 in " + what;
  return problem;
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

  // The top-level object, walked in two parts when the conversations array is read in place
  // (see walk_top_level).
  bool have_user = false;
  bool have_date = false;
  bool have_conversations = false;
  std::vector<std::string> top_unknown_keys;  // unescaped, to refuse one given twice
  std::string top_extra;                      // the unknown members, "key":value joined by ','

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
    if (conv && !conv->id.empty()) w += " (" + printable(conv->id, 64) + ")";
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

  /// Where an error lies, for its message: `*text`, or when `text` is null the current
  /// conversation, whose description (where_conversation) is built only when an error is
  /// reported.
  struct Where {
    const std::string* text = nullptr;
  };
  std::string where_of(const Where& where) const {
    return where.text ? *where.text : where_conversation();
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
        end = find_value_end(json, pos, 3);
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

  /// The end of the value at `pos`, validated (skip_value); errors say they are in `what`
  /// when it is given.
  std::size_t scan_value(std::size_t pos, int depth, const Where& where,
                         std::string_view what = {}) const {
    try {
      return skip_value(json, pos, depth);
    } catch (const ScanError& e) {
      fail(e.position(), scan_problem(e, std::string(what)), where_of(where));
    }
  }
  /// The end of the value at `pos`, not validated (find_value_end): for what is validated
  /// when it is read.
  std::size_t find_end(std::size_t pos, int depth, const Where& where) const {
    try {
      return find_value_end(json, pos, depth);
    } catch (const ScanError& e) {
      fail(e.position(), e.what(), where_of(where));
    }
  }
  /// scan_value inside the current message: the error context is built only on failure
  /// (building it for every value was most of the reader's time).
  std::size_t scan_message_value(std::size_t pos, int depth, const char* what = "message") const {
    try {
      return skip_value(json, pos, depth);
    } catch (const ScanError& e) {
      fail(e.position(), scan_problem(e, what), where_message(e.position()));
    }
  }
  /// A key at json[pos] (its opening quote), validated: returns its end, and in `key` its
  /// text, unescaped (into `storage` when it holds an escape).
  std::size_t scan_key(std::size_t pos, const char* what, const Where& where, std::string& storage,
                       std::string_view& key) {
    std::size_t end = 0;
    try {
      end = skip_string(json, pos);
    } catch (const ScanError& e) {
      fail(e.position(), scan_problem(e, what), where_of(where));
    }
    key = json.substr(pos + 1, end - pos - 2);
    if (has_backslash(key)) {
      storage = scalar_text(pos, end, what, where);
      key = storage;
    }
    return end;
  }

  /// Parses json[begin, end) as a document of its own, in place.
  simdjson::error_code iterate(od::parser& p, std::size_t begin, std::size_t end,
                               od::document& doc) {
    return p.iterate(json.data() + begin, end - begin, end - begin + simdjson::SIMDJSON_PADDING)
        .get(doc);
  }

  /// The text of a scalar document (string unescaped; number/bool as written; null empty).
  std::string scalar_text(std::size_t begin, std::size_t end, std::string_view what,
                          const Where& where, bool* is_null = nullptr) {
    od::document doc;
    simdjson::error_code err = iterate(side_parser, begin, end, doc);
    od::document* iterated = err ? nullptr : &doc;
    od::json_type type{};
    if (!err) err = doc.type().get(type);
    if (err)
      fail(error_at(err, iterated, begin, end),
           "invalid JSON in " + std::string(what) + ": " + json_error_text(err), where_of(where));
    if (is_null) *is_null = false;
    switch (type) {
      case od::json_type::string: {
        std::string_view s;
        if ((err = doc.get_string().get(s)))
          fail(error_at(err, iterated, begin, end),
               "invalid string in " + std::string(what) + ": " + json_error_text(err),
               where_of(where));
        return std::string(s);
      }
      case od::json_type::null:
        if (is_null) *is_null = true;
        return {};
      default:
        return std::string(trim_right(json.substr(begin, end - begin)));
    }
  }

  /// An identifier's text (see bad_id) from the JSON string at json[begin, end): refuses
  /// other types and bad ids, naming `what` ("conversation id"). Reads at most what an id may
  /// take, so that a huge one costs nothing.
  std::string id_text(std::size_t begin, std::size_t end, const std::string& what,
                      const Where& where) {
    if (json[begin] != '"')
      fail(begin, what + " is " + kind_of_value(json[begin]) + ": expected a string",
           where_of(where));
    // An escape takes at most 6 bytes for each byte it gives: longer text cannot fit.
    if (end - begin > 6 * max_id_bytes + 2)
      fail(begin,
           what + " is longer than " + std::to_string(max_id_bytes) + " bytes (" +
               std::to_string(end - begin) + " bytes as written)",
           where_of(where));
    std::string id = scalar_text(begin, end, what, where);
    if (const char* why = bad_id(id))
      fail(begin, what + " " + skype_etl::quoted(id) + " " + why, where_of(where));
    return id;
  }

  // ---- top level --------------------------------------------------------------------

  /// Walks the top-level keys from `pos` (after the '{', or with `after_value` after a
  /// member). Returns when the conversations array may be read in place (its '[' is at
  /// conv_pos - 1: the rest of the object is walked once it is read, by after_conversation),
  /// or at the end of the object. Every key is checked as it comes, wherever it comes: one
  /// given twice (a second "conversations" would be read as nothing but the end of the
  /// object) or damaged is refused; unknown ones are kept in top_extra.
  void walk_top_level(std::size_t pos, bool after_value, ExportInfo& info, std::size_t& deferred) {
    static const std::string top_level = "top-level object";
    static const std::string conversations_array = "\"conversations\" array";
    const Where where{&top_level};
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
      const std::size_t key_at = pos;
      std::string key_storage;
      std::string_view key;
      const std::size_t key_end = scan_key(pos, "a top-level key", where, key_storage, key);
      pos = skip_space(json, key_end);
      if (pos >= json.size()) fail_truncated(top_begin, "the top-level object");
      if (json[pos] != ':')
        fail(pos, "invalid JSON: expected ':' after key " + skype_etl::quoted(key) + ", found " +
                      describe_byte(json, pos));
      pos = skip_space(json, pos + 1);
      if (pos >= json.size()) fail_truncated(top_begin, "the top-level object");
      after_value = true;
      const auto refuse_duplicate = [&](bool seen) {
        if (seen)
          fail(key_at, "duplicate key " + skype_etl::quoted(key) + " in the top-level object",
               top_level);
      };
      if (key == "conversations") {
        refuse_duplicate(have_conversations);
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
        // Found before userId and exportDate: only its end is needed now; it is read (and
        // validated) from deferred once the header is known.
        deferred = pos + 1;
        pos = find_end(pos, 1, Where{&conversations_array});
        continue;
      }
      const std::size_t end = scan_value(pos, 1, where,
                                         key == "userId" || key == "exportDate"
                                             ? std::string(key)
                                             : "top-level key " + skype_etl::quoted(key));
      if (key == "userId") {
        refuse_duplicate(have_user);
        if (json[pos] != '"' && json[pos] != 'n')
          fail(pos,
               std::string("\"userId\" is ") + kind_of_value(json[pos]) + ": expected a string",
               top_level);
        info.user_id = scalar_text(pos, end, "userId", where);
        have_user = true;
        user_id_at = pos;
      } else if (key == "exportDate") {
        refuse_duplicate(have_date);
        info.export_date = scalar_text(pos, end, "exportDate", where);
        have_date = true;
      } else {
        keep_unknown_key(key, key_at, key_end, pos, end, top_level_keys, "the top-level object",
                         where, top_unknown_keys, top_extra);
      }
      pos = end;
    }
  }

  /// Keeps the member with key `key` (written at json[key_at, key_end)) and value
  /// json[begin, end), both validated, in `extra` ("key":value joined by ','), unless the key
  /// spells a known one with damage or came before in the object (`seen`).
  template <std::size_t N>
  void keep_unknown_key(std::string_view key, std::size_t key_at, std::size_t key_end,
                        std::size_t begin, std::size_t end, const std::string_view (&known)[N],
                        const char* in, const Where& where, std::vector<std::string>& seen,
                        std::string& extra) const {
    if (const std::string_view meant = damaged_spelling_of(key, known); !meant.empty())
      fail(key_at,
           "damaged key " + skype_etl::quoted(key) + " in " + in + ": it spells \"" +
               std::string(meant) + "\" with other characters, and the field would be lost",
           where_of(where));
    if (std::find(seen.begin(), seen.end(), key) != seen.end())
      fail(key_at, "duplicate key " + skype_etl::quoted(key) + " in " + in, where_of(where));
    seen.emplace_back(key);
    append_member(extra, key_at, key_end, begin, end);
  }

  /// Appends `"key":value` as written (json[key_at, key_end) and json[begin, end)) to
  /// `extra`, after a ',' unless it is empty.
  void append_member(std::string& extra, std::size_t key_at, std::size_t key_end, std::size_t begin,
                     std::size_t end) const {
    if (!extra.empty()) extra += ',';
    extra.append(json.data() + key_at, key_end - key_at);
    extra += ':';
    extra.append(json.data() + begin, end - begin);
  }

  /// The owner's id names the account every row is stored under: it must name one.
  void check_user_id(const std::string& user_id) const {
    const std::string where = "top-level object";
    if (user_id.empty())
      fail(user_id_at, "empty \"userId\": cannot tell whose export this is", where);
    if (const char* why = bad_id(user_id))
      fail(user_id_at, "\"userId\" " + skype_etl::quoted(user_id) + " " + why, where);
    const std::string account = canonical_person_id(user_id);
    if (account.empty() || account == "*" || account.back() == ':')
      fail(user_id_at,
           "\"userId\" " + skype_etl::quoted(user_id) +
               " names no account: cannot tell whose export this is",
           where);
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
      ExportInfo ignored;  // userId and exportDate are known: given again, they are refused
      std::size_t deferred = 0;
      walk_top_level(pos + 1, true, ignored, deferred);
    }
  }

  /// The conversations array's ']' is at `pos` (next after conv_pos). An empty array is
  /// fine; ']' right after a ',' is not JSON.
  void close_conversations(std::size_t pos) {
    if (json[conv_pos - 1] == ',') fail(pos, "invalid JSON: ']' after ',' in conversations");
    after_conversation(pos);
  }

  /// Opens the conversation at conv_pos; false when the array has ended.
  bool open_conversation() {
    std::size_t pos = skip_space(json, conv_pos);
    if (pos >= json.size()) fail_truncated(conversations_begin, "the conversations array");
    if (json[pos] == ']') {
      close_conversations(pos);
      return false;
    }
    conv = std::make_shared<ConversationMeta>();
    conv->index = conv_index;
    conv->offset = base + pos;
    conv_begin = pos;
    if (json[pos] != '{')
      fail(pos, "wrong shape: conversation " + std::to_string(conv_index) +
                    " is not an object (found " + describe_byte(json, pos) + ")");
    std::size_t list_begin = 0;
    list_end = 0;
    std::string extra;
    std::vector<std::string> unknown_keys;
    unsigned seen = 0;  // bit i: conversation_keys[i] has come
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
      const std::size_t key_at = pos;
      std::string key_storage;
      std::string_view key;
      const std::size_t key_end = scan_key(pos, "a conversation key", Where{}, key_storage, key);
      pos = skip_space(json, key_end);
      if (pos >= json.size()) fail_truncated(conv_begin, "conversation", where_conversation());
      if (json[pos] != ':')
        fail(pos, "invalid JSON: expected ':' after key, found " + describe_byte(json, pos),
             where_conversation());
      const std::size_t value = skip_space(json, pos + 1);
      if (value >= json.size()) fail_truncated(conv_begin, "conversation", where_conversation());
      const auto* const known =
          std::find(std::begin(conversation_keys), std::end(conversation_keys), key);
      const bool is_known = known != std::end(conversation_keys);
      if (is_known) {
        const unsigned bit = 1U << static_cast<unsigned>(known - std::begin(conversation_keys));
        if (seen & bit)
          fail(key_at, "duplicate key " + skype_etl::quoted(key) + " in conversation",
               where_conversation());
        seen |= bit;
      }
      std::size_t end = 0;
      if (key == "MessageList" && json[value] == '[') {
        // The scan that finds the list's end also notes where its messages lie, so that
        // read_messages need not scan each message again before parsing it. It validates
        // nothing: each message is, as it is read.
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
        try {
          end = skip_value(json, value, 2);
        } catch (const ScanError& e) {
          fail(e.position(),
               scan_problem(e, key == "id" ? std::string("conversation id")
                               : is_known  ? "\"" + std::string(key) + "\""
                                           : "conversation key " + skype_etl::quoted(key)),
               where_conversation());
        }
      }
      if (key != "MessageList")
        check_value_memory(end - value,
                           [&] { return where_conversation() + ", " + skype_etl::quoted(key); });
      if (key == "MessageList") {
        if (json[value] == '[') {
          list_begin = value + 1;
          list_end = end - 1;
        } else if (json[value] != 'n') {  // null: no messages (validated by scan_value)
          fail(value,
               "wrong shape: \"MessageList\" is not an array (found " + describe_byte(json, value) +
                   ")",
               where_conversation());
        }
      } else if (is_known) {
        if (!read_conversation_field(key, value, end))
          append_member(extra, key_at, key_end, value, end);
      } else {
        keep_unknown_key(key, key_at, key_end, value, end, conversation_keys, "conversation",
                         Where{}, unknown_keys, extra);
      }
      pos = skip_space(json, end);
    }
    // Without its id the conversation would merge with every other one without; without its
    // MessageList (a damaged key) its messages would be lost without a word.
    if (!(seen & 1U)) fail(conv_begin, "conversation has no \"id\"", where_conversation());
    if (!(seen & (1U << 5U)))
      fail(conv_begin, "conversation has no \"MessageList\" (null for none)", where_conversation());
    after_conversation(pos + 1);
    if (!extra.empty()) conv->extra_json = "{" + extra + "}";
    msg_pos = list_begin;
    if (list_begin == 0) list_end = 0;
    msg_index = 0;
    conv_started = false;
    return true;
  }

  /// A known key of the conversation (MessageList apart) with its value json[begin, end),
  /// validated. False when the value is not of the key's type and is to be kept in extra
  /// as it is (properties or threadProperties neither an object nor null).
  bool read_conversation_field(std::string_view key, std::size_t begin, std::size_t end) {
    const Where where;  // the conversation
    if (key == "id") {
      conv->id = id_text(begin, end, "conversation id", where);
    } else if (key == "displayName") {
      bool is_null = false;
      std::string name = scalar_text(begin, end, "displayName", where, &is_null);
      if (!is_null) conv->display_name = std::move(name);
    } else if (key == "version") {
      const std::string text = json[begin] == '"'
                                   ? scalar_text(begin, end, "version", where)
                                   : std::string(trim_right(json.substr(begin, end - begin)));
      if (json[begin] != 'n') {
        const char first = json[begin];
        std::int64_t v = 0;
        if ((first != '"' && first != '-' && (first < '0' || first > '9')) ||
            !parse_int_text(text, v))
          fail(begin, bad_version(text, first), where_of(where));
        conv->version = v;
      }
    } else if (key == "properties" || key == "threadProperties") {
      if (json[begin] == 'n') return true;
      if (json[begin] != '{') return false;
      if (key == "properties") {
        conv->properties_json.assign(json.data() + begin, end - begin);
      } else {
        conv->thread_properties_json.assign(json.data() + begin, end - begin);
        read_thread_properties(begin, end);
      }
    }
    return true;
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
        if ((err = value.get_string().get(topic))) fail_json("invalid topic: ");
        conv->topic = std::string(topic);
      } else if (key == "members") {
        const char* start = value.raw_json_token().data();
        const auto at = static_cast<std::size_t>(start - json.data());
        if (type == od::json_type::string) {
          // A JSON array inside a string: parse the string's content as a document.
          std::string_view text;
          if ((err = value.get_string().get(text))) fail_json("invalid members string: ");
          decode_members(simdjson::padded_string(text), where, at, true);
        } else if (type == od::json_type::array) {
          const std::size_t stop = scan_value(at, 3, Where{&where});
          decode_members(simdjson::padded_string(json.substr(at, stop - at)), where, at, false);
        }
      }
    }
  }

  /// Members are strings ("8:alice") or objects ({"MemberMri": "8:alice", ...} or "id").
  /// `text` is a copy of the members value at json[at]: its raw bytes, or when `in_string`
  /// the decoded content of the string there, so that errors are mapped back to the file.
  /// All of it is validated, what is skipped too; member ids are bounded like other ids
  /// (max_id_bytes, no control characters).
  void decode_members(const simdjson::padded_string& text, const std::string& where, std::size_t at,
                      bool in_string) {
    const std::string_view decoded(text.data(), text.size());
    const auto in_file = [&](std::size_t in_text) {
      return in_string ? raw_position_in_string(json, at, in_text) : at + in_text;
    };
    const std::size_t first = skip_space(decoded, 0);
    if (first >= decoded.size() || decoded[first] != '[')
      fail(in_file(first < decoded.size() ? first : 0),
           "threadProperties.members is not a JSON array (found " + describe_byte(decoded, first) +
               ")",
           where);
    try {
      const std::size_t end = skip_space(decoded, skip_value(decoded, first, 3));
      if (end < decoded.size())
        throw ScanError(
            end, "invalid JSON: trailing data after the array: " + describe_byte(decoded, end));
    } catch (const ScanError& e) {
      fail(in_file(e.position()), scan_problem(e, "members array"), where);
    }
    od::parser members_parser;
    od::document doc;
    simdjson::error_code err = members_parser.iterate(text).get(doc);
    od::document* iterated = err ? nullptr : &doc;
    const auto fail_json = [&](const std::string& what) {
      const std::size_t in_text = json_error_position(decoded, 0, decoded.size(), err,
                                                      stop_of(iterated, text.data(), text.size()));
      fail(in_file(in_text), what + json_error_text(err), where);
    };
    const auto add = [&](od::value& value, std::string_view id) {
      if (id.empty()) return;
      if (const char* why = bad_id(id)) {
        const std::size_t in_text =
            static_cast<std::size_t>(value.raw_json_token().data() - text.data());
        fail(in_file(in_text), "member id " + skype_etl::quoted(id) + " " + why, where);
      }
      conv->members.emplace_back(id);
    };
    od::array array;
    if (!err) err = doc.get_array().get(array);
    if (err) fail_json("invalid members array: ");
    for (auto element_result : array) {
      od::value element;
      if ((err = std::move(element_result).get(element))) fail_json("invalid members array: ");
      od::json_type type{};
      if ((err = element.type().get(type))) fail_json("invalid members array: ");
      if (type == od::json_type::string) {
        std::string_view id;
        if ((err = element.get_string().get(id))) fail_json("invalid members array: ");
        add(element, id);
      } else if (type == od::json_type::object) {
        od::object member;
        if ((err = element.get_object().get(member))) fail_json("invalid member object: ");
        for (auto f : member) {
          std::string_view key;
          if ((err = f.unescaped_key().get(key))) fail_json("invalid member object: ");
          if (key == "MemberMri" || key == "memberMri" || key == "id" || key == "mri") {
            od::value v = f.value();
            std::string_view id;
            if (!v.get_string().get(id)) {
              add(v, id);
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
        return check_null(value);
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

  /// SUCCESS when the value simdjson typed as null (from its 'n') is the literal null.
  static simdjson::error_code check_null(od::value& value) {
    bool is_null = false;
    return value.is_null().get(is_null) || !is_null ? simdjson::N_ATOM_ERROR : simdjson::SUCCESS;
  }

  /// Raw JSON text of an (unconsumed) object or array value, validated.
  std::string_view raw_value(od::value& value, const char* what = "message") {
    const char* start = value.raw_json_token().data();
    const auto at = static_cast<std::size_t>(start - json.data());
    const std::size_t stop = scan_message_value(at, 3, what);
    return json.substr(at, stop - at);
  }

  /// Reads a message's properties object; an error is returned for read_message to report
  /// (where simdjson stopped is known from the message's document).
  simdjson::error_code read_properties(od::value& value, Batch& batch, RawMessage& m) {
    // Kept verbatim (and loaded as jsonb): all of it is validated, not only what is read.
    m.properties_json = raw_value(value, "properties");
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

  /// Appends the member `"raw_key":value` (the key as written, the value validated) to the
  /// message's `extra`, opening the object when it is empty.
  void keep_in_extra(std::string& extra, std::string_view raw_key, od::value& value) const {
    const std::size_t at = position_of(value);
    const std::size_t stop = scan_message_value(at, 2);
    extra += extra.empty() ? "{\"" : ",\"";
    extra.append(raw_key.data(), raw_key.size());
    extra += "\":";
    extra.append(json.data() + at, stop - at);
  }

  /// Where `value` (of the message being read) starts in json.
  std::size_t position_of(od::value& value) const noexcept {
    return static_cast<std::size_t>(value.raw_json_token().data() - json.data());
  }

  /// An id-like field of a message (`from`, `messagetype`, `conversationid`) read as `text`
  /// of type `type`: a string, number or null, at most max_id_bytes (they are index keys).
  void check_id_field(std::string_view text, od::json_type type, od::value& value,
                      const char* name) const {
    if (text.size() > max_id_bytes ||
        (type != od::json_type::string && type != od::json_type::null &&
         type != od::json_type::number))
      refuse_id_field(text, value, name);
  }
  [[noreturn]] __attribute__((noinline, cold)) void refuse_id_field(std::string_view text,
                                                                    od::value& value,
                                                                    const char* name) const {
    const std::size_t at = position_of(value);
    if (text.size() <= max_id_bytes)
      fail(at, std::string(name) + " is " + kind_of_value(json[at]) + ": expected a string",
           where_message(at));
    fail(at,
         std::string(name) + " is longer than " + std::to_string(max_id_bytes) + " bytes (" +
             std::to_string(text.size()) + ")",
         where_message(at));
  }

  /// A message's id: a string (see bad_id), or a number written as a positive integer in
  /// plain digits, taken as those digits. Real exports write numeric strings
  /// ("1630565395224"); a number is accepted because its digits are the same id, but 0,
  /// negatives, fractions and exponents are no Skype id (and 1e3 and 1000 would be one id
  /// spelled twice), and null, objects, arrays and booleans would all become the same text.
  simdjson::error_code read_message_id(od::value& value, Batch& batch, RawMessage& m) {
    od::json_type type{};
    if (auto err = value.type().get(type)) return err;
    if (type == od::json_type::string) {
      if (auto err = value_text(value, batch, m.id, type)) return err;
      // A view of the input holds no control character (simdjson refuses them unescaped):
      // only an unescaped id needs bad_id's look at each of its bytes.
      const bool view = m.id.data() >= json.data() && m.id.data() < json.data() + json.size();
      if ((m.id.empty() || m.id.size() > max_id_bytes || !view) && bad_id(m.id))
        refuse_message_id(value, m.id);
    } else if (type == od::json_type::number) {
      m.id = trim_right(value.raw_json_token());
      if (!is_plain_positive_integer(m.id)) refuse_message_id(value, m.id);
    } else {
      refuse_message_id(value, {});
    }
    return simdjson::SUCCESS;
  }
  [[noreturn]] __attribute__((noinline, cold)) void refuse_message_id(od::value& value,
                                                                      std::string_view id) const {
    const std::size_t at = position_of(value);
    const char first = json[at];
    if (first == '"')
      fail(at, "message id " + skype_etl::quoted(id) + " " + bad_id(id), where_message(at));
    if (first == '-' || (first >= '0' && first <= '9'))
      fail(at,
           "message id " + printable(id, 40) +
               " is a number but not a positive integer in plain digits: expected a string",
           where_message(at));
    fail(at, std::string("message id is ") + kind_of_value(first) + ": expected a string",
         where_message(at));
  }

  // The failures of read_message, out of its loop: building their messages there made
  // every message's walk slower.
  [[noreturn]] __attribute__((noinline, cold)) void refuse_message_key(const char* key_start,
                                                                       std::string_view key,
                                                                       const char* problem) const {
    const auto at = static_cast<std::size_t>(key_start - 1 - json.data());
    fail(at, std::string(problem) + " " + skype_etl::quoted(key) + " in message",
         where_message(at));
  }
  [[noreturn]] __attribute__((noinline, cold)) void refuse_version(od::value& value,
                                                                   std::string_view text) const {
    const std::size_t at = position_of(value);
    fail(at, bad_version(text, json[at]), where_message(at));
  }

  /// An unknown key of a message (`key` unescaped, `raw` as written) with its value: kept in
  /// `extra` unless it spells a known key with damage or came before.
  __attribute__((noinline)) void keep_unknown_message_key(const char* key_start,
                                                          std::string_view key,
                                                          std::string_view raw, od::value& value,
                                                          std::vector<std::string>& unknown_keys,
                                                          std::string& extra) const {
    if (const std::string_view meant = damaged_spelling_of(key, message_keys); !meant.empty()) {
      const auto at = static_cast<std::size_t>(key_start - 1 - json.data());
      fail(at,
           "damaged key " + skype_etl::quoted(key) + " in message: it spells \"" +
               std::string(meant) + "\" with other characters, and the field would be lost",
           where_message(at));
    }
    if (std::find(unknown_keys.begin(), unknown_keys.end(), key) != unknown_keys.end())
      refuse_message_key(key_start, key, "duplicate key");
    unknown_keys.emplace_back(key);
    keep_in_extra(extra, raw, value);
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
    std::vector<std::string> unknown_keys;  // unescaped, to refuse one given twice
    std::string unescaped;                  // a key that holds an escape, unescaped
    unsigned seen = 0;                      // bit i: message_keys[i] has come
    for (auto field_result : object) {
      // Used in place: copying simdjson's field and value objects stalls on store
      // forwarding, which cost more than the rest of the message's walk.
      if ((err = field_result.error())) break;
      od::field& field = field_result.value_unsafe();
      const char* key_start = field.key().raw();
      od::value& value = field.value();
      const std::string_view raw = raw_key(key_start, value);
      std::string_view key = raw;
      unsigned known = message_key_index(key);
      // A key with an escape is compared unescaped (simdjson checks the escapes); no known
      // key has one, so only an unknown key is looked at.
      if (known == unknown_key && has_backslash(raw)) {
        std::string_view decoded;
        if ((err = field.unescaped_key().get(decoded))) break;
        unescaped.assign(decoded);
        key = unescaped;
        known = message_key_index(key);
      }
      if (known != unknown_key) {
        if (seen & (1U << known)) refuse_message_key(key_start, key, "duplicate key");
        seen |= 1U << known;
      }
      od::json_type type{};
      std::string_view text;
      switch (known) {
        case 0:
          err = read_message_id(value, batch, m);
          break;
        case 1:
          // "" is a name; null is none (the owner's messages carry null).
          err = value_text(value, batch, text, type);
          if (!err && type != od::json_type::null) m.display_name = text;
          break;
        case 2:
          err = value_text(value, batch, m.original_arrival_time, type);
          break;
        case 3:
          err = value_text(value, batch, m.message_type, type);
          if (!err) check_id_field(m.message_type, type, value, "\"messagetype\"");
          break;
        case 4:
          err = value_text(value, batch, text, type);
          if (!err && type != od::json_type::null) {
            std::int64_t v = 0;
            if ((type != od::json_type::number && type != od::json_type::string) ||
                !parse_int_text(text, v))
              refuse_version(value, text);
            m.version = v;
          }
          break;
        case 5:
          err = value_text(value, batch, m.content, type);
          break;
        case 6:
          err = value_text(value, batch, m.conversation_id, type);
          if (!err) check_id_field(m.conversation_id, type, value, "\"conversationid\"");
          break;
        case 7:
          err = value_text(value, batch, m.from, type);
          if (!err) check_id_field(m.from, type, value, "\"from\"");
          break;
        case 8:
        case 9:
          if ((err = value.type().get(type))) break;
          if (known == 8 && type == od::json_type::object) {
            in = "properties";
            err = read_properties(value, batch, m);
            if (!err) in = "message";
          } else if (known == 9 && type == od::json_type::array) {
            m.ams_references_json = raw_value(value, "amsreferences");
          } else if (type == od::json_type::null) {
            err = check_null(value);
          } else {
            // Of a type the field never has: kept verbatim with the unknown keys.
            keep_in_extra(extra, raw, value);
          }
          break;
        default:
          keep_unknown_message_key(key_start, key, raw, value, unknown_keys, extra);
      }
      if (err) break;
    }
    if (err) fail_json();
    // Without an id the message would be stored as one with every other message without.
    if (!(seen & 1U)) fail(begin, "message has no \"id\"", where_message(begin));
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
      if (pos >= list_end) return message_list_ends(pos);
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
    // The batch is full: whether the list ends here (checked as if read on, so that where
    // batches end changes nothing).
    const std::size_t pos = skip_space(json, msg_pos);
    return pos >= list_end && message_list_ends(pos);
  }

  /// The MessageList's ']' is at `pos` (next after msg_pos): true, unless a ',' came just
  /// before it.
  bool message_list_ends(std::size_t pos) const {
    if (msg_index > 0 && json[msg_pos - 1] == ',')
      fail(pos, "invalid JSON: ']' after ',' in MessageList", where_conversation());
    return true;
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
  std::size_t deferred = 0;
  impl.walk_top_level(pos + 1, false, *info, deferred);
  if (!impl.have_conversations)
    impl.fail(impl.top_begin,
              "wrong top-level shape: no \"conversations\" array (is this a Skype "
              "messages.json?)");
  if (!impl.top_tail_pending) impl.conv_pos = deferred;
  // A missing key is the object's fault; an empty or null one, the value's.
  if (!impl.have_user)
    impl.fail(impl.top_begin,
              "no \"userId\" in the top-level object: cannot tell whose export this is");
  impl.check_user_id(info->user_id);
  // Hashing runs beside reading; the loader needs it only at the end of the export.
  info->digest = Digest(source->digest_async());
  m_info = std::move(info);
}

ExportReader::~ExportReader() = default;

std::uint64_t ExportReader::input_position() const noexcept {
  const Impl& impl = *m_impl;
  return impl.base + (impl.conv ? impl.msg_pos : impl.conv_pos);
}

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
    if (pos < impl.json.size() && impl.json[pos] == ']') impl.close_conversations(pos);
  }
  if (!impl.conv && impl.conversations_done) {
    batch->last_of_export = true;
    if (!impl.top_extra.empty()) batch->export_extra_json = "{" + impl.top_extra + "}";
    impl.emitted_last = true;
    m_finished = true;
  }
  impl.source->release_before(impl.conv ? impl.msg_pos : impl.conv_pos);
  return batch;
}

}  // namespace skype_etl::detail
