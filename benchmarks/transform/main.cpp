// transform_bench: runs Transformer::transform single-threaded over batches built in
// memory with a realistic mix of message types, and prints one line per run:
//   run=1 messages=2000000 ... messages_per_s_per_core=... content_mb_per_s=...
// Rates per core use the thread's CPU time (the wall time is printed too).
// Usage: transform_bench [total_messages=2000000] [runs=3] [batch_size=1000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "skype_etl/options.hpp"
#include "transform/transformer.hpp"

using namespace skype_etl;

namespace {

/// CPU time of this thread: "per core" stays meaningful on a machine shared with others.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

const char* const kWords[] = {"the",    "meeting", "is",    "at",      "noon",  "tomorrow", "ok",
                              "thanks", "see",     "you",   "later",   "lunch", "project",  "code",
                              "review", "please",  "check", "this",    "out",   "great",    "idea",
                              "can",    "we",      "call",  "tonight", "yes",   "no",       "maybe",
                              "sure",   "why",     "not",   "погода",  "café",  "😀",        "done"};

std::string sentence(std::mt19937& rng, int min_words, int max_words) {
  const int n =
      min_words + static_cast<int>(rng() % static_cast<unsigned>(max_words - min_words + 1));
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += kWords[rng() % (sizeof kWords / sizeof kWords[0])];
  }
  return s;
}

struct Sample {
  std::string type;
  std::string content;
  std::string edit_time;
  std::string emotions;
};

