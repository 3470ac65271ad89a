#include "content_builder.hpp"

#include <cstdio>

#include "text_format.hpp"

namespace skype_etl::gen::detail {
namespace {

constexpr std::string_view type_names[] = {
    "Text",
    "RichText",
    "RichText/Html",
    "RichText/UriObject",
    "RichText/Media_GenericFile",
    "RichText/Media_Video",
    "RichText/Media_AudioMsg",
    "RichText/Media_Album",
    "RichText/Media_Card",
    "RichText/Media_FlikMsg",
    "RichText/Media_CallRecording",
    "RichText/Files",
    "RichText/Contacts",
    "RichText/Location",
    "RichText/ScheduledCallInvite",
    "Event/Call",
    "Event/BingBot",
    "Poll",
    "Notice",
    "PopCard",
    "InviteFreeRelationshipChanged/Initialized",
    "ThreadActivity/AddMember",
    "ThreadActivity/DeleteMember",
    "ThreadActivity/TopicUpdate",
    "ThreadActivity/PictureUpdate",
    "ThreadActivity/RoleUpdate",
    "ThreadActivity/HistoryDisclosedUpdate",
    "ThreadActivity/JoiningEnabledUpdate",
    "ThreadActivity/E2EEHandshakeInvite",
    "ThreadActivity/E2EEHandshakeAccept",
    "ThreadActivity/E2EEHandshakeComplete",
    "ThreadActivity/E2EEHandshakeReject",
    "EndToEndEncryption/EncryptedText",
    "EndToEndEncryption/EncryptedMedia",
    "Signal/Flamingo",
};
static_assert(std::size(type_names) == message_kind_count);

// Chat phrases. They carry what the loader must survive: apostrophes and ampersands
// (entities in RichText), double quotes and backslashes (JSON escapes), '<' and '>',
// Cyrillic, CJK, accents and emoji outside the BMP (surrogate pairs when \u-escaped).
constexpr std::string_view english[] = {
    "ok",
    "lol",
    "sure",
    "k",
    "thanks!",
    "yes!",
    "nope",
    "brb",
    "call me",
    "where are you?",
    "see you tomorrow",
    "sounds good \xF0\x9F\x91\x8D",
    "haha \xF0\x9F\x98\x82",
    "I'll call you later",
    "Can't make it today, sorry",
    "what's the plan for the weekend?",
    "Tom & Jerry are coming too",
    "he said \"no way\" and left",
    "meeting moved to 3pm",
    "Did you get my email?",
    "running 5 min late",
    "Happy birthday!! \xF0\x9F\x8E\x89\xF0\x9F\x8E\x82",
    "x < y but y > z, right?",
    "the build is broken again",
    "can you send me the file?",
    "I'm at the airport",
    "Good morning \xE2\x98\x80\xEF\xB8\x8F",
    "let's do it",
    "ping me when you're free",
    "50% off & free shipping \xF0\x9F\x94\xA5",
    "It's done",
    "Merry Christmas & Happy New Year! \xF0\x9F\x8E\x84",
    "just landed",
    "ok, I'll check it tonight",
    "did you see the game last night?",
    "no worries",
    "hi",
    "hey",
    "ty",
    "np",
    "haha",
    "good night",
    "\xF0\x9F\x91\x8D",
    "omw",
    "yep",
    "on my way",
    "wait",
    "cool",
};
constexpr std::string_view russian[] = {
    "Привет! Как дела?",
    "Созвонимся завтра в 10:00",
    "Ок, договорились",
    "Спасибо большое!",
    "Я уже еду",
    "С днём рождения! \xF0\x9F\x8E\x89",
    "Посмотри, пожалуйста, документ",
    "Ну что, идём в кино?",
    "Да",
    "Нет, не получится",
    "Буду через 15 минут",
    "Всё отлично \xF0\x9F\x91\x8D",
    "«Ёлки» в субботу?",
};
constexpr std::string_view cjk[] = {
    "你好！明天见",
    "好的，没问题",
    "谢谢你的帮助 \xF0\x9F\x99\x8F",
    "我们几点开会？",
    "了解しました。よろしくお願いします。",
    "今日は忙しいです",
    "ありがとう！\xF0\x9F\x98\x8A",
    "안녕하세요! 잘 지내세요?",
    "회의는 3시에 시작합니다",
    "네, 알겠습니다",
    "周末一起吃饭吧 \xF0\x9F\x8D\x9C",
    "我在路上",
};
constexpr std::string_view european[] = {
    "Café à 8h ? Très bien !",
    "¿Dónde estás? ¡Llámame!",
    "Schöne Grüße aus Zürich",
    "Tschüss, bis morgen",
    "Obrigado, até amanhã!",
    "Tere! Kuidas läheb?",
    "naïve façade, déjà vu",
    "Grüße an die Familie \xE2\x9D\xA4\xEF\xB8\x8F",
    "Ça marche \xF0\x9F\x91\x8C",
    "Zażółć gęślą jaźń",
    "Þetta reddast",
    "São Paulo está ótimo",
};
constexpr std::string_view emoji[] = {
    "\xF0\x9F\x98\x80",         "\xF0\x9F\x98\x82", "\xF0\x9F\x91\x8D", "\xF0\x9F\x8E\x89",
    "\xE2\x9D\xA4\xEF\xB8\x8F", "\xF0\x9F\x99\x8F", "\xF0\x9F\x98\x8A", "\xF0\x9F\x94\xA5",
    "\xF0\x9F\x91\x80",         "\xF0\x9F\xA4\x94", "\xF0\x9F\x98\xA2", "\xF0\x9F\x9A\x80",
};
// Numeric character references as Skype writes some emoji in RichText.
constexpr std::string_view emoji_entities[] = {"&#128512;", "&#128514;", "&#128077;", "&#127881;",
                                               "&#10084;&#65039;"};
constexpr std::string_view emoticons[] = {
    "<ss type=\"smile\">:)</ss>",
    "<ss type=\"laugh\">:D</ss>",
    "<ss type=\"heart\">(heart)</ss>",
    "<ss type=\"wink\">;)</ss>",
    "<ss type=\"sad\">:(</ss>",
    "<ss type=\"cool\">(cool)</ss>",
    "<ss type=\"hi\">(wave)</ss>",
    "<ss type=\"like\">(like)</ss>",
    "<ss type=\"1f440_eyes\">(1f440_eyes)</ss>",
    "<ss type=\"poolparty\">(poolparty)</ss>",
};
constexpr std::string_view bare_emoticons[] = {"(rocknroll)", "(beer)", "(coffee)", "(bow)"};
constexpr std::string_view flags[] = {"ee", "de", "jp", "br", "ua", "us"};
constexpr std::string_view first_names[] = {
    "Anna", "John",    "María",   "Jörg", "François", "Siobhán", "Tom",  "Priya",
    "Олег", "Наталья", "Дмитрий", "王伟", "李娜",     "佐藤",    "민준", "Ahmed",
    "Zoë",  "Łukasz",  "Mart",    "Kati", "Chloé",    "Björn",   "Ayşe", "Sam",
};
constexpr std::string_view last_names[] = {
    "Smith", "O'Brien", "Müller", "García",   "Иванов", "Петрова", "陈",  "Tanaka",
    "Kim",   "Tamm",    "Dubois", "Kowalski", "Silva",  "Nguyen",  "Lee", "Jones",
};
// ASCII spellings of last_names, index for index, for handles.
constexpr std::string_view last_handles[] = {
    "smith", "obrien", "mueller", "garcia",   "ivanov", "petrova", "chen", "tanaka",
    "kim",   "tamm",   "dubois",  "kowalski", "silva",  "nguyen",  "lee",  "jones",
};
static_assert(std::size(last_handles) == std::size(last_names));
constexpr std::string_view handles[] = {
    "anna", "john",    "maria", "joerg",   "francois", "siobhan", "tom",    "priya",
    "oleg", "natasha", "dima",  "wangwei", "lina",     "sato",    "minjun", "ahmed",
    "zoe",  "lukasz",  "mart",  "kati",    "chloe",    "bjorn",   "ayse",   "sam",
};
constexpr std::string_view topics[] = {
    "Family",
    "Семья",
    "项目组",
    "Project Apollo \xF0\x9F\x9A\x80",
    "Friday \"Beer\" Club",
    "C:\\dev team",
    "Müller & Söhne",
    "Book club \xF0\x9F\x93\x9A",
    "Class of 2009",
    "Ski trip 2019 \xE2\x9B\xB7",
    "Frontend <-> Backend",
    "同窓会",
    "Volleyball",
    "Hackathon: day 1",
};
constexpr std::string_view file_names[] = {
    "IMG_2041.jpg",   "report Q3 & plan.xlsx",
    "отчёт.pdf",      "写真.png",
    "résumé.docx",    "notes.txt",
    "screenshot.png", "invoice_2021-03.pdf",
    "holiday.mp4",    "presentation (final).pptx",
};
constexpr std::string_view regions[] = {"weu", "eus", "neu", "sa", "eas", "wus"};
constexpr std::string_view link_urls[] = {
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://github.com/skype-etl/skype-etl/issues/42",
    "https://example.com/search?q=skype&amp;lang=en",
    "https://ru.wikipedia.org/wiki/%D0%A1%D0%BA%D0%B0%D0%B9%D0%BF",
    "https://maps.google.com/?q=59.4370,24.7536",
    "https://news.ycombinator.com/item?id=23456789",
};
constexpr std::string_view places[] = {
    "Kesklinn, Tallinn, 10146 Harju Maakond, Estonia",
    "Alexanderplatz, 10178 Berlin, Germany",
    "Красная площадь, Москва, Россия",
    "東京都渋谷区, Japan",
    "Rua Augusta, São Paulo, Brazil",
};
constexpr std::string_view notice_titles[] = {
    "Skype Number expires soon", "Your subscription was renewed", "New sign-in to your account",
    "Skype Credit: 5 minutes left"};

}  // namespace

std::string_view message_type_name(MessageKind kind) {
  return type_names[static_cast<std::size_t>(kind)];
}

Participant make_person(std::uint64_t key, std::uint64_t salt) {
  const std::uint64_t h = mix64(key ^ salt);
  Participant p;
  const std::string_view first = first_names[h % std::size(first_names)];
  const std::size_t last_index = (h >> 8) % std::size(last_names);
  const std::string_view last = last_names[last_index];
  const std::string_view handle = handles[(h >> 16) % std::size(handles)];
  // The key is embedded bijectively (hex of mix64) or verbatim as the only digits of the
  // handle, so two keys never give one id.
  switch ((h >> 24) % 10) {
    case 0:
    case 1:
      p.handle = "live:.cid.";
      append_hex(p.handle, mix64(key + salt * 0x9e3779b97f4a7c15ULL), 16);
      break;
    case 2:
    case 3:
      p.handle = "live:";
      p.handle += handle;
      p.handle += '_';
      append_uint(p.handle, key);
      break;
    default:
      p.handle = handle;
      p.handle += '.';
      p.handle += last_handles[last_index];
      append_uint(p.handle, key);
  }
  p.mri = "8:" + p.handle;
  p.name = first;
  switch ((h >> 32) % 6) {
    case 0:
      break;  // first name only
    case 1:
      p.name += " \xF0\x9F\x8C\xB8";  // an emoji in the display name
      break;
    default:
      p.name += ' ';
      p.name += last;
  }
  return p;
}

void ContentBuilder::append_plain_text(std::string& out, Language language) {
  const int phrases = m_rng.chance(8500) ? 1 : (m_rng.chance(8000) ? 2 : 3);
  for (int i = 0; i < phrases; ++i) {
    if (i > 0) out += m_rng.chance(2000) ? "\n" : " ";
    Language l = language;
    if (l == Language::mixed) l = static_cast<Language>(m_rng.below(4));
    if (l != Language::english && m_rng.chance(1500)) l = Language::english;
    switch (l) {
      case Language::russian:
        out += m_rng.pick(russian);
        break;
      case Language::cjk:
        out += m_rng.pick(cjk);
        break;
      case Language::european:
        out += m_rng.pick(european);
        break;
      default:
        out += m_rng.pick(english);
    }
  }
  if (m_rng.chance(800)) {
    out += ' ';
    out += m_rng.pick(emoji);
  }
}

void ContentBuilder::append_topic(std::string& out) {
  out += m_rng.pick(topics);
}

void ContentBuilder::append_xml_escaped(std::string& out, std::string_view text) {
  for (const char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += ch;
    }
  }
}

