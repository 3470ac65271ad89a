// Message bodies for every message type of FORMAT.md, with the markup, entities, scripts
// and escaping hazards real exports carry.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rng.hpp"

namespace skype_etl::gen::detail {

enum class MessageKind : std::uint8_t {
  text,
  rich_text,
  rich_text_html,
  uri_object,
  media_generic_file,
  media_video,
  media_audio_msg,
  media_album,
  media_card,
  media_flik_msg,
  media_call_recording,
  files,
  contacts,
  location,
  scheduled_call_invite,
  event_call,
  event_bing_bot,
  poll,
  notice,
  pop_card,
  invite_free_initialized,
  add_member,
  delete_member,
  topic_update,
  picture_update,
  role_update,
  history_disclosed_update,
  joining_enabled_update,
  e2ee_handshake_invite,
  e2ee_handshake_accept,
  e2ee_handshake_complete,
  e2ee_handshake_reject,
  encrypted_text,
  encrypted_media,
  unknown,  ///< a type the loader does not know ("Signal/Flamingo"): must be kept
  count_
};
inline constexpr std::size_t message_kind_count = static_cast<std::size_t>(MessageKind::count_);

/// The "messagetype" value of `kind`.
std::string_view message_type_name(MessageKind kind);

enum class Language : std::uint8_t { english, russian, cjk, european, mixed };

/// A person or account taking part in a conversation.
struct Participant {
  std::string mri;     ///< with its prefix: "8:live:.cid.…", "28:…", "4:+…"
  std::string handle;  ///< mri without the "8:" prefix (what `from` holds when it lacks one)
  std::string name;    ///< display name (UTF-8, may hold quotes and emoji)
};

/// A participant derived from `key` alone: distinct keys give distinct ids for one salt.
Participant make_person(std::uint64_t key, std::uint64_t salt);

/// What a message body is built from. References stay owned by the caller.
struct MessageContext {
  const Participant* sender = nullptr;
  const std::vector<Participant>* members = nullptr;  ///< everyone in the chat, owner first
  std::string_view conversation_id;
  std::int64_t arrival_ms = 0;
  Language language = Language::english;
  bool group = false;
  bool quirks = true;
};

/// The parts of a message the builder decides. Reused from message to message so the
/// strings keep their capacity.
struct BuiltMessage {
  std::string content;
  std::string properties;      ///< raw JSON object members (no braces); empty = none
  std::string ams_references;  ///< raw JSON array text; empty = null
  bool has_link = false;
  void clear() {
    content.clear();
    properties.clear();
    ams_references.clear();
    has_link = false;
  }
};

/// Not thread-safe: draws from the Rng it is given.
class ContentBuilder {
 public:
  explicit ContentBuilder(Rng& rng) : m_rng(rng) {}

  void build(MessageKind kind, const MessageContext& context, BuiltMessage& out);

  /// Appends one to three phrases of chat text in `language` (raw UTF-8, no markup).
  void append_plain_text(std::string& out, Language language);
  /// A group topic or display name (raw UTF-8).
  void append_topic(std::string& out);

 private:
  void rich_text(const MessageContext& c, BuiltMessage& out);
  void plain_text(const MessageContext& c, BuiltMessage& out);
  void html(const MessageContext& c, BuiltMessage& out);
  void uri_object(std::string_view type, const MessageContext& c, BuiltMessage& out);
  void album(const MessageContext& c, BuiltMessage& out);
  void swift_card(const MessageContext& c, BuiltMessage& out);
  void files(const MessageContext& c, BuiltMessage& out);
  void contacts(const MessageContext& c, BuiltMessage& out);
  void location(const MessageContext& c, BuiltMessage& out);
  void scheduled_call(const MessageContext& c, BuiltMessage& out);
  void call(const MessageContext& c, BuiltMessage& out);
  void bing_bot(const MessageContext& c, BuiltMessage& out);
  void poll(const MessageContext& c, BuiltMessage& out);
  void notice(const MessageContext& c, BuiltMessage& out, bool pop_card);
  void thread_activity(MessageKind kind, const MessageContext& c, BuiltMessage& out);
  void encrypted(const MessageContext& c, BuiltMessage& out, bool media);

  /// Appends `text` XML-escaped the way Skype's RichText does (&apos;, &quot;, ...).
  void append_xml_escaped(std::string& out, std::string_view text);
  const Participant& random_member(const MessageContext& c);
  void append_doc_id(std::string& out);
  void append_uuid(std::string& out);
  void append_link(std::string& out, BuiltMessage& message);
  void append_json_string(std::string& out, std::string_view text);

  Rng& m_rng;
  std::string m_scratch;  ///< plain text before escaping
  std::string m_inner;    ///< nested JSON before it is stored inside a string
  std::string m_doc_id;
};

}  // namespace skype_etl::gen::detail
