// Skype content markup -> plain text plus the structured things found in it, in one pass
// over the content (no regex, no allocation unless the message holds structure).
//
// Thread-safety: every function here is reentrant; MarkupResult is per caller.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/membership.hpp"
#include "core/model.hpp"

namespace skype_etl::detail {

// Ids that name a person (mentions, quote authors, call participants, contacts of type "s",
// membership initiators and targets) are canonical (core/identity.hpp) as soon as they are
// read, so that the text shown for them and details agree.

struct Mention {
  std::string id;    ///< "8:alice", or "*" for everyone
  std::string name;  ///< the text inside <at>
};

struct QuoteInfo {
  std::string author_id;
  std::string author_name;
  std::optional<std::int64_t> time_us;
  std::string text;  ///< quoted text without the <legacyquote> decoration
};

struct CallParticipant {
  std::string id;
  std::string name;
  std::optional<double> duration_seconds;
};

struct CallInfo {
  std::string state;  ///< started, ended, missed, ... as in <partlist type>
  std::string call_id;
  std::optional<double> duration_seconds;  ///< the longest participant duration
  std::vector<CallParticipant> participants;
};

struct ContactInfo {
  std::string id;    ///< s attribute (canonical when the type is "s" or absent)
  std::string name;  ///< f attribute
  std::string type;  ///< t attribute
};

struct LocationInfo {
  std::optional<double> latitude;  ///< degrees
  std::optional<double> longitude;
  std::string address;
};

struct FileInfo {
  std::string name;
  std::string url;
  std::optional<std::int64_t> size;
};

/// A poll: <URIObject type="Poll" question=".." optionsEncoded="A|B"> or, from Skype's web
/// client, <URIObject type="poll.1"> with <Question value>, <Answer value>, <MultipleChoice>.
struct PollInfo {
  std::string question;
  std::vector<std::string> options;
  std::optional<bool> multiple_choice;
};

/// Everything render_markup() found besides the text. Reused between messages: clear()
/// keeps the capacity so that messages without structure cost no allocation.
struct MarkupResult {
  std::vector<Mention> mentions;
  std::vector<std::string> links;
  bool has_quote = false;
  QuoteInfo quote;
  bool has_call = false;
  CallInfo call;
  bool has_membership = false;
  MembershipInfo membership;
  std::vector<ContactInfo> contacts;
  bool has_location = false;
  LocationInfo location;
  std::vector<FileInfo> files;
  bool has_poll = false;
  PollInfo poll;
  std::vector<Attachment> attachments;  ///< one per <URIObject> that names something
  std::string card_json;                ///< decoded <Swift b64> JSON text (not yet validated)
  bool edit_marker = false;             ///< an <e_m> was seen
  std::optional<std::int64_t> edit_marker_us;
  std::uint64_t nul_removed = 0;
  std::uint64_t invalid_utf8 = 0;   ///< bytes replaced by U+FFFD (input or decoded entities)
  std::uint64_t broken_markup = 0;  ///< bare '<', unterminated tags, unclosed elements

  void clear() noexcept;
  /// True when anything besides text (and the counters) was found.
  bool has_structure() const noexcept;
};

/// Offset of the first byte that makes `text` need rendering ('<', '&', NUL, or an invalid
/// UTF-8 sequence); npos when the text is already plain, valid UTF-8 without NUL.
std::size_t find_markup_special(std::string_view text) noexcept;

/// Offset of the first NUL or invalid UTF-8 sequence, npos when there is none.
std::size_t find_unclean(std::string_view text) noexcept;

/// Appends the plain text of the markup `input` to `out` and fills `result` (not cleared).
/// Never throws except std::bad_alloc. The appended text is valid UTF-8 without NUL.
void render_markup(std::string_view input, std::string& out, MarkupResult& result);

/// Appends `input` with entities decoded (no tag handling), NULs removed and invalid UTF-8
/// replaced; counts into `result`.
void append_decoded(std::string& out, std::string_view input, MarkupResult& result);

/// Appends `input` with NULs removed and invalid UTF-8 replaced by U+FFFD (no decoding).
void append_clean(std::string& out, std::string_view input, std::uint64_t& nul_removed,
                  std::uint64_t& invalid_utf8);

/// Length of the valid UTF-8 sequence at p (1..4), 0 when invalid (overlong, surrogate,
/// above U+10FFFF, truncated).
std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) noexcept;

/// Strips leading and trailing ASCII whitespace.
std::string_view trim_ascii(std::string_view s) noexcept;

/// Raw (undecoded) value of attribute `name` (ASCII case-insensitive) in a tag's attribute
/// text; nullopt when absent.
std::optional<std::string_view> find_attribute(std::string_view attributes,
                                               std::string_view name) noexcept;

/// The readable line of a poll: "Poll: <question> (<option>, <option>)".
std::string poll_text(const PollInfo& poll);

/// The plain text of a markup string (display names, topics): tags removed, entities
/// decoded, whitespace trimmed, valid UTF-8 without NUL.
std::string markup_to_text(std::string_view markup);

/// Entities decoded only (for attribute values and names that hold no tags).
std::string decode_entities(std::string_view text);

}  // namespace skype_etl::detail