void ContentBuilder::append_json_string(std::string& out, std::string_view text) {
  out += '"';
  escape_json(out, text, false);
  out += '"';
}

const Participant& ContentBuilder::random_member(const MessageContext& c) {
  return (*c.members)[m_rng.below(c.members->size())];
}

void ContentBuilder::append_doc_id(std::string& out) {
  out += "0-";
  out += m_rng.pick(regions);
  out += "-d";
  out += static_cast<char>('1' + m_rng.below(9));
  out += '-';
  append_hex(out, m_rng.next(), 16);
  append_hex(out, m_rng.next(), 16);
}

void ContentBuilder::append_uuid(std::string& out) {
  const std::uint64_t a = m_rng.next();
  const std::uint64_t b = m_rng.next();
  append_hex(out, a >> 32, 8);
  out += '-';
  append_hex(out, a >> 16, 4);
  out += "-4";
  append_hex(out, a, 3);
  out += '-';
  append_hex(out, 0x8000 | (b >> 48 & 0x3fff), 4);
  out += '-';
  append_hex(out, b, 12);
}

void ContentBuilder::append_link(std::string& out, BuiltMessage& message) {
  const std::string_view url = m_rng.pick(link_urls);
  out += "<a href=\"";
  out += url;
  out += "\">";
  out += url;
  out += "</a>";
  message.has_link = true;
}

