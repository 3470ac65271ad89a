// The export generator: plans conversations and their sizes, then streams messages.json
// (optionally inside a ustar archive) through one large output buffer. Nothing but the
// current conversation is kept in memory.
#include "generator.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "content_builder.hpp"
#include "output_buffer.hpp"
#include "rng.hpp"
#include "text_format.hpp"

namespace skype_etl::gen {
namespace {

using detail::append_hex;
using detail::append_int;
using detail::append_timestamp;
using detail::append_uint;
using detail::BuiltMessage;
using detail::ContentBuilder;
using detail::Fraction;
using detail::Language;
using detail::MessageContext;
using detail::MessageKind;
using detail::mix64;
using detail::OutputBuffer;
using detail::Participant;
using detail::Rng;

constexpr std::int64_t latest_export_ms = 1746007980000;  // 2025-04-30T10:13Z
constexpr std::int64_t earliest_ms = 1136073600000;       // 2006-01-01T00:00Z
constexpr std::int64_t day_ms = 86'400'000;
constexpr std::uint64_t pool_size = 1024;  // group members are drawn from this many people

enum class Family : std::uint8_t {
  one_to_one,    // 8:<user>
  thread_skype,  // 19:<hex>@thread.skype
  thread_v2,     // 19:<hex>@thread.v2
  p2p,           // 19:<base64>@p2p.thread.skype
  cast,          // 19:<hex>@cast.skype
  bot,           // 28:<uuid>
  calllogs,      // 48:calllogs
  notes,         // 48:notes
  phone,         // 4:+<number>
  guest,         // guest:<name>
  count_
};
constexpr std::size_t family_count = static_cast<std::size_t>(Family::count_);

bool is_group(Family f) {
  return f == Family::thread_skype || f == Family::thread_v2 || f == Family::p2p ||
         f == Family::cast;
}
// Families that can hold huge histories; the others stay small.
bool can_be_large(Family f) {
  return f == Family::one_to_one || is_group(f) || f == Family::calllogs;
}

using KindWeights = std::array<std::uint16_t, detail::message_kind_count>;

// Relative frequencies (per 10,000) of message types in each family of conversation.
KindWeights kind_weights(Family family, bool quirks) {
  KindWeights w{};
  auto set = [&w](MessageKind k, std::uint16_t v) { w[static_cast<std::size_t>(k)] = v; };
  switch (family) {
    case Family::bot:
      set(MessageKind::rich_text, 6000);
      set(MessageKind::media_card, 2000);
      set(MessageKind::pop_card, 600);
      set(MessageKind::notice, 600);
      set(MessageKind::event_bing_bot, 500);
      set(MessageKind::uri_object, 300);
      break;
    case Family::calllogs:
      set(MessageKind::event_call, 9000);
      set(MessageKind::media_call_recording, 500);
      set(MessageKind::rich_text, 500);
      break;
    case Family::notes:
      set(MessageKind::rich_text, 7000);
      set(MessageKind::uri_object, 1000);
      set(MessageKind::files, 800);
      set(MessageKind::media_generic_file, 700);
      break;
    case Family::phone:
      set(MessageKind::text, 7000);
      set(MessageKind::rich_text, 2000);
      set(MessageKind::event_call, 1000);
      break;
    default:
      set(MessageKind::rich_text, 8570);
      set(MessageKind::text, 350);
      set(MessageKind::rich_text_html, 30);
      set(MessageKind::uri_object, 100);
      set(MessageKind::media_generic_file, 35);
      set(MessageKind::media_video, 15);
      set(MessageKind::media_audio_msg, 20);
      set(MessageKind::media_album, 5);
      set(MessageKind::media_card, 5);
      set(MessageKind::media_flik_msg, 5);
      set(MessageKind::media_call_recording, 8);
      set(MessageKind::files, 25);
      set(MessageKind::contacts, 20);
      set(MessageKind::location, 12);
      set(MessageKind::scheduled_call_invite, 10);
      set(MessageKind::event_call, 180);
      set(MessageKind::notice, 10);
      set(MessageKind::pop_card, 5);
      set(MessageKind::e2ee_handshake_invite, 5);
      set(MessageKind::e2ee_handshake_accept, 4);
      set(MessageKind::e2ee_handshake_complete, 4);
      set(MessageKind::e2ee_handshake_reject, 2);
      set(MessageKind::encrypted_text, 15);
      set(MessageKind::encrypted_media, 5);
      if (is_group(family)) {
        set(MessageKind::poll, 20);
        set(MessageKind::add_member, 150);
        set(MessageKind::delete_member, 60);
        set(MessageKind::topic_update, 40);
        set(MessageKind::picture_update, 15);
        set(MessageKind::role_update, 15);
        set(MessageKind::history_disclosed_update, 10);
        set(MessageKind::joining_enabled_update, 10);
      }
      if (family == Family::p2p) set(MessageKind::event_bing_bot, 5);
  }
  if (quirks) set(MessageKind::unknown, 5);
  return w;
}

/// Kind lookup tables: one draw below(total) then a direct index.
class KindTable {
 public:
  explicit KindTable(bool quirks) {
    for (std::size_t f = 0; f < family_count; ++f) {
      const KindWeights w = kind_weights(static_cast<Family>(f), quirks);
      for (std::size_t k = 0; k < w.size(); ++k) {
        m_tables[f].insert(m_tables[f].end(), w[k], static_cast<MessageKind>(k));
      }
    }
  }
  MessageKind draw(Family family, Rng& rng) const {
    const auto& table = m_tables[static_cast<std::size_t>(family)];
    return table[rng.below(table.size())];
  }

