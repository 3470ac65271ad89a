#include "transform/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/identity.hpp"
#include "core/json_object_writer.hpp"
#include "transform/json_body.hpp"
#include "transform/markup.hpp"
#include "transform/timestamps.hpp"

namespace skype_etl::detail {
namespace {

constexpr std::string_view kEditedPrefix = "Edited previous message: ";

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

/// JSON "null"/empty: the extractor passes absent values as empty views, but a raw
/// JSON null may still reach us.
bool absent(std::string_view json_or_text) noexcept {
  const auto t = trim_ascii(json_or_text);
  return t.empty() || t == "null" || t == "\"\"";
}

// ---------------------------------------------------------------------------------------
// Message types

enum class TypeClass { text, rich, media, call, thread_activity, notice, popcard, poll, other };

struct KnownType {
  std::string_view name;
  TypeClass cls;
  std::string_view media_kind;  ///< attachment kind for media types
};

// FORMAT.md's list, most frequent first.
constexpr KnownType kKnownTypes[] = {
    {"RichText", TypeClass::rich, {}},
    {"Text", TypeClass::text, {}},
    {"RichText/UriObject", TypeClass::media, "picture"},
    {"RichText/Media_GenericFile", TypeClass::media, "file"},
    {"RichText/Media_Video", TypeClass::media, "video"},
    {"RichText/Media_AudioMsg", TypeClass::media, "voice_message"},
    {"RichText/Media_Album", TypeClass::media, "picture"},
    {"RichText/Media_Card", TypeClass::media, "card"},
    {"RichText/Media_FlikMsg", TypeClass::media, "flik"},
    {"RichText/Media_CallRecording", TypeClass::media, "call_recording"},
    {"Event/Call", TypeClass::call, {}},
    {"ThreadActivity/AddMember", TypeClass::thread_activity, {}},
    {"ThreadActivity/DeleteMember", TypeClass::thread_activity, {}},
    {"ThreadActivity/TopicUpdate", TypeClass::thread_activity, {}},
    {"ThreadActivity/PictureUpdate", TypeClass::thread_activity, {}},
    {"ThreadActivity/RoleUpdate", TypeClass::thread_activity, {}},
    {"ThreadActivity/HistoryDisclosedUpdate", TypeClass::thread_activity, {}},
    {"ThreadActivity/JoiningEnabledUpdate", TypeClass::thread_activity, {}},
    {"ThreadActivity/E2EEHandshakeInvite", TypeClass::thread_activity, {}},
    {"ThreadActivity/E2EEHandshakeAccept", TypeClass::thread_activity, {}},
    {"ThreadActivity/E2EEHandshakeComplete", TypeClass::thread_activity, {}},
    {"ThreadActivity/E2EEHandshakeReject", TypeClass::thread_activity, {}},
    {"ThreadActivity/MemberJoined", TypeClass::thread_activity, {}},  // a JSON body
    {"ThreadActivity/MemberLeft", TypeClass::thread_activity, {}},    // a JSON body
    {"RichText/Html", TypeClass::rich, {}},
    {"RichText/Files", TypeClass::rich, {}},
    {"RichText/Contacts", TypeClass::rich, {}},
    {"RichText/Location", TypeClass::rich, {}},
    {"RichText/ScheduledCallInvite", TypeClass::rich, {}},
    {"Event/BingBot", TypeClass::rich, {}},
    {"Poll", TypeClass::poll, {}},
    {"Notice", TypeClass::notice, {}},
    {"PopCard", TypeClass::popcard, {}},
    {"InviteFreeRelationshipChanged/Initialized", TypeClass::rich, {}},
    {"EndToEndEncryption/EncryptedText", TypeClass::rich, {}},
    {"EndToEndEncryption/EncryptedMedia", TypeClass::rich, {}},
};

const KnownType* classify(std::string_view type) noexcept {
  for (const auto& t : kKnownTypes)
    if (t.name.size() == type.size() && t.name == type) return &t;
  return nullptr;
}

std::string conversation_type_of(std::string_view id) {
  if (starts_with(id, "8:")) return "one_to_one";
  if (starts_with(id, "19:")) return "group";
  if (starts_with(id, "28:")) return "bot";
  if (starts_with(id, "48:")) return "system";
  if (starts_with(id, "4:")) return "phone";
  if (starts_with(id, "guest:")) return "guest";
  return "unknown";
}

// ---------------------------------------------------------------------------------------
// JSON output (details_json). Every string given here is valid UTF-8 without NUL (a NUL
// would be written \u0000, which jsonb rejects).

void append_json_number(std::string& out, double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
  out.append(buf);
}

void append_json_int(std::string& out, std::int64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  out.append(buf);
}

/// A JSON object with the number and time formats of details.
class ObjectWriter : public JsonObjectWriter {
 public:
  using JsonObjectWriter::JsonObjectWriter;
  void num_if(std::string_view k, const std::optional<double>& v) {
    if (v) append_json_number(key(k), *v);
  }
  void int_if(std::string_view k, const std::optional<std::int64_t>& v) {
    if (v) append_json_int(key(k), *v);
  }
  void time_if(std::string_view k, const std::optional<std::int64_t>& us) {
    if (us) str(k, format_iso8601_utc(*us));
  }
};

/// Removes NULs from every string (and key) of a parsed JSON value; returns how many.
std::uint64_t strip_json_nuls(nlohmann::json& value) {
  std::uint64_t removed = 0;
  auto clean = [&removed](std::string& s) {
    const auto before = s.size();
    s.erase(std::remove(s.begin(), s.end(), '\0'), s.end());
    removed += before - s.size();
  };
  if (value.is_string()) {
    clean(value.get_ref<std::string&>());
  } else if (value.is_array()) {
    for (auto& v : value) removed += strip_json_nuls(v);
  } else if (value.is_object()) {
    nlohmann::json cleaned = nlohmann::json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      std::string k = it.key();
      clean(k);
      removed += strip_json_nuls(it.value());
      cleaned[k] = std::move(it.value());
    }
    value = std::move(cleaned);
  }
  return removed;
}

std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// Parses `text` as JSON and returns it re-serialised (valid UTF-8, no \u0000), or empty
/// when it is not JSON.
std::string normalised_json(std::string_view text, TransformCounters& counters) {
  auto value = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (value.is_discarded()) return {};
  counters.nul_characters_removed += strip_json_nuls(value);
  return dump_json(value);
}

/// `value`, or the object or array it holds when it is a string holding one: exports give
/// properties.emotions, poll, urlpreviews, forwardMetadata and callLog either way. NULs
/// removed.
nlohmann::json decode_json_property(nlohmann::json value, TransformCounters& counters) {
  if (value.is_string()) {
    auto inner = nlohmann::json::parse(value.get_ref<const std::string&>(), nullptr, false);
    if (inner.is_object() || inner.is_array()) value = std::move(inner);
  }
  counters.nul_characters_removed += strip_json_nuls(value);
  return value;
}

/// details.poll of a poll's markup: {"question", "options", "multiple_choice"} as known.
nlohmann::json poll_json(const PollInfo& info) {
  nlohmann::json poll = nlohmann::json::object();
  if (!info.question.empty()) poll["question"] = info.question;
  if (!info.options.empty()) poll["options"] = info.options;
  if (info.multiple_choice) poll["multiple_choice"] = *info.multiple_choice;
  return poll;
}

/// Adds what another source says of a poll (properties.poll) to `poll`: all of it when
/// `poll` is empty, else the keys `poll` lacks.
void add_to_poll(nlohmann::json& poll, nlohmann::json more) {
  if (poll.is_null() || (poll.is_object() && poll.empty())) {
    poll = std::move(more);
  } else if (more.is_object()) {
    for (auto it = more.begin(); it != more.end(); ++it)
      if (!poll.contains(it.key())) poll[it.key()] = std::move(it.value());
  }
}

/// Message properties decoded into details (property name, details key).
constexpr std::pair<std::string_view, std::string_view> kJsonProperties[] = {
    {"poll", "poll"},
    {"urlpreviews", "url_previews"},
    {"forwardMetadata", "forward_metadata"},
    {"callLog", "call_log"},
};

/// Whether the raw properties JSON may hold one of kJsonProperties: a look at the keys'
/// text, so that the properties of most messages are not parsed.
bool may_hold_json_property(std::string_view properties) noexcept {
  for (std::size_t q = properties.find('"'); q != std::string_view::npos;
       q = properties.find('"', q + 1)) {
    const std::string_view rest = properties.substr(q + 1);
    for (const auto& property : kJsonProperties) {
      const std::string_view name = property.first;
      if (rest.size() > name.size() && rest[name.size()] == '"' &&
          rest.compare(0, name.size(), name) == 0)
        return true;
    }
  }
  return false;
}

/// Per-batch working state: scratch buffers reused between messages.
struct Work {
  Batch& batch;
  const TransformSettings& settings;
  std::string text;
  std::string scratch;
  MarkupResult markup;
  std::optional<std::string_view> owner_name;
  nlohmann::json body;  ///< the message's content when it is a JSON body, else null
  // The last sender id that had to be rewritten and its canonical form: the messages of a
  // bare-id sender come in runs, and their id is stored in the arena once per run.
  std::string_view rewritten_from;
  std::string_view rewritten_sender;
};

/// `s` when clean, else a cleaned copy in the arena; counts what was removed.
std::string_view clean_view(std::string_view s, Work& w) {
  if (find_unclean(s) == std::string_view::npos) return s;
  w.scratch.clear();
  std::uint64_t nul = 0, bad = 0;
  append_clean(w.scratch, s, nul, bad);
  w.batch.counters.nul_characters_removed += nul;
  w.batch.counters.broken_markup += bad;
  return w.batch.arena.store(w.scratch);
}

std::string clean_string(std::string_view s, TransformCounters& counters) {
  std::string out;
  std::uint64_t nul = 0, bad = 0;
  append_clean(out, s, nul, bad);
  counters.nul_characters_removed += nul;
  counters.broken_markup += bad;
  return out;
}

/// Raw JSON text without NUL bytes and without \u0000 escapes (jsonb rejects them).
std::string_view clean_json_view(std::string_view json, Work& w) {
  json = clean_view(json, w);
  if (json.find("\\u0000") == std::string_view::npos) return json;
  std::string out;
  out.reserve(json.size());
  for (std::size_t i = 0; i < json.size();) {
    if (json[i] == '\\') {
      // Count the run of backslashes: an escape starts at every second one.
      std::size_t j = i;
      while (j < json.size() && json[j] == '\\') ++j;
      const std::size_t run = j - i;
      out.append(run - (run % 2), '\\');
      if (run % 2 == 1) {
        if (json.compare(j - 1, 6, "\\u0000") == 0) {
          ++w.batch.counters.nul_characters_removed;
          i = j + 5;
          continue;
        }
        out.push_back('\\');
      }
      i = j;
      continue;
    }
    out.push_back(json[i++]);
  }
  return w.batch.arena.store(out);
}

std::optional<std::string_view> owner_display_name(Work& w) {
  if (w.settings.owner_display_name.empty()) return std::nullopt;
  if (!w.owner_name) w.owner_name = w.batch.arena.store(w.settings.owner_display_name);
  return w.owner_name;
}

/// The canonical sender id of `from` (already clean): a view of it in the usual case, else
/// stored in the arena.
std::string_view canonical_sender(std::string_view from, Work& w) {
  const PersonId id = parse_person_id(from);
  if (id.in_place()) return id.tail;
  if (from != w.rewritten_from || w.rewritten_sender.empty()) {
    w.rewritten_from = from;
    w.rewritten_sender = canonical_person_id(from, w.batch.arena);
  }
  return w.rewritten_sender;
}

// ---------------------------------------------------------------------------------------
// JSON bodies: content that is a JSON object or array (Notice, PopCard, Poll, thread
// activity of Teams-era exports, unknown types).

/// Types whose content a person writes: it is never taken for a JSON body ("[1, 2]").
bool written_by_a_person(const KnownType* type) noexcept {
  return type && (type->cls == TypeClass::text || type->cls == TypeClass::rich);
}

/// Parses `body` into w.body when the message's content is a JSON object or array.
bool parse_json_body(const KnownType* type, std::string_view body, Work& w) {
  if (written_by_a_person(type) || body.empty() || (body.front() != '{' && body.front() != '['))
    return false;
  auto value = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (!value.is_object() && !value.is_array()) return false;
  w.batch.counters.nul_characters_removed += strip_json_nuls(value);
  w.body = std::move(value);
  return true;
}

/// The details key of a JSON body (a Poll's goes to details.poll).
std::string_view json_body_key(const KnownType* type) noexcept {
  if (type && type->cls == TypeClass::notice) return "notice";
  if (type && type->cls == TypeClass::popcard) return "card";
  return "body";
}

/// Reads w.body into w.markup (what details will hold besides the body) and returns the
/// message's text.
std::string json_body_text(const RawMessage& raw, const KnownType* type, Work& w) {
  w.markup.clear();
  if (membership_from_json(raw.message_type, w.body, w.markup.membership)) {
    w.markup.has_membership = true;
    return describe_membership(w.markup.membership);
  }
  if (type && type->cls == TypeClass::poll) return poll_text(poll_info_from_json(w.body));
  return readable_json_text(w.body);
}

void write_details(const RawMessage& raw, Message& m, const KnownType* type, bool rendered,
                   Work& w) {
  const MarkupResult& r = w.markup;
  const bool markup_structure = rendered && r.has_structure();
  const bool has_reactions = !absent(raw.emotions_json) && trim_ascii(raw.emotions_json) != "[]";
  const bool json_properties = may_hold_json_property(raw.properties_json);
  const bool json_body = !w.body.is_null();
  // An unparsable originalarrivaltime is kept as found (sent_at is NULL).
  const bool keep_arrival_time = !m.sent_at_us && !absent(raw.original_arrival_time);
  if (!markup_structure && !has_reactions && !json_properties && !json_body && !keep_arrival_time &&
      type && m.attachments.empty())
    return;

  auto& counters = w.batch.counters;
  std::string& out = m.details_json;
  ObjectWriter obj(out);
  if (rendered) {
    if (!r.mentions.empty()) {
      std::string& o = obj.key("mentions");
      o.push_back('[');
      for (std::size_t i = 0; i < r.mentions.size(); ++i) {
        if (i) o.push_back(',');
        ObjectWriter mention(o);
        mention.str("id", r.mentions[i].id);
        mention.str("name", r.mentions[i].name);
        mention.finish();
      }
      o.push_back(']');
    }
    if (!r.links.empty()) {
      std::string& o = obj.key("links");
      o.push_back('[');
      for (std::size_t i = 0; i < r.links.size(); ++i) {
        if (i) o.push_back(',');
        append_json_string(o, r.links[i]);
      }
      o.push_back(']');
    }
    if (r.has_quote) {
      ObjectWriter q(obj.key("quote"));
      q.str("author_id", r.quote.author_id);
      q.str("author_name", r.quote.author_name);
      q.time_if("time", r.quote.time_us);
      q.str("text", r.quote.text);
      q.finish();
    }
    if (r.has_call) {
      ObjectWriter c(obj.key("call"));
      c.str("state", r.call.state);
      c.num_if("duration_seconds", r.call.duration_seconds);
      c.str_if("call_id", r.call.call_id);
      std::string& o = c.key("participants");
      o.push_back('[');
      for (std::size_t i = 0; i < r.call.participants.size(); ++i) {
        if (i) o.push_back(',');
        const auto& part = r.call.participants[i];
        ObjectWriter p(o);
        p.str("id", part.id);
        p.str("name", part.name);
        p.num_if("duration_seconds", part.duration_seconds);
        p.finish();
      }
      o.push_back(']');
      c.finish();
    }
    if (r.has_membership) {
      // Stored canonical whatever read the event (markup makes its ids canonical already;
      // other readers of membership events need not). No initiator when none is named.
      ObjectWriter mb(obj.key("membership"));
      mb.str("kind", r.membership.kind);
      mb.str_if("initiator", canonical_person_id(r.membership.initiator));
      std::string& o = mb.key("targets");
      o.push_back('[');
      for (std::size_t i = 0; i < r.membership.targets.size(); ++i) {
        if (i) o.push_back(',');
        append_json_string(o, canonical_person_id(r.membership.targets[i]));
      }
      o.push_back(']');
      mb.str_if("value", r.membership.value);
      mb.str_if("role", r.membership.role);
      mb.time_if("time", r.membership.time_us);
      mb.finish();
    }
    if (!r.contacts.empty()) {
      std::string& o = obj.key("contacts");
      o.push_back('[');
      for (std::size_t i = 0; i < r.contacts.size(); ++i) {
        if (i) o.push_back(',');
        ObjectWriter c(o);
        c.str("id", r.contacts[i].id);
        c.str("name", r.contacts[i].name);
        c.str_if("type", r.contacts[i].type);
        c.finish();
      }
      o.push_back(']');
    }
    if (r.has_location) {
      ObjectWriter l(obj.key("location"));
      l.num_if("latitude", r.location.latitude);
      l.num_if("longitude", r.location.longitude);
      l.str("address", r.location.address);
      l.finish();
    }
    if (!r.files.empty()) {
      std::string& o = obj.key("files");
      o.push_back('[');
      for (std::size_t i = 0; i < r.files.size(); ++i) {
        if (i) o.push_back(',');
        ObjectWriter f(o);
        f.str("name", r.files[i].name);
        f.str_if("url", r.files[i].url);
        f.int_if("size", r.files[i].size);
        f.finish();
      }
      o.push_back(']');
    }
    if (!r.card_json.empty()) {
      const std::string card = normalised_json(r.card_json, counters);
      if (!card.empty()) obj.raw("card", card);
    }
  }
  // A poll: what its markup says, then what properties.poll adds (votes, ...).
  nlohmann::json poll;
  if (rendered && r.has_poll) poll = poll_json(r.poll);
  if (json_body) {
    if (type && type->cls == TypeClass::poll)
      add_to_poll(poll, w.body);
    else
      obj.raw(json_body_key(type), dump_json(w.body));
  }
  if (json_properties) {
    auto props = nlohmann::json::parse(raw.properties_json.begin(), raw.properties_json.end(),
                                       nullptr, false);
    if (props.is_object()) {
      for (const auto& [name, key] : kJsonProperties) {
        const auto it = props.find(name);
        if (it == props.end() || it->is_null()) continue;
        nlohmann::json value = decode_json_property(std::move(*it), counters);
        if (key == "poll")
          add_to_poll(poll, std::move(value));
        else
          obj.raw(key, dump_json(value));
      }
    }
  }
  if (!poll.is_null()) obj.raw("poll", dump_json(poll));
  if (has_reactions) {
    auto emotions =
        nlohmann::json::parse(raw.emotions_json.begin(), raw.emotions_json.end(), nullptr, false);
    if (!emotions.is_discarded()) emotions = decode_json_property(std::move(emotions), counters);
    if ((emotions.is_array() || emotions.is_object()) && !emotions.empty())
      obj.raw("reactions", dump_json(emotions));
  }
  if (keep_arrival_time)
    obj.str("original_arrival_time", clean_string(raw.original_arrival_time, counters));
  if (!type) obj.key("unknown_type").append("true");
  obj.finish();
  if (out == "{}") out.clear();
}

/// Media messages without a <URIObject>: one attachment per amsreferences doc id; with
/// --with-media, names, content types and sizes from the export's media metadata.
void media_attachments(const RawMessage& raw, Message& m, const KnownType& type, Work& w) {
  if (m.attachments.empty() && !absent(raw.ams_references_json)) {
    auto refs = nlohmann::json::parse(raw.ams_references_json.begin(),
                                      raw.ams_references_json.end(), nullptr, false);
    if (refs.is_array()) {
      for (const auto& ref : refs) {
        if (!ref.is_string()) continue;
        Attachment a;
        a.kind = std::string(type.media_kind);
        a.doc_id = clean_string(ref.get_ref<const std::string&>(), w.batch.counters);
        m.attachments.push_back(std::move(a));
      }
    }
  }
  for (auto& a : m.attachments)
    if (a.kind.empty()) a.kind = std::string(type.media_kind);
  if (!w.batch.media) return;
  const auto& media = w.batch.media->by_doc_id;
  for (auto& a : m.attachments) {
    const auto found = media.find(a.doc_id);
    if (found == media.end()) continue;
    const MediaMetadata& item = found->second;
    if (a.name.empty()) a.name = clean_string(item.file_name, w.batch.counters);
    if (a.content_type.empty()) a.content_type = clean_string(item.content_type, w.batch.counters);
    if (!a.size && item.size) a.size = item.size;
  }
}

/// Counts a message whose originalarrivaltime is missing or unparsable, and notes where
/// the batch's first such message is (rare: the cost does not matter).
void note_invalid_timestamp(const RawMessage& raw, Work& w) {
  TransformCounters& counters = w.batch.counters;
  if (counters.invalid_timestamps++ > 0) return;
  MessagePlace place;
  const auto index = static_cast<std::size_t>(&raw - w.batch.raw.data());
  for (const ConversationChunk& chunk : w.batch.chunks) {
    if (chunk.conversation && index >= chunk.first_message &&
        index < chunk.first_message + chunk.message_count) {
      place.conversation_id = chunk.conversation->id;
      place.conversation_index = chunk.conversation->index;
      break;
    }
  }
  if (place.conversation_id.empty()) place.conversation_id = raw.conversation_id;
  place.message_index = raw.position;
  place.byte_offset = raw.offset;
  TransformCounters uncounted;  // the message's own cleaning counts its NULs
  place.conversation_id = clean_string(place.conversation_id, uncounted);
  place.raw_value = clean_string(raw.original_arrival_time, uncounted);
  counters.first_invalid_timestamp = std::move(place);
}

void transform_message(const RawMessage& raw, Message& m, Work& w) {
  auto& counters = w.batch.counters;
  // `m` is freshly value-initialised by transform().
  m.message_id = clean_view(raw.id, w);
  m.version = raw.version;
  m.message_type = clean_view(raw.message_type, w);
  m.sent_at_us = parse_iso8601_us(raw.original_arrival_time);
  if (!m.sent_at_us) note_invalid_timestamp(raw, w);
  const std::string_view from = clean_view(raw.from, w);
  m.sender_id = canonical_sender(from, w);
  if (m.sender_id != from) m.sender_raw = from;
  // "" is a name as the file gives it; only a null name may be the owner's.
  if (raw.display_name)
    m.sender_name = clean_view(*raw.display_name, w);
  else if (!m.sender_id.empty() && m.sender_id == w.settings.owner_id)
    m.sender_name = owner_display_name(w);
  m.is_server_generated = raw.is_server_generated;
  m.properties_json = clean_json_view(raw.properties_json, w);
  m.extra_json = clean_json_view(raw.extra_json, w);

  const KnownType* type = classify(raw.message_type);
  if (!type) {
    auto it = counters.unknown_types.find(m.message_type);
    if (it == counters.unknown_types.end())
      counters.unknown_types.emplace(std::string(m.message_type), 1);
    else
      ++it->second;
  }

  // Content.
  const std::string_view content = raw.content;
  bool rendered = false;
  bool edited_prefix = false;
  if (type && type->cls == TypeClass::text) {
    m.content_raw = clean_view(content, w);
    m.content_text = m.content_raw;
  } else {
    std::string_view body = trim_ascii(content);
    if (starts_with(body, kEditedPrefix)) {
      edited_prefix = true;
      body.remove_prefix(kEditedPrefix.size());
    }
    if (!w.body.is_null()) w.body = nullptr;
    if (parse_json_body(type, body, w)) {
      // What the JSON says goes to details (with w.markup, as markup's would); the text is
      // a line to read rather than the JSON.
      rendered = true;
      m.content_raw = clean_view(content, w);
      m.content_text = w.batch.arena.store(json_body_text(raw, type, w));
    } else if (find_markup_special(body) == std::string_view::npos) {
      // The common case: plain text, no copy.
      m.content_raw = content;
      m.content_text = trim_ascii(body);
    } else {
      rendered = true;
      w.markup.clear();
      w.text.clear();
      render_markup(body, w.text, w.markup);
      counters.nul_characters_removed += w.markup.nul_removed;
      counters.broken_markup += w.markup.broken_markup + w.markup.invalid_utf8;
      m.content_raw = content;
      if (w.markup.nul_removed > 0 || w.markup.invalid_utf8 > 0) {
        // Already counted above: clean the raw copy without counting again.
        w.scratch.clear();
        std::uint64_t nul = 0, bad = 0;
        append_clean(w.scratch, content, nul, bad);
        m.content_raw = w.batch.arena.store(w.scratch);
      }
      const std::string_view text = trim_ascii(w.text);
      const std::string_view plain = trim_ascii(body);
      m.content_text = text == plain ? plain : w.batch.arena.store(text);
      if (!w.markup.attachments.empty()) m.attachments = std::move(w.markup.attachments);
    }
  }

  // Edits and deletions.
  if (!absent(raw.edit_time)) {
    m.is_edited = true;
    m.edited_at_us = parse_epoch_text_us(raw.edit_time);
  }
  if ((rendered && w.markup.edit_marker) || edited_prefix) {
    m.is_edited = true;
    if (!m.edited_at_us && rendered) m.edited_at_us = w.markup.edit_marker_us;
  }
  if (!absent(raw.delete_time)) {
    m.is_deleted = true;
    m.deleted_at_us = parse_epoch_text_us(raw.delete_time);
  } else if (trim_ascii(content).empty() || (rendered && w.markup.edit_marker &&
                                             m.content_text.empty() && !w.markup.has_structure())) {
    m.is_deleted = true;
    m.deleted_at_us = m.edited_at_us;
  }

  if (type && type->cls == TypeClass::media) media_attachments(raw, m, *type, w);
  for (auto& a : m.attachments)
    if (a.kind.empty()) a.kind = "file";
  write_details(raw, m, type, rendered, w);
}

/// Adds person `id` (clean, any form) to `row.members` in its canonical form, once, unless
/// it is a thread. `seen` holds views that live as long as the batch: an id already
/// canonical (every sender's) costs no allocation unless it is new.
void add_member(ConversationRow& row, std::unordered_set<std::string_view>& seen,
                std::string_view id, Work& w) {
  const std::string_view member = canonical_person_id(id, w.batch.arena);
  if (member.empty() || is_thread_id(member) || !seen.insert(member).second) return;
  row.members.emplace_back(member);
}

/// The name a one-to-one conversation shows when nothing names it: the other party's id
/// without the "8:" every Skype user's id has.
std::string_view shown_party(std::string_view id) noexcept {
  return starts_with(id, "8:") ? id.substr(2) : id;
}

ConversationRow conversation_row(const ConversationChunk& chunk, Work& w) {
  const ConversationMeta& meta = *chunk.conversation;
  ConversationRow row;
  row.conversation_id = clean_view(meta.id, w);
  row.conversation_type = conversation_type_of(row.conversation_id);
  row.topic = markup_to_text(meta.topic);
  const std::size_t first = std::min(chunk.first_message, w.batch.raw.size());
  const std::size_t last = std::min(first + chunk.message_count, w.batch.raw.size());
  // What the file names it, even ""; with null, a name found elsewhere.
  if (meta.display_name) {
    row.display_name = markup_to_text(*meta.display_name);
  } else if (!row.topic.empty()) {
    row.display_name = row.topic;
  } else if (row.conversation_type == "one_to_one") {
    // The other party's displayName on one of their messages, else their id.
    const std::string party = canonical_person_id(row.conversation_id);
    for (std::size_t i = first; i < last && !row.display_name; ++i) {
      const RawMessage& raw = w.batch.raw[i];
      if (raw.display_name && !raw.display_name->empty() &&
          w.batch.messages[i].sender_id == party) {
        std::string name = markup_to_text(*raw.display_name);
        if (!name.empty()) row.display_name = std::move(name);
      }
    }
    if (!row.display_name && !party.empty()) row.display_name = std::string(shown_party(party));
  }
  row.properties_json = clean_json_view(meta.properties_json, w);
  row.thread_properties_json = clean_json_view(meta.thread_properties_json, w);
  row.extra_json = clean_json_view(meta.extra_json, w);
  std::unordered_set<std::string_view> seen;
  for (const auto& member : meta.members) add_member(row, seen, clean_view(member, w), w);
  // Senders: canonical and clean already.
  for (std::size_t i = first; i < last; ++i)
    add_member(row, seen, w.batch.messages[i].sender_id, w);
  return row;
}

}  // namespace

Transformer::Transformer(TransformSettings settings) : m_settings(std::move(settings)) {
  m_settings.owner_id = canonical_person_id(m_settings.owner_id);
  TransformCounters ignored;
  m_settings.owner_display_name = clean_string(m_settings.owner_display_name, ignored);
}

void Transformer::transform(Batch& batch) const {
  batch.messages.clear();
  batch.messages.resize(batch.raw.size());
  batch.conversations.clear();
  batch.counters = TransformCounters{};
  Work w{batch, m_settings, {}, {}, {}, std::nullopt, {}, {}};
  for (std::size_t i = 0; i < batch.raw.size(); ++i)
    transform_message(batch.raw[i], batch.messages[i], w);
  for (const auto& chunk : batch.chunks) {
    if (chunk.starts_conversation && chunk.conversation)
      batch.conversations.push_back(conversation_row(chunk, w));
  }
  if (!batch.export_extra_json.empty())
    batch.export_extra_json = std::string(clean_json_view(batch.export_extra_json, w));
}

}  // namespace skype_etl::detail