void ContentBuilder::build(MessageKind kind, const MessageContext& c, BuiltMessage& out) {
  switch (kind) {
    case MessageKind::text:
      plain_text(c, out);
      break;
    case MessageKind::rich_text:
      rich_text(c, out);
      break;
    case MessageKind::rich_text_html:
      html(c, out);
      break;
    case MessageKind::uri_object:
      uri_object("Picture.1", c, out);
      break;
    case MessageKind::media_generic_file:
      uri_object("File.1", c, out);
      break;
    case MessageKind::media_video:
      uri_object("Video.1/Message.1", c, out);
      break;
    case MessageKind::media_audio_msg:
      uri_object("Audio.1/Message.1", c, out);
      break;
    case MessageKind::media_flik_msg:
      uri_object("Video.1/Flik.1", c, out);
      break;
    case MessageKind::media_call_recording:
      uri_object("Video.2/CallRecording.1", c, out);
      break;
    case MessageKind::media_album:
      album(c, out);
      break;
    case MessageKind::media_card:
      swift_card(c, out);
      break;
    case MessageKind::files:
      files(c, out);
      break;
    case MessageKind::contacts:
      contacts(c, out);
      break;
    case MessageKind::location:
      location(c, out);
      break;
    case MessageKind::scheduled_call_invite:
      scheduled_call(c, out);
      break;
    case MessageKind::event_call:
      call(c, out);
      break;
    case MessageKind::event_bing_bot:
      bing_bot(c, out);
      break;
    case MessageKind::poll:
      poll(c, out);
      break;
    case MessageKind::notice:
      notice(c, out, false);
      break;
    case MessageKind::pop_card:
      notice(c, out, true);
      break;
    case MessageKind::encrypted_text:
      encrypted(c, out, false);
      break;
    case MessageKind::encrypted_media:
      encrypted(c, out, true);
      break;
    case MessageKind::unknown:
      out.content = "<flamingo id=\"";
      append_uuid(out.content);
      out.content += "\" type=\"signal\"/>";
      break;
    default:
      thread_activity(kind, c, out);
  }
}

