// libFuzzer target: the markup renderer (src/transform/markup.hpp) on arbitrary content.
//
// Besides not crashing (ASan, UBSan), it checks the contracts the transform relies on when
// it writes content_text and details (the JSON writer takes every string as valid UTF-8
// without NUL):
// - render_markup throws nothing, appends to what `out` held, and appends clean text;
//   every string it finds (mentions, links, quote, call, membership, contacts, location,
//   files, poll, attachments) is clean too (card_json is documented as not yet validated);
// - rendering is the same the second time with the same MarkupResult after clear();
// - markup_to_text, decode_entities, append_clean, describe_membership and poll_text give
//   clean text; markup_to_text's is trimmed;
// - find_unclean and find_markup_special agree with a UTF-8 check written independently;
//   append_clean leaves clean text as it is.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/membership.hpp"
#include "fuzz_support.hpp"
#include "transform/markup.hpp"

namespace {

namespace sd = skype_etl::detail;
using skype_etl::fuzz::clean_text;
using skype_etl::fuzz::excerpt;

void check_clean(std::string_view text, const std::string& what) {
  FUZZ_CHECK(clean_text(text), what + " is not valid UTF-8 without NUL: " + excerpt(text));
}

void check_result(const sd::MarkupResult& r) {
  for (const auto& m : r.mentions) {
    check_clean(m.id, "mention id");
    check_clean(m.name, "mention name");
  }
  for (const auto& link : r.links) check_clean(link, "link");
  check_clean(r.quote.author_id, "quote author id");
  check_clean(r.quote.author_name, "quote author name");
  check_clean(r.quote.text, "quote text");
  check_clean(r.call.state, "call state");
  check_clean(r.call.call_id, "call id");
  for (const auto& p : r.call.participants) {
    check_clean(p.id, "call participant id");
    check_clean(p.name, "call participant name");
  }
  check_clean(r.membership.kind, "membership kind");
  check_clean(r.membership.initiator, "membership initiator");
  for (const auto& t : r.membership.targets) check_clean(t, "membership target");
  check_clean(r.membership.value, "membership value");
  check_clean(r.membership.role, "membership role");
  for (const auto& c : r.contacts) {
    check_clean(c.id, "contact id");
    check_clean(c.name, "contact name");
    check_clean(c.type, "contact type");
  }
  check_clean(r.location.address, "location address");
  for (const auto& f : r.files) {
    check_clean(f.name, "file name");
    check_clean(f.url, "file url");
  }
  check_clean(r.poll.question, "poll question");
  for (const auto& o : r.poll.options) check_clean(o, "poll option");
  for (const auto& a : r.attachments) {
    check_clean(a.kind, "attachment kind");
    check_clean(a.name, "attachment name");
    check_clean(a.content_type, "attachment content type");
    check_clean(a.uri, "attachment uri");
    check_clean(a.thumbnail_uri, "attachment thumbnail uri");
    check_clean(a.doc_id, "attachment doc id");
  }
  if (r.has_poll) check_clean(sd::poll_text(r.poll), "poll_text");
  if (r.has_membership) check_clean(sd::describe_membership(r.membership), "describe_membership");
}

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string prefix = "kept:";
  std::string out = prefix;
  sd::MarkupResult result;
  try {
    sd::render_markup(input, out, result);
  } catch (const std::exception& e) {
    skype_etl::fuzz::broken(std::string("render_markup threw: ") + e.what());
  }
  FUZZ_CHECK(out.compare(0, prefix.size(), prefix) == 0, "render_markup changed what out held");
  const std::string text = out.substr(prefix.size());
  check_clean(text, "render_markup's text");
  check_result(result);

  // The same result object again, as the transform reuses it from message to message.
  result.clear();
  std::string again = prefix;  // what out holds matters (a block after text starts a line)
  sd::render_markup(input, again, result);
  FUZZ_CHECK(again == out,
             "a second rendering differs: " + excerpt(out) + " then " + excerpt(again));

  const std::string plain = sd::markup_to_text(input);
  check_clean(plain, "markup_to_text");
  FUZZ_CHECK(plain.empty() || (!is_ascii_space(plain.front()) && !is_ascii_space(plain.back())),
             "markup_to_text is not trimmed: " + excerpt(plain));
  check_clean(sd::decode_entities(input), "decode_entities");

  std::string cleaned;
  std::uint64_t nul_removed = 0;
  std::uint64_t invalid_utf8 = 0;
  sd::append_clean(cleaned, input, nul_removed, invalid_utf8);
  check_clean(cleaned, "append_clean");

  const bool clean = clean_text(input);
  const std::size_t unclean_at = sd::find_unclean(input);
  FUZZ_CHECK((unclean_at == std::string_view::npos) == clean,
             "find_unclean says " + std::to_string(unclean_at) + " for " + excerpt(input));
  if (clean) {
    FUZZ_CHECK(cleaned == input && nul_removed == 0 && invalid_utf8 == 0,
               "append_clean changed clean text");
  } else {
    FUZZ_CHECK(unclean_at < size, "find_unclean past the end");
    FUZZ_CHECK(clean_text(input.substr(0, unclean_at)),
               "find_unclean is not at the first bad byte");
  }
  const std::size_t special_at = sd::find_markup_special(input);
  if (special_at == std::string_view::npos) {
    FUZZ_CHECK(clean && input.find_first_of("<&") == std::string_view::npos,
               "find_markup_special found nothing in " + excerpt(input));
  } else {
    FUZZ_CHECK(special_at < size, "find_markup_special past the end");
    const char c = input[special_at];
    FUZZ_CHECK(c == '<' || c == '&' || c == '\0' || !clean_text(input.substr(special_at)),
               "find_markup_special stops at an ordinary byte in " + excerpt(input));
  }

  // Attribute lookup on the input taken as a tag's attribute text: a view into it, or none.
  for (const std::string_view name : {"type", "uri", "id"}) {
    if (const auto value = sd::find_attribute(input, name); value && !value->empty())
      FUZZ_CHECK(skype_etl::fuzz::inside(*value, input), "find_attribute's view is outside");
  }
  return 0;
}