/// One message of the mix. Percentages approximate real exports: mostly plain RichText.
Sample make_sample(std::mt19937& rng) {
  const unsigned roll = rng() % 100;
  Sample s;
  s.type = "RichText";
  if (roll < 62) {
    s.content = sentence(rng, 2, 25);
  } else if (roll < 70) {
    s.content = sentence(rng, 2, 10) + " it&apos;s &quot;fine&quot; &amp; done &#128512;";
  } else if (roll < 74) {
    s.content = "<at id=\"8:live:bob\">Bob</at> " + sentence(rng, 2, 12);
  } else if (roll < 77) {
    s.content =
        "<quote author=\"8:bob\" authorname=\"Bob\" timestamp=\"1600529710\" conversation=\"19:x\" "
        "messageid=\"1600529710000\"><legacyquote>[1600529710] Bob: </legacyquote>" +
        sentence(rng, 3, 12) + "<legacyquote>\n\n&lt;&lt;&lt; </legacyquote></quote>" +
        sentence(rng, 2, 8);
  } else if (roll < 80) {
    s.content = sentence(rng, 1, 6) +
                " <a href=\"https://example.com/page?id=42&amp;x=1\">"
                "https://example.com/page?id=42&amp;x=1</a>";
  } else if (roll < 83) {
    s.content = sentence(rng, 2, 10) +
                "<e_m ts=\"1526383416\" ts_ms=\"1526383417250\" a=\"alice\" t=\"61\"/>";
  } else if (roll < 85) {
    s.content = sentence(rng, 2, 10);
    s.edit_time = "1630565399000";
  } else if (roll < 87) {
    s.type = "Event/Call";
    s.content =
        "<partlist type=\"ended\" alt=\"\" callId=\"1593784540478\"><part identity=\"8:a\">"
        "<name>Alice</name><duration>84.82</duration></part><part identity=\"8:b\">"
        "<name>Bob</name><duration>84.82</duration></part></partlist>";
  } else if (roll < 90) {
    s.type = "RichText/UriObject";
    s.content =
        "<URIObject uri=\"https://api.asm.skype.com/v1/objects/0-weu-d3-abcdef\" "
        "url_thumbnail=\"https://api.asm.skype.com/v1/objects/0-weu-d3-abcdef/views/imgt1\" "
        "type=\"Picture.1\" doc_id=\"0-weu-d3-abcdef\" width=\"1191\" height=\"619\">To view "
        "this shared photo, go to: <a href=\"https://login.skype.com/login/sso?go=xmm\">"
        "https://login.skype.com/login/sso?go=xmm</a><OriginalName v=\"f.png\"></OriginalName>"
        "<FileSize v=\"108188\"></FileSize><meta type=\"photo\" originalName=\"f.png\"></meta>"
        "</URIObject>";
  } else if (roll < 91) {
    s.type = "ThreadActivity/AddMember";
    s.content =
        "<addmember><eventtime>1594467205492</eventtime><initiator>8:username</initiator>"
        "<target>8:username2</target></addmember>";
  } else if (roll < 95) {
    s.type = "Text";
    s.content = sentence(rng, 2, 15) + " a < b";
  } else if (roll < 97) {
    s.content = "<b>bold " + sentence(rng, 1, 5) + " <i>unclosed & bare < here";
  } else {
    s.content = "<ss type=\"smile\">:)</ss> " + sentence(rng, 1, 8);
    s.emotions =
        "[{\"key\":\"like\",\"users\":[{\"mri\":\"8:bob\",\"time\":1630565399000,\"value\":\"1\"}]}"
        "]";
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t total = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2000000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  const std::size_t batch_size =
      argc > 3 ? std::strtoull(argv[3], nullptr, 10) : skype_etl::Options{}.batch_size;

  // A pool of distinct batches (20k messages) transformed repeatedly up to `total`.
  std::mt19937 rng(42);
  const std::size_t pool_batches = 20;
  std::deque<Sample> samples;
  std::vector<std::unique_ptr<Batch>> batches;
  std::uint64_t pool_content_bytes = 0;
  const std::string id = "1630565395224", time = "2021-09-02T06:49:55.104Z";
  const std::string alice = "8:alice", name = "Alice", conv = "19:abc@thread.skype";
  auto meta = std::make_shared<ConversationMeta>();
  meta->id = conv;
  meta->display_name = "Family &amp; <b>friends</b>";
  meta->members = {"8:alice", "bob", "8:carol"};
  for (std::size_t b = 0; b < pool_batches; ++b) {
    auto batch = std::make_unique<Batch>();
    ConversationChunk chunk;
    chunk.conversation = meta;
    chunk.first_message = 0;
    chunk.message_count = batch_size;
    chunk.starts_conversation = b % 4 == 0;
    batch->chunks.push_back(chunk);
    for (std::size_t i = 0; i < batch_size; ++i) {
      samples.push_back(make_sample(rng));
      const Sample& s = samples.back();
      RawMessage raw;
      raw.id = id;
      raw.version = 1630565395224;
      raw.original_arrival_time = time;
      raw.message_type = s.type;
      raw.content = s.content;
      raw.conversation_id = conv;
      raw.from = (i % 3 == 0) ? std::string_view(alice) : std::string_view("bob");
      // The owner's messages (alice's) carry a null displayName, as in real exports.
      if (i % 3 != 0) raw.display_name = std::string_view(name);
      raw.edit_time = s.edit_time;
      raw.emotions_json = s.emotions;
      raw.position = static_cast<std::uint32_t>(i);
      batch->raw.push_back(raw);
      pool_content_bytes += s.content.size();
    }
    batches.push_back(std::move(batch));
  }

  detail::Transformer transformer({"alice", "Alice Owner"});
  for (int run = 1; run <= runs; ++run) {
    std::size_t done = 0;
    std::uint64_t content_bytes = 0;
    double seconds = 0, cpu_seconds = 0;
    while (done < total) {
      for (auto& batch : batches) {
        if (done >= total) break;
        batch->arena = TextArena();  // each batch arrives with a fresh arena
        const auto start = std::chrono::steady_clock::now();
        const double cpu_start = thread_cpu_seconds();
        transformer.transform(*batch);
        cpu_seconds += thread_cpu_seconds() - cpu_start;
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        done += batch->raw.size();
        for (const auto& raw : batch->raw) content_bytes += raw.content.size();
      }
    }
    std::printf(
        "run=%d messages=%zu batch_size=%zu wall_seconds=%.3f cpu_seconds=%.3f "
        "messages_per_s_per_core=%.0f content_mb_per_s=%.1f wall_messages_per_s=%.0f\n",
        run, done, batch_size, seconds, cpu_seconds, done / cpu_seconds,
        content_bytes / cpu_seconds / 1e6, done / seconds);
    std::fflush(stdout);
  }
  return 0;
}