void ContentBuilder::plain_text(const MessageContext& c, BuiltMessage& out) {
  std::string& s = out.content;
  const std::uint64_t r = m_rng.below(1000);
  if (r < 40) {
    s += "if (x < 10 && y > 2) return \"ok\";";
  } else if (r < 70) {
    s += "saved it to C:\\Users\\anna\\Desktop\\notes.txt";
  } else if (r < 90) {
    s += "name\tqty\tprice\nbolts\t12\t0.50\nnuts\t30\t0.10";
  } else if (r < 105) {
    // A line holding only "\." ends COPY text input unless it is escaped.
    s += "end of data:\n\\.\nnot the end";
  } else if (r < 140) {
    s += "I <3 you";
  } else {
    append_plain_text(s, c.language);
  }
}

void ContentBuilder::rich_text(const MessageContext& c, BuiltMessage& out) {
  std::string& s = out.content;
  m_scratch.clear();
  append_plain_text(m_scratch, c.language);
  const std::uint64_t r = m_rng.below(10000);
  if (c.group && r < 500) {
    if (r < 30) {
      s += "<at id=\"*\">all</at> ";
    } else {
      const Participant& p = random_member(c);
      s += "<at id=\"";
      s += p.mri;
      s += "\">";
      append_xml_escaped(s, p.name);
      s += "</at> ";
    }
  } else if (r >= 500 && r < 600) {
    // A quote of an earlier message, then the reply.
    const Participant& p = random_member(c);
    const std::int64_t quoted_ms = c.arrival_ms - m_rng.between(60'000, 86'400'000);
    s += "<quote author=\"";
    s += p.mri;
    s += "\" authorname=\"";
    append_xml_escaped(s, p.name);
    s += "\" timestamp=\"";
    append_int(s, quoted_ms / 1000);
    s += "\" conversation=\"";
    s += c.conversation_id;
    s += "\" messageid=\"";
    append_int(s, quoted_ms);
    s += "\"><legacyquote>[";
    append_int(s, quoted_ms / 1000);
    s += "] ";
    append_xml_escaped(s, p.name);
    s += ": </legacyquote>";
    std::string_view quoted = m_rng.pick(english);
    append_xml_escaped(s, quoted);
    s += "<legacyquote>\n\n&lt;&lt;&lt; </legacyquote></quote>";
  }

  const std::uint64_t style = m_rng.below(10000);
  if (style < 150) {
    s += "<b raw_pre=\"*\" raw_post=\"*\">";
    append_xml_escaped(s, m_scratch);
    s += "</b>";
  } else if (style < 250) {
    s += "<i raw_pre=\"_\" raw_post=\"_\">";
    append_xml_escaped(s, m_scratch);
    s += "</i>";
  } else if (style < 300) {
    s += "<s raw_pre=\"~\" raw_post=\"~\">";
    append_xml_escaped(s, m_scratch);
    s += "</s>";
  } else if (style < 330) {
    s += "<pre raw_pre=\"{code}\" raw_post=\"{code}\">for (int i = 0; i &lt; n; ++i) {\n\t"
         "sum += a[i] \\ 2;\n}</pre>";
  } else if (style < 350) {
    s += "<font color=\"#ff0000\">";
    append_xml_escaped(s, m_scratch);
    s += "</font>";
  } else if (style < 370 && c.quirks) {
    // Broken markup: an unclosed tag and a bare '<'.
    s += "<b>";
    append_xml_escaped(s, m_scratch);
    s += " <3";
  } else if (style < 380 && c.quirks) {
    // A control character that must be \u-escaped in JSON.
    append_xml_escaped(s, m_scratch);
    s += "\x07\x1b";
  } else {
    append_xml_escaped(s, m_scratch);
  }

  const std::uint64_t extra = m_rng.below(10000);
  if (extra < 500) {
    s += ' ';
    s += m_rng.pick(emoticons);
  } else if (extra < 800) {
    s += ' ';
    append_link(s, out);
  } else if (extra < 1000) {
    s += ' ';
    s += m_rng.pick(emoji_entities);
  } else if (extra < 1100) {
    s += "&nbsp;&mdash; ";
    s += m_rng.pick(bare_emoticons);
  } else if (extra < 1150) {
    s += " <flag country=\"";
    const std::string_view flag = m_rng.pick(flags);
    s += flag;
    s += "\">(flag:";
    s += flag;
    s += ")</flag>";
  } else if (extra < 1200) {
    s += " (1f440_eyes)";
  }
  if (out.has_link && m_rng.chance(2500)) {
    m_inner =
        "[{\"key\":\"https://www.youtube.com/watch?v=dQw4w9WgXcQ\",\"value\":{\"title\":"
        "\"Rick Astley - Never Gonna Give You Up\",\"description\":\"The official "
        "video\",\"thumbnail\":{\"url\":\"https://i.ytimg.com/vi/dQw4w9WgXcQ/"
        "hqdefault.jpg\",\"width\":480,\"height\":360}}}]";
    out.properties += "\"urlpreviews\":";
    append_json_string(out.properties, m_inner);
  }
  if (m_rng.chance(50)) {
    if (!out.properties.empty()) out.properties += ',';
    m_inner = "{\"originalMessageId\":\"";
    append_int(m_inner, c.arrival_ms - 3'600'000);
    m_inner += "\",\"originalConversationId\":\"19:";
    append_hex(m_inner, m_rng.next(), 16);
    m_inner += "@thread.skype\"}";
    out.properties += "\"forwardMetadata\":";
    append_json_string(out.properties, m_inner);
  }
}

void ContentBuilder::html(const MessageContext& c, BuiltMessage& out) {
  m_scratch.clear();
  append_plain_text(m_scratch, c.language);
  out.content += "<p><span style=\"font-weight:bold\">";
  append_xml_escaped(out.content, m_scratch);
  out.content += "</span><br/>";
  append_xml_escaped(out.content, m_rng.pick(english));
  out.content += "</p>";
}

void ContentBuilder::uri_object(std::string_view type, const MessageContext& c, BuiltMessage& out) {
  std::string& s = out.content;
  m_doc_id.clear();
  append_doc_id(m_doc_id);
  const bool picture = type == "Picture.1";
  const bool video = type.compare(0, 5, "Video") == 0;
  const bool audio = type.compare(0, 5, "Audio") == 0;
  s += "<URIObject uri=\"https://api.asm.skype.com/v1/objects/";
  s += m_doc_id;
  s += "\" url_thumbnail=\"https://api.asm.skype.com/v1/objects/";
  s += m_doc_id;
  s += picture ? "/views/imgt1_anim\" type=\"" : "/views/thumbnail\" type=\"";
  s += type;
  s += "\" doc_id=\"";
  s += m_doc_id;
  s += '"';
  if (picture || video) {
    s += " width=\"";
    append_int(s, m_rng.between(320, 4032));
    s += "\" height=\"";
    append_int(s, m_rng.between(240, 3024));
    s += '"';
  }
  s += '>';
  s += picture ? "To view this shared photo, go to: "
       : video ? "To view this video message, go to: "
       : audio ? "To hear this voice message, go to: "
               : "To view this file, go to: ";
  s += "<a href=\"https://login.skype.com/login/sso?go=xmmfallback?";
  s += picture ? "pic=" : video ? "vim=" : audio ? "audio=" : "docid=";
  s += m_doc_id;
  s += "\">https://login.skype.com/login/sso?go=xmmfallback?";
  s += picture ? "pic=" : video ? "vim=" : audio ? "audio=" : "docid=";
  s += m_doc_id;
  s += "</a><OriginalName v=\"";
  append_xml_escaped(s, audio   ? std::string_view("Voice message.m4a")
                        : video ? std::string_view("holiday.mp4")
                                : m_rng.pick(file_names));
  s += "\"></OriginalName><FileSize v=\"";
  append_int(s, m_rng.between(300, 25'000'000));
  s += "\"></FileSize>";
  if (picture) s += "<meta type=\"photo\" originalName=\"image.png\"></meta>";
  if (audio || video) {
    s += "<Duration>";
    append_int(s, m_rng.between(1, 600));
    s += "</Duration>";
  }
  s += "</URIObject>";
  out.ams_references = "[\"";
  out.ams_references += m_doc_id;
  out.ams_references += "\"]";
}

void ContentBuilder::album(const MessageContext& c, BuiltMessage& out) {
  const int pictures = static_cast<int>(m_rng.between(2, 4));
  std::string refs = "[";
  out.properties += "\"albumId\":\"";
  append_uuid(out.properties);
  out.properties += '"';
  for (int i = 0; i < pictures; ++i) {
    uri_object("Picture.1", c, out);
    if (i > 0) refs += ',';
    refs += '"';
    refs += m_doc_id;
    refs += '"';
  }
  refs += ']';
  out.ams_references = refs;
}

void ContentBuilder::swift_card(const MessageContext& c, BuiltMessage& out) {
  m_inner =
      "{\"type\":\"message/card\",\"attachments\":[{\"contentType\":"
      "\"application/vnd.microsoft.card.hero\",\"content\":{\"title\":\"";
  escape_json(m_inner, m_rng.pick(notice_titles), false);
  m_inner += "\",\"text\":\"";
  m_scratch.clear();
  append_plain_text(m_scratch, c.language);
  escape_json(m_inner, m_scratch, false);
  m_inner +=
      "\",\"buttons\":[{\"type\":\"openUrl\",\"title\":\"Open\",\"value\":"
      "\"https://www.skype.com/en/\"}]}}]}";
  out.content =
      "<URIObject type=\"SWIFT.1\" url_thumbnail=\"https://urlp.asm.skype.com/v1/url/"
      "content?url=https%3a%2f%2fwww.skype.com\"><Title>Skype</Title><Description>"
      "Card</Description><Swift b64=\"";
  append_base64(out.content, m_inner);
  out.content += "\"/></URIObject>";
}

void ContentBuilder::files(const MessageContext& c, BuiltMessage& out) {
  const int count = static_cast<int>(m_rng.between(1, 3));
  out.content = "<files alt=\"\">";
  for (int i = 0; i < count; ++i) {
    out.content += "<file index=\"";
    append_int(out.content, i);
    out.content += "\" size=\"";
    append_int(out.content, m_rng.between(100, 5'000'000));
    out.content += "\" url=\"https://api.asm.skype.com/v1/objects/";
    append_doc_id(out.content);
    out.content += "\">";
    append_xml_escaped(out.content, m_rng.pick(file_names));
    out.content += "</file>";
  }
  out.content += "</files>";
}

void ContentBuilder::contacts(const MessageContext& c, BuiltMessage& out) {
  out.content = "<contacts>";
  const int count = m_rng.chance(8000) ? 1 : 2;
  for (int i = 0; i < count; ++i) {
    const Participant& p = random_member(c);
    out.content += "<c t=\"s\" s=\"";
    out.content += p.handle;
    out.content += "\" f=\"";
    append_xml_escaped(out.content, p.name);
    out.content += "\"></c>";
  }
  out.content += "</contacts>";
}

void ContentBuilder::location(const MessageContext& c, BuiltMessage& out) {
  const std::string_view place = m_rng.pick(places);
  const std::int64_t lat = m_rng.between(-60'000'000, 70'000'000);
  const std::int64_t lon = m_rng.between(-179'000'000, 179'000'000);
  std::string& s = out.content;
  s += "<location isUserLocation=\"0\" latitude=\"";
  append_int(s, lat);
  s += "\" longitude=\"";
  append_int(s, lon);
  s += "\" timeStamp=\"";
  append_int(s, c.arrival_ms);
  s += "\" timezone=\"Europe/Tallinn\" locale=\"en-US\" language=\"en\" address=\"";
  append_xml_escaped(s, place);
  s += "\" userMri=\"";
  s += c.sender->mri;
  s += "\"><a href=\"https://www.bing.com/maps/default.aspx?cp=";
  append_int(s, lat / 1'000'000);
  s += "~";
  append_int(s, lon / 1'000'000);
  s += "&amp;dir=0&amp;lvl=15\">";
  append_xml_escaped(s, place);
  s += "</a></location>";
}

void ContentBuilder::scheduled_call(const MessageContext& c, BuiltMessage& out) {
  const std::int64_t start = c.arrival_ms + m_rng.between(3'600'000, 7 * 86'400'000LL);
  out.content = "<ScheduledCall scheduledCallId=\"";
  append_uuid(out.content);
  out.content += "\" title=\"";
  append_xml_escaped(out.content, m_rng.pick(topics));
  out.content += "\" startTime=\"";
  append_timestamp(out.content, start / 1000 * 1000, Fraction::none);
  out.content += "\" endTime=\"";
  append_timestamp(out.content, start / 1000 * 1000 + 3'600'000, Fraction::none);
  out.content += "\"></ScheduledCall>";
}

void ContentBuilder::call(const MessageContext& c, BuiltMessage& out) {
  const std::uint64_t r = m_rng.below(100);
  const char* type = r < 45 ? "started" : r < 85 ? "ended" : "missed";
  std::string& s = out.content;
  s += "<partlist type=\"";
  s += type;
  s += "\" alt=\"\" callId=\"";
  append_int(s, c.arrival_ms - m_rng.between(0, 5000));
  s += "\">";
  const int parts = type[0] == 'm' ? 1 : static_cast<int>(m_rng.between(1, c.group ? 4 : 2));
  char duration_text[16];
  const std::int64_t hundredths = m_rng.between(100, 720'000);
  const int n = std::snprintf(duration_text, sizeof duration_text, "%lld.%02lld",
                              static_cast<long long>(hundredths / 100),
                              static_cast<long long>(hundredths % 100));
  for (int i = 0; i < parts; ++i) {
    const Participant& p = i == 0 ? *c.sender : random_member(c);
    s += "<part identity=\"";
    s += p.mri;
    s += "\"><name>";
    append_xml_escaped(s, p.name);
    s += "</name>";
    if (type[0] == 'e') {
      s += "<duration>";
      s.append(duration_text, static_cast<std::size_t>(n));
      s += "</duration>";
    }
    s += "</part>";
  }
  s += "</partlist>";
  if (c.conversation_id == "48:calllogs") {
    m_inner = "{\"startTime\":\"";
    append_timestamp(m_inner, c.arrival_ms, Fraction::three);
    m_inner += "\",\"callDirection\":\"";
    m_inner += m_rng.chance(5000) ? "incoming" : "outgoing";
    m_inner += "\",\"callType\":\"twoParty\",\"callState\":\"";
    m_inner += type[0] == 'm' ? "missed" : "accepted";
    m_inner += "\",\"originator\":\"";
    m_inner += c.sender->mri;
    m_inner += "\",\"originatorParticipant\":{\"id\":\"";
    m_inner += c.sender->mri;
    m_inner += "\",\"type\":\"default\",\"displayName\":\"";
    escape_json(m_inner, c.sender->name, false);
    m_inner += "\"},\"sessionType\":\"private\",\"duration\":";
    m_inner.append(duration_text, static_cast<std::size_t>(n));
    m_inner += '}';
    out.properties += "\"callLog\":";
    append_json_string(out.properties, m_inner);
  }
}

void ContentBuilder::bing_bot(const MessageContext& c, BuiltMessage& out) {
  out.content = "Here is what I found on the web: ";
  append_link(out.content, out);
}

void ContentBuilder::poll(const MessageContext& c, BuiltMessage& out) {
  out.content =
      "<Poll><Question>Lunch on Friday?</Question><Option id=\"1\">Pizza \xF0\x9F\x8D\x95"
      "</Option><Option id=\"2\">Sushi</Option><Option id=\"3\">Борщ</Option></Poll>";
  m_inner = "{\"pollId\":\"";
  append_uuid(m_inner);
  m_inner +=
      "\",\"question\":\"Lunch on Friday?\",\"options\":[\"Pizza\",\"Sushi\",\"Борщ\"],"
      "\"creator\":\"";
  m_inner += c.sender->mri;
  m_inner += "\"}";
  out.properties += "\"poll\":";
  append_json_string(out.properties, m_inner);
}

void ContentBuilder::notice(const MessageContext& c, BuiltMessage& out, bool pop_card) {
  // The body is a JSON array inside the content string.
  std::string& s = out.content;
  s += "[{\"@type\":\"";
  s += pop_card ? "http://schema.skype.com/PopCard" : "http://schema.skype.com/Notice";
  s += "\",\"id\":\"";
  append_uuid(s);
  s += "\",\"title\":\"";
  escape_json(s, m_rng.pick(notice_titles), false);
  s += "\",\"text\":\"";
  m_scratch.clear();
  append_plain_text(m_scratch, c.language);
  escape_json(s, m_scratch, false);
  s += "\",\"buttons\":[{\"title\":\"Learn more\",\"url\":\"https://go.skype.com/notice\"}]}]";
}

void ContentBuilder::thread_activity(MessageKind kind, const MessageContext& c, BuiltMessage& out) {
  std::string_view tag;
  switch (kind) {
    case MessageKind::invite_free_initialized:
      tag = "initialized";
      break;
    case MessageKind::add_member:
      tag = "addmember";
      break;
    case MessageKind::delete_member:
      tag = "deletemember";
      break;
    case MessageKind::topic_update:
      tag = "topicupdate";
      break;
    case MessageKind::picture_update:
      tag = "pictureupdate";
      break;
    case MessageKind::role_update:
      tag = "roleupdate";
      break;
    case MessageKind::history_disclosed_update:
      tag = "historydisclosedupdate";
      break;
    case MessageKind::joining_enabled_update:
      tag = "joiningenabledupdate";
      break;
    case MessageKind::e2ee_handshake_invite:
      tag = "e2eehandshakeinvite";
      break;
    case MessageKind::e2ee_handshake_accept:
      tag = "e2eehandshakeaccept";
      break;
    case MessageKind::e2ee_handshake_complete:
      tag = "e2eehandshakecomplete";
      break;
    default:
      tag = "e2eehandshakereject";
  }
  std::string& s = out.content;
  s += '<';
  s += tag;
  s += "><eventtime>";
  append_int(s, c.arrival_ms);
  s += "</eventtime><initiator>";
  s += c.sender->mri;
  s += "</initiator>";
  const Participant& target = random_member(c);
  switch (kind) {
    case MessageKind::add_member:
    case MessageKind::delete_member:
      s += "<target>";
      s += target.mri;
      s += "</target>";
      if (kind == MessageKind::add_member && m_rng.chance(2000)) {
        s += "<target>";
        s += random_member(c).mri;
        s += "</target>";
      }
      break;
    case MessageKind::topic_update:
      s += "<value>";
      append_xml_escaped(s, m_rng.pick(topics));
      s += "</value>";
      break;
    case MessageKind::picture_update:
      s += "<value>URL@https://api.asm.skype.com/v1/objects/";
      append_doc_id(s);
      s += "/views/avatar_fullsize</value>";
      break;
    case MessageKind::role_update:
      s += "<target><id>";
      s += target.mri;
      s += "</id><role>";
      s += m_rng.chance(5000) ? "admin" : "user";
      s += "</role></target>";
      break;
    case MessageKind::history_disclosed_update:
    case MessageKind::joining_enabled_update:
      s += "<value>";
      s += m_rng.chance(5000) ? "true" : "false";
      s += "</value>";
      break;
    case MessageKind::invite_free_initialized:
      break;
    default:
      s += "<target>";
      s += target.mri;
      s += "</target><handshakeId>";
      append_uuid(s);
      s += "</handshakeId>";
  }
  s += "</";
  s += tag;
  s += '>';
}

void ContentBuilder::encrypted(const MessageContext& c, BuiltMessage& out, bool media) {
  char bytes[96];
  const std::size_t size = media ? 96 : 48 + m_rng.below(40);
  for (std::size_t i = 0; i < size; i += 8) {
    const std::uint64_t v = m_rng.next();
    for (std::size_t j = 0; j < 8 && i + j < size; ++j)
      bytes[i + j] = static_cast<char>(v >> (8 * j));
  }
  append_base64(out.content, std::string_view(bytes, size));
}

}  // namespace skype_etl::gen::detail