 private:
  std::array<std::vector<MessageKind>, family_count> m_tables;
};

bool is_thread_activity(MessageKind k) {
  return k >= MessageKind::add_member && k <= MessageKind::e2ee_handshake_reject;
}
bool can_be_edited(MessageKind k) {
  return k == MessageKind::rich_text || k == MessageKind::text;
}

constexpr std::string_view bot_names[] = {"Skype Translator", "Bing", "Concierge", "Survey Bot",
                                          "Skype"};
constexpr std::string_view endpoints_json =
    "{\"endpoints\":[{\"endpointId\":\"{6a1f3c2e-9d0b-4f7e-8a55-0c1d2e3f4a5b}\","
    "\"aadDeviceId\":null,\"nodeId\":null,\"timestamp\":\"2025-04-30T10:13:00.0000000Z\","
    "\"transports\":{\"transports\":[{\"transportType\":\"TROUTER\",\"creationTime\":"
    "1746007980000,\"ttl\":86400,\"path\":\"https://trouter.skype.com/v4/f/abc\","
    "\"isDeleted\":false}]},\"clientDescription\":{\"languageId\":\"en-US\",\"platform\":"
    "\"web\",\"appId\":\"SkypeWeb\",\"templateKey\":\"SkypeWeb_2.4\"},\"clientSettings\":null,"
    "\"activity\":null}]}\n";

// --- tar ------------------------------------------------------------------------------

void put_octal(char* field, std::size_t width, std::uint64_t value) {
  if (value >> (3 * (width - 1)) != 0) {
    // GNU base-256: too large for the octal digits (only sizes of 8 GiB and more).
    std::memset(field, 0, width);
    field[0] = static_cast<char>(0x80);
    for (std::size_t i = width - 1; i > 0 && value != 0; --i, value >>= 8) {
      field[i] = static_cast<char>(value & 0xff);
    }
    return;
  }
  for (std::size_t i = width - 1; i > 0; --i, value >>= 3) {
    field[i - 1] = static_cast<char>('0' + (value & 7));
  }
  field[width - 1] = '\0';
}

std::array<char, 512> tar_header(std::string_view name, std::uint64_t size, std::uint64_t mtime) {
  std::array<char, 512> h{};
  std::memcpy(h.data(), name.data(), std::min<std::size_t>(name.size(), 100));
  put_octal(h.data() + 100, 8, 0644);
  put_octal(h.data() + 108, 8, 1000);
  put_octal(h.data() + 116, 8, 1000);
  put_octal(h.data() + 124, 12, size);
  put_octal(h.data() + 136, 12, mtime);
  h[156] = '0';
  std::memcpy(h.data() + 257, "ustar", 6);
  std::memcpy(h.data() + 263, "00", 2);
  std::memcpy(h.data() + 265, "skype", 5);
  std::memcpy(h.data() + 297, "skype", 5);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (const char c : h) sum += static_cast<unsigned char>(c);
  put_octal(h.data() + 148, 7, sum);  // six digits and a NUL; the eighth byte stays ' '
  return h;
}

void pad_to_block(OutputBuffer& out) {
  static const char zeros[512] = {};
  const std::size_t rest = out.position() % 512;
  if (rest != 0) out.append(zeros, 512 - rest);
}

// --- the plan -------------------------------------------------------------------------

struct Plan {
  std::vector<Family> families;
  std::vector<std::uint64_t> counts;
  std::vector<bool> recent;  // among the largest: their newest message is recent
};

Plan make_plan(const GeneratorOptions& options, Rng& rng) {
  std::uint64_t c = options.conversations;
  if (c == 0) {
    // About 2*sqrt(messages): 60 chats for 1,000 messages, 4,500 for 5 million.
    std::uint64_t root = 1;
    while ((root + 1) * (root + 1) <= options.messages) ++root;
    c = std::max<std::uint64_t>(1, std::min<std::uint64_t>(options.messages, 2 * root));
  }
  Plan plan;
  plan.families.reserve(c);
  // Every family appears when there is room; the rest by realistic frequency.
  constexpr Family priority[] = {
      Family::one_to_one, Family::thread_skype, Family::thread_v2, Family::bot,   Family::calllogs,
      Family::p2p,        Family::phone,        Family::guest,     Family::notes, Family::cast};
  for (std::uint64_t i = 0; i < c && i < std::size(priority); ++i) {
    plan.families.push_back(priority[i]);
  }
  while (plan.families.size() < c) {
    const std::uint64_t r = rng.below(1000);
    plan.families.push_back(r < 560   ? Family::one_to_one
                            : r < 760 ? Family::thread_skype
                            : r < 840 ? Family::thread_v2
                            : r < 870 ? Family::p2p
                            : r < 880 ? Family::cast
                            : r < 920 ? Family::bot
                            : r < 970 ? Family::phone
                                      : Family::guest);
  }
  for (std::uint64_t i = c - 1; i > 0; --i)
    std::swap(plan.families[i], plan.families[rng.below(i + 1)]);

  // Rank conversations (large-capable ones first, shuffled order kept) and give rank r a
  // Zipf weight 1/(r+1): many small chats, a few huge ones.
  std::vector<std::uint32_t> order(c);
  std::size_t next = 0;
  for (std::uint64_t i = 0; i < c; ++i) {
    if (can_be_large(plan.families[i])) order[next++] = static_cast<std::uint32_t>(i);
  }
  for (std::uint64_t i = 0; i < c; ++i) {
    if (!can_be_large(plan.families[i])) order[next++] = static_cast<std::uint32_t>(i);
  }
  // Shuffle within each group so that the largest chats sit anywhere in the file.
  const std::size_t large = static_cast<std::size_t>(
      std::count_if(plan.families.begin(), plan.families.end(), can_be_large));
  for (std::size_t i = large; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  for (std::size_t i = c - large; i > 1; --i) {
    std::swap(order[large + i - 1], order[large + rng.below(i)]);
  }
  std::vector<bool> empty(c, false);
  std::uint64_t non_empty = c;
  if (options.quirks && c >= 20 && options.messages >= c) {
    // Conversations with an empty MessageList (history lost to server retention).
    for (std::uint64_t i = 1; i < c; ++i) {
      if (rng.chance(200)) {
        empty[order[i]] = true;
        --non_empty;
      }
    }
  }
  plan.counts.assign(c, 0);
  plan.recent.assign(c, false);
  const std::uint64_t base = options.messages >= non_empty ? 1 : 0;
  const std::uint64_t spread = options.messages - base * non_empty;
  std::vector<std::uint64_t> weight(c, 0);
  std::uint64_t total_weight = 0;
  for (std::uint64_t r = 0; r < c; ++r) {
    if (empty[order[r]]) continue;
    weight[order[r]] = (std::uint64_t{1} << 24) / (r + 1) + 1;
    total_weight += weight[order[r]];
    plan.recent[order[r]] = r < std::max<std::uint64_t>(1, c / 10);
  }
  std::uint64_t assigned = 0;
  for (std::uint64_t i = 0; i < c; ++i) {
    if (empty[i]) continue;
    // spread * weight stays below 2^64 for any message count under 10^11.
    plan.counts[i] = base + spread * weight[i] / total_weight;
    assigned += plan.counts[i];
  }
  for (std::uint64_t r = 0; assigned < options.messages; r = (r + 1) % c) {
    if (empty[order[r]]) continue;
    ++plan.counts[order[r]];
    ++assigned;
  }
  return plan;
}

// --- the writer -----------------------------------------------------------------------

class ExportWriter {
 public:
  ExportWriter(const GeneratorOptions& options, OutputBuffer& out)
      : m_options(options),
        m_out(out),
        m_rng(mix64(options.seed) ^ 0x5ca1ab1e0ddba11ULL),
        m_builder(m_rng),
        m_kinds(options.quirks),
        m_salt(mix64(options.seed + 0x1234567)) {
    std::string_view bare = options.user_id;
    if (bare.substr(0, 2) == "8:") bare.remove_prefix(2);
    m_owner.handle = bare;
    m_owner.mri = "8:" + m_owner.handle;
    m_owner.name = detail::make_person(0, m_salt).name;
    m_export_ms = latest_export_ms - static_cast<std::int64_t>(m_rng.below(700)) * day_ms -
                  static_cast<std::int64_t>(m_rng.below(1440)) * 60'000;
  }

  std::int64_t export_ms() const { return m_export_ms; }

  void write(GeneratorSummary& summary) {
    const Plan plan = make_plan(m_options, m_rng);
    m_out.append("{\"userId\":\"");
    detail::escape_json(m_out, m_options.user_id, false);
    m_out.append("\",\"exportDate\":\"");
    m_text.clear();
    detail::append_minute_timestamp(m_text,
                                    m_export_ms + (m_options.newer_percent > 0 ? 30 * day_ms : 0));
    m_out.append(m_text);
    m_out.append("\",\"conversations\":[");
    for (std::size_t i = 0; i < plan.families.size(); ++i) {
      if (i > 0) m_out.put(',');
      write_conversation(i, plan.families[i], plan.counts[i], plan.recent[i]);
    }
    m_out.append("]}");
    summary.conversations = plan.families.size();
    summary.messages = m_messages;
    summary.distinct_messages = m_messages - m_duplicates;
    for (std::size_t k = 0; k < m_by_kind.size(); ++k) {
      if (m_by_kind[k] != 0) {
        summary.messages_by_type[std::string(message_type_name(static_cast<MessageKind>(k)))] =
            m_by_kind[k];
      }
    }
  }

 private:
  void put_string(std::string_view text, bool ascii_only = false) {
    m_out.put('"');
    detail::escape_json(m_out, text, ascii_only);
    m_out.put('"');
  }

  void setup_conversation(std::size_t index, Family family) {
    m_members.clear();
    m_members.push_back(m_owner);
    const std::uint64_t key = mix64(index ^ m_salt);  // a bijection of the index
    std::string& id = m_conversation_id;
    id.clear();
    switch (family) {
      case Family::one_to_one:
        m_members.push_back(detail::make_person(pool_size + 1 + index, m_salt));
        id = m_members.back().mri;
        break;
      case Family::bot: {
        Participant bot;
        bot.mri = "28:";
        append_hex(bot.mri, key >> 32, 8);
        bot.mri += '-';
        append_hex(bot.mri, key >> 16, 4);
        bot.mri += '-';
        append_hex(bot.mri, key, 4);
        bot.mri += '-';
        append_hex(bot.mri, m_rng.next(), 4);
        bot.mri += '-';
        append_hex(bot.mri, m_rng.next(), 12);
        bot.handle = bot.mri;
        bot.name = m_rng.pick(bot_names);
        id = bot.mri;
        m_members.push_back(std::move(bot));
        break;
      }
      case Family::calllogs:
      case Family::notes:
        id = family == Family::calllogs ? "48:calllogs" : "48:notes";
        if (family == Family::calllogs) add_pool_members(2 + m_rng.below(20));
        break;
      case Family::phone: {
        Participant phone;
        phone.mri = "4:+1";
        append_uint(phone.mri, 2'025'550'000ULL + index);
        phone.handle = phone.mri;
        phone.name = phone.mri.substr(2);
        id = phone.mri;
        m_members.push_back(std::move(phone));
        break;
      }
      case Family::guest: {
        Participant guest = detail::make_person(pool_size + 1 + index, m_salt);
        guest.mri = "guest:";
        guest.mri += guest.name.substr(0, guest.name.find(' '));
        guest.mri += '_';
        append_hex(guest.mri, key, 16);
        guest.handle = guest.mri;
        id = guest.mri;
        m_members.push_back(std::move(guest));
        break;
      }
      default: {
        const std::uint64_t r = m_rng.below(100);
        add_pool_members(r < 70   ? 2 + m_rng.below(7)
                         : r < 95 ? 9 + m_rng.below(22)
                                  : 31 + m_rng.below(90));
        id = "19:";
        if (family == Family::p2p) {
          std::string raw(16, '\0');
          const std::uint64_t extra = m_rng.next();
          for (int b = 0; b < 8; ++b) raw[b] = static_cast<char>(key >> (8 * b));
          for (int b = 0; b < 8; ++b) raw[8 + b] = static_cast<char>(extra >> (8 * b));
          detail::append_base64(id, raw);
          while (id.back() == '=') id.pop_back();
          id += "@p2p.thread.skype";
        } else {
          append_hex(id, key, 16);
          append_hex(id, m_rng.next(), 8);
          id += family == Family::thread_skype ? "@thread.skype"
                : family == Family::thread_v2  ? "@thread.v2"
                                               : "@cast.skype";
        }
      }
    }
  }

  void add_pool_members(std::uint64_t count) {
    // An odd stride over a power-of-two pool visits distinct people.
    const std::uint64_t start = m_rng.below(pool_size);
    const std::uint64_t stride = m_rng.below(pool_size / 2) * 2 + 1;
    for (std::uint64_t j = 0; j < count && j < pool_size; ++j) {
      m_members.push_back(detail::make_person(1 + ((start + j * stride) % pool_size), m_salt));
    }
  }

  void write_conversation(std::size_t index, Family family, std::uint64_t count, bool recent) {
    setup_conversation(index, family);
    m_conversation_index_key = index;
    m_messages_in_conversation = 0;
    const bool quirks = m_options.quirks;
    const bool group = is_group(family);
    const std::uint64_t lang = m_rng.below(100);
    m_language = lang < 60   ? Language::english
                 : lang < 72 ? Language::russian
                 : lang < 82 ? Language::cjk
                 : lang < 95 ? Language::european
                             : Language::mixed;
    m_owner_from_bare = m_rng.chance(3000);

    const std::int64_t newest = m_export_ms - (recent ? m_rng.between(60'000, 30 * day_ms)
                                                      : m_rng.between(3'600'000, 3 * 365 * day_ms));
    m_out.append("{\"id\":");
    put_string(m_conversation_id);

    // displayName: plain, null (fall back to the topic) or with HTML.
    m_topic.clear();
    m_builder.append_topic(m_topic);
    m_out.append(",\"displayName\":");
    const std::uint64_t dn = m_rng.below(100);
    if (family == Family::calllogs || family == Family::notes || dn < 15) {
      m_out.append("null");
    } else if (group) {
      if (dn < 35) {
        m_text = "<b>";
        m_text += m_topic;
        m_text += "</b> &amp; friends";
        put_string(m_text);
      } else {
        put_string(m_topic);
      }
    } else {
      put_string(m_members.back().name);
    }
    m_out.append(",\"version\":");
    m_text.clear();
    append_int(m_text, newest + m_rng.between(0, 10'000));
    m_text += ".0";
    m_out.append(m_text);

    if (!(quirks && m_rng.chance(300))) {
      m_out.append(",\"properties\":");
      if (m_rng.chance(8500)) {
        m_text = "{\"conversationblocked\":false,\"lastimreceivedtime\":\"";
        append_timestamp(m_text, newest, Fraction::three);
        m_text += "\",\"consumptionhorizon\":\"";
        append_int(m_text, newest);
        m_text += ';';
        append_int(m_text, newest + m_rng.between(0, 100'000));
        if (m_rng.chance(8000)) {
          m_text += ';';
          append_uint(m_text, m_rng.next() >> 1);
        }
        m_text += "\",\"conversationstatus\":";
        m_text += m_rng.chance(8000) ? "null}" : "\"Accepted\"}";
        m_out.append(m_text);
      } else {
        m_out.append("null");
      }
    }
    if (group) {
      write_thread_properties();
    } else if (!(quirks && m_rng.chance(500))) {
      m_out.append(",\"threadProperties\":null");
    }
    m_out.append(",\"MessageList\":[");
    // The conversation id appears in every message: escape it once.
    m_conversation_id_json.clear();
    detail::escape_json(m_conversation_id_json, m_conversation_id, false);
    write_messages(family, count, newest);
    m_out.append("]}");
  }

  void write_thread_properties() {
    const bool quirks = m_options.quirks;
    m_text = ",\"threadProperties\":{\"membercount\":";
    const bool count_as_string = quirks && m_rng.chance(500);
    if (count_as_string) m_text += '"';
    append_uint(m_text, m_members.size());
    if (count_as_string) m_text += '"';
    m_text += ",\"members\":";
    m_out.append(m_text);
    // A JSON array inside a string; ids with and without the "8:" prefix, or (a quirk)
    // objects {"MemberMri": ...}.
    const bool objects = quirks && m_rng.chance(1000);
    m_inner.clear();
    m_inner += '[';
    for (std::size_t i = 0; i < m_members.size(); ++i) {
      if (i > 0) m_inner += ',';
      const Participant& p = m_members[i];
      const bool bare = i == 0 ? m_owner_from_bare : m_rng.chance(1500);
      if (objects) m_inner += "{\"MemberMri\":";
      m_inner += '"';
      m_inner += bare ? p.handle : p.mri;
      m_inner += '"';
      if (objects) m_inner += '}';
    }
    m_inner += ']';
    put_string(m_inner);
    if (!m_rng.chance(1000)) {
      m_out.append(",\"topic\":");
      put_string(m_topic);
    }
    m_out.put('}');
  }

  void write_messages(Family family, std::uint64_t count, std::int64_t newest) {
    // Gaps between messages: mostly seconds to minutes, some hours and days. Long
    // histories are compressed so that they start after 2006.
    constexpr std::int64_t mean_gap_ms = 78'474'000;
    const std::int64_t budget = (newest - earliest_ms) / 10 * 8;
    std::uint64_t scale = 1u << 20;  // fixed point, 1.0 = 2^20
    if (count > 0 && static_cast<std::int64_t>(count) > budget / mean_gap_ms) {
      scale = static_cast<std::uint64_t>(budget / static_cast<std::int64_t>(count)) * (1u << 20) /
              mean_gap_ms;
    }
    const bool group = is_group(family);
    write_newer_messages(family, count * m_options.newer_percent / 100, newest);
    std::int64_t previous = newest + 600'000;
    std::int64_t t = newest;
    std::uint64_t position = 0;
    std::uint64_t remaining = count;
    while (remaining > 0) {
      Fraction fraction = Fraction::three;
      const std::uint64_t f = m_rng.below(100);
      if (f < 4) {
        fraction = Fraction::none;
        t = t / 1000 * 1000;
      } else if (f < 14) {
        fraction = Fraction::two;
        t = t / 10 * 10;
      }
      MessageKind kind = m_kinds.draw(family, m_rng);
      if (remaining == 1 && family == Family::one_to_one && m_rng.chance(3000)) {
        kind = MessageKind::invite_free_initialized;  // the first event of a 1:1 chat
      }
      const Participant& sender = pick_sender(family);
      build_message(kind, sender, group, t);

      // Ids are the arrival time in ms, or (2%) a 19-digit client id; both never repeat
      // inside a conversation except for the deliberate duplicates below.
      m_id.clear();
      if (m_rng.chance(200)) {
        append_uint(m_id, (std::uint64_t{1} << 62) +
                              detail::mix62((m_conversation_index_key << 32) ^ position));
      } else {
        append_int(m_id, t);
      }

      const bool duplicate = m_options.quirks && can_be_edited(kind) && remaining >= 2 &&
                             previous - t >= 2 && m_rng.chance(100);
      decorate(kind, sender, t);
      if (duplicate) {
        // A server-side duplicate of an edited message: same id and content, later
        // arrival, higher version, listed first (newest first).
        const std::int64_t dup_t =
            t + m_rng.between(1, std::min<std::int64_t>(previous - t - 1, 600'000));
        m_dup_properties.clear();
        m_dup_properties += "\"edittime\":\"";
        append_int(m_dup_properties, dup_t);
        m_dup_properties += "\",\"isserversidegenerated\":";
        m_dup_properties += m_rng.chance(5000) ? "true" : "\"True\"";
        write_message(kind, sender, dup_t, Fraction::three, m_dup_properties);
        ++m_duplicates;
        --remaining;
      }
      write_message(kind, sender, t, fraction, m_message.properties);
      --remaining;
      ++position;
      previous = t;
      t -= gap(scale);
    }
  }

  // m_message: the content and properties of a message of `kind` from `sender` at `t`.
  void build_message(MessageKind kind, const Participant& sender, bool group, std::int64_t t) {
    MessageContext context;
    context.sender = &sender;
    context.members = &m_members;
    context.conversation_id = m_conversation_id;
    context.arrival_ms = t;
    context.language = m_language;
    context.group = group;
    context.quirks = m_options.quirks;
    m_message.clear();
    m_builder.build(kind, context, m_message);
  }

  // GeneratorOptions::newer_percent: `count` messages a minute apart, after `newest` and
  // the 10 minutes in which a duplicate of it may arrive. They are drawn from a copy of
  // the generator's state, which is then put back: the conversation's other messages come
  // out as without them.
  void write_newer_messages(Family family, std::uint64_t count, std::int64_t newest) {
    if (count == 0) return;
    const Rng saved = m_rng;
    for (std::uint64_t i = count; i > 0; --i) {
      const std::int64_t t = newest + 600'000 + static_cast<std::int64_t>(i) * 60'000;
      const MessageKind kind = m_kinds.draw(family, m_rng);
      const Participant& sender = pick_sender(family);
      build_message(kind, sender, is_group(family), t);
      m_id.clear();
      append_int(m_id, t);
      decorate(kind, sender, t);
      write_message(kind, sender, t, Fraction::three, m_message.properties);
    }
    m_rng = saved;
  }

  std::int64_t gap(std::uint64_t scale) {
    const std::uint64_t r = m_rng.below(100);
    std::int64_t g = r < 55   ? m_rng.between(1'000, 120'000)
                     : r < 80 ? m_rng.between(120'000, 3'600'000)
                     : r < 92 ? m_rng.between(3'600'000, day_ms)
                              : m_rng.between(day_ms, 20 * day_ms);
    g = static_cast<std::int64_t>(static_cast<std::uint64_t>(g) * scale >> 20);
    // At least a second apart: arrival times (and the ids taken from them) stay distinct.
    return g >= 1000 ? g : 1000 + m_rng.between(0, 1000);
  }

  const Participant& pick_sender(Family family) {
    switch (family) {
      case Family::notes:
        return m_members[0];
      case Family::calllogs:
      case Family::thread_skype:
      case Family::thread_v2:
      case Family::p2p:
      case Family::cast: {
        if (m_rng.chance(2000)) return m_members[0];
        // Skewed: the first few members write most.
        const std::uint64_t n = m_members.size();
        const std::uint64_t a = m_rng.below(n);
        const std::uint64_t b = m_rng.below(n);
        return m_members[a * b / n];
      }
      default:
        return m_rng.chance(4500) ? m_members[0] : m_members[1];
    }
  }

  // Edits, deletions, reactions and server flags: they change content and properties.
  void decorate(MessageKind kind, const Participant& sender, std::int64_t t) {
    std::string& props = m_message.properties;
    const auto add = [&props](std::string_view member) {
      if (!props.empty()) props += ',';
      props += member;
    };
    const bool quirks = m_options.quirks;
    if (can_be_edited(kind)) {
      const std::uint64_t r = m_rng.below(1000);
      if (r < 30) {
        const std::int64_t edit = t + m_rng.between(5'000, 3'600'000);
        const bool as_number = quirks && m_rng.chance(3000);
        add(as_number ? "\"edittime\":" : "\"edittime\":\"");
        append_int(props, edit);
        if (!as_number) props += '"';
        if (r < 12) m_message.content.insert(0, "Edited previous message: ");
        if (kind == MessageKind::rich_text && r < 20) append_edit_marker(sender, edit);
      } else if (r < 40) {
        const std::int64_t when = t + m_rng.between(5'000, 86'400'000);
        m_message.content.clear();
        if (kind == MessageKind::rich_text && r < 35) append_edit_marker(sender, when);
        m_message.ams_references.clear();
        const bool as_number = quirks && m_rng.chance(3000);
        props.clear();
        add(as_number ? "\"deletetime\":" : "\"deletetime\":\"");
        append_int(props, when);
        if (!as_number) props += '"';
      } else if (r < 60 && kind == MessageKind::rich_text) {
        add("\"emotions\":[{\"key\":\"");
        props += m_rng.chance(6000) ? "like" : "heart";
        props += "\",\"users\":[{\"mri\":\"";
        props += m_members[m_rng.below(m_members.size())].mri;
        props += "\",\"time\":";
        const std::int64_t when = t + m_rng.between(1'000, 600'000);
        append_int(props, when);
        props += ",\"value\":\"";
        append_int(props, when);
        props += "\"}]}]";
      }
    }
    if (is_thread_activity(kind)) {
      add(quirks && m_rng.chance(3000) ? "\"isserversidegenerated\":\"True\""
                                       : "\"isserversidegenerated\":true");
    }
  }

  void append_edit_marker(const Participant& sender, std::int64_t when) {
    std::string& s = m_message.content;
    s += "<e_m ts=\"";
    append_int(s, when / 1000);
    s += "\" ts_ms=\"";
    append_int(s, when);
    s += "\" a=\"";
    s += sender.handle;
    s += "\" t=\"61\"/>";
  }

  void write_message(MessageKind kind, const Participant& sender, std::int64_t t, Fraction fraction,
                     std::string_view properties) {
    const bool quirks = m_options.quirks;
    const bool owner = &sender == &m_members[0];
    std::string& s = m_text;
    s = m_messages_in_conversation++ > 0 ? ",{\"id\":\"" : "{\"id\":\"";
    s += m_id;
    s += '"';
    if (!(quirks && m_rng.chance(50))) {
      s += ",\"displayName\":";
      if (owner) {
        s += "null";
      } else {
        s += '"';
        detail::escape_json(s, sender.name, false);
        s += '"';
      }
    }
    s += ",\"originalarrivaltime\":\"";
    append_timestamp(s, t, fraction);
    s += "\",\"messagetype\":\"";
    s += message_type_name(kind);
    s += '"';
    if (!(quirks && m_rng.chance(20))) {
      s += ",\"version\":";
      append_int(s, t);
      if (!(quirks && m_rng.chance(500))) s += ".0";
    }
    s += ",\"content\":\"";
    m_out.append(s);
    detail::escape_json(m_out, m_message.content, m_rng.chance(400));
    s = "\",\"conversationid\":\"";
    s += m_conversation_id_json;
    s += "\",\"from\":\"";
    const bool bare = owner ? m_owner_from_bare : m_rng.chance(300);
    s += bare ? sender.handle : sender.mri;
    s += '"';
    if (!(quirks && m_rng.chance(100))) {
      s += ",\"properties\":";
      if (properties.empty()) {
        s += "null";
      } else {
        s += '{';
        s += properties;
        s += '}';
      }
      s += ",\"amsreferences\":";
      s += m_message.ams_references.empty() ? std::string_view("null")
                                            : std::string_view(m_message.ams_references);
    }
    s += '}';
    m_out.append(s);
    ++m_messages;
    ++m_by_kind[static_cast<std::size_t>(kind)];
  }

  const GeneratorOptions& m_options;
  OutputBuffer& m_out;
  Rng m_rng;
  ContentBuilder m_builder;
  KindTable m_kinds;
  std::uint64_t m_salt;
  std::int64_t m_export_ms = 0;
  Participant m_owner;
  bool m_owner_from_bare = false;
  Language m_language = Language::english;
  std::vector<Participant> m_members;
  std::string m_conversation_id;
  std::string m_conversation_id_json;
  std::uint64_t m_conversation_index_key = 0;
  std::uint64_t m_messages_in_conversation = 0;
  std::string m_topic;
  std::string m_text;
  std::string m_inner;
  std::string m_id;
  std::string m_dup_properties;
  BuiltMessage m_message;
  std::uint64_t m_messages = 0;
  std::uint64_t m_duplicates = 0;
  std::array<std::uint64_t, detail::message_kind_count> m_by_kind{};
};

}  // namespace

GeneratorSummary generate_export(const GeneratorOptions& options,
                                 const std::filesystem::path& out) {
  if (options.user_id.empty()) throw std::invalid_argument("generator: user_id is empty");
  if (options.messages > 100'000'000'000ULL) {
    throw std::invalid_argument("generator: at most 10^11 messages");
  }
  if (options.conversations > 0xffffffffULL) {
    throw std::invalid_argument("generator: at most 2^32 - 1 conversations");
  }
  GeneratorSummary summary;
  OutputBuffer file(out);
  ExportWriter writer(options, file);
  const bool tar = options.format == GeneratorOptions::Format::tar;
  // The archive layout draws from its own stream, so messages.json is the same bytes in
  // both formats.
  Rng layout(mix64(options.seed ^ 0x7a7a7a7a7a7a7a7aULL));
  const bool endpoints_first = tar && layout.chance(5000);
  const auto mtime = static_cast<std::uint64_t>(writer.export_ms() / 1000);
  const auto add_endpoints = [&] {
    const auto header = tar_header("endpoints.json", endpoints_json.size(), mtime);
    file.append(header.data(), header.size());
    file.append(endpoints_json);
    pad_to_block(file);
  };
  std::uint64_t header_offset = 0;
  if (tar) {
    if (endpoints_first) add_endpoints();
    header_offset = file.position();
    const auto placeholder = tar_header("messages.json", 0, mtime);
    file.append(placeholder.data(), placeholder.size());
  }
  const std::uint64_t json_start = file.position();
  writer.write(summary);
  summary.json_bytes = file.position() - json_start;
  if (tar) {
    pad_to_block(file);
    if (!endpoints_first) add_endpoints();
    static const char zeros[1024] = {};
    file.append(zeros, sizeof zeros);
    const auto header = tar_header("messages.json", summary.json_bytes, mtime);
    file.overwrite(header_offset, std::string_view(header.data(), header.size()));
  }
  summary.file_bytes = file.position();
  file.close();
  return summary;
}

}  // namespace skype_etl::gen
