// load_bench: times Loader::begin_export/load_batch/finish_export on N realistic message rows
// and, in the same run and on the same server, a bare COPY of the same final rows into the
// same tables and indexes (the ceiling the issue compares against).
//
//   load_bench [--rows N] [--batch N] [--conversations N] [--psql]
//
// Connection from the PG* environment; throwaway databases are created and dropped.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "load/copy_writer.hpp"
#include "load/loader.hpp"
#include "load/pg_connection.hpp"
#include "load/schema.hpp"
#include "skype_etl/errors.hpp"

using namespace skype_etl;
using skype_etl::detail::PgConnection;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct BenchOptions {
  std::size_t rows = 1'000'000;
  std::size_t batch = 1000;
  std::size_t conversations = 500;
  bool psql = false;
};

const char* const words[] = {
    "the",    "meeting", "tomorrow", "pizza",    "deploy",   "release", "weekend",  "photo",
    "call",   "project", "deadline", "coffee",   "holiday",  "server",  "database", "lunch",
    "thanks", "great",   "sounds",   "good",     "see",      "you",     "later",    "at",
    "office", "привет",  "спасибо",  "merci",    "beaucoup", "danke",   "schön",    "こんにちは",
    "😀",      "👍",       "ok",       "yes",      "no",       "maybe",   "tonight",  "review",
    "merge",  "branch",  "ticket",   "customer", "invoice"};

class Database {
 public:
  Database() {
    m_name = "skype_etl_bench_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++);
    PgConnection admin("dbname=postgres");
    admin.exec("CREATE DATABASE " + m_name + " TEMPLATE template0 ENCODING 'UTF8'");
  }
  ~Database() {
    try {
      PgConnection admin("dbname=postgres");
      admin.exec("DROP DATABASE IF EXISTS " + m_name + " WITH (FORCE)");
    } catch (const std::exception&) {
    }
  }
  std::string conninfo() const { return "dbname=" + m_name; }
  const std::string& name() const { return m_name; }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string m_name;
};

/// The rows, generated once and shared by every stage.
struct Data {
  std::vector<BatchPtr> batches;
  std::vector<std::shared_ptr<ConversationMeta>> metas;
  std::size_t content_bytes = 0;
};

Data generate(const BenchOptions& o) {
  Data d;
  std::mt19937_64 rng(12345);
  const std::size_t per_conversation = (o.rows + o.conversations - 1) / o.conversations;
  std::int64_t t = 1'500'000'000'000'000LL;
  std::size_t made = 0;
  BatchPtr batch;
  std::string content, text;
  for (std::size_t c = 0; c < o.conversations && made < o.rows; ++c) {
    auto meta = std::make_shared<ConversationMeta>();
    meta->id = c % 3 == 0 ? "8:contact" + std::to_string(c)
                          : "19:" + std::to_string(rng()) + "@thread.skype";
    meta->display_name = "Conversation " + std::to_string(c);
    // Canonical ids, as the transform gives them.
    meta->members = {"8:live:bench", "8:alice" + std::to_string(c), "8:bob" + std::to_string(c)};
    d.metas.push_back(meta);
    bool first = true;
    std::size_t left = std::min(per_conversation, o.rows - made);
    while (left > 0) {
      if (!batch || batch->messages.size() >= o.batch) {
        batch = std::make_shared<Batch>();
        batch->arena = TextArena(256 * 1024);
        batch->export_sequence = d.batches.size();
        d.batches.push_back(batch);
      }
      ConversationChunk chunk;
      chunk.conversation = meta;
      chunk.first_message = batch->messages.size();
      chunk.starts_conversation = first;
      if (first) {
        ConversationRow row;
        row.conversation_id = meta->id;
        row.conversation_type = c % 3 == 0 ? "one_to_one" : "group";
        row.display_name = *meta->display_name;
        row.members = meta->members;
        batch->conversations.push_back(row);
      }
      while (left > 0 && batch->messages.size() < o.batch) {
        Message m;
        t += static_cast<std::int64_t>(rng() % 600'000'000);
        m.message_id = batch->arena.store(std::to_string(t / 1000));
        m.version = t / 1000;
        m.sent_at_us = t;
        const unsigned who = static_cast<unsigned>(rng() % 3);
        m.sender_id =
            batch->arena.store(who == 0 ? std::string("8:live:bench") : meta->members[who]);
        m.sender_name = batch->arena.store(who == 0 ? "Bench" : "Person " + std::to_string(who));
        m.message_type = rng() % 10 == 0 ? "Text" : "RichText";
        text.clear();
        while (text.size() < 260) {
          text += words[rng() % (sizeof words / sizeof *words)];
          text += rng() % 12 == 0 ? ".\n" : " ";
        }
        const std::size_t cut = text.find(' ');
        content =
            "<b raw_pre=\"*\" raw_post=\"*\">" + text.substr(0, cut) + "</b>" + text.substr(cut);
        m.content_raw = batch->arena.store(content);
        m.content_text = batch->arena.store(text);
        d.content_bytes += content.size() + text.size();
        if (rng() % 20 == 0) {
          m.is_edited = true;
          m.edited_at_us = t + 30'000'000;
        }
        if (rng() % 10 == 0)
          m.details_json =
              "{\"mentions\":[{\"id\":\"" + std::string(m.sender_id) + "\",\"name\":\"x\"}]}";
        batch->messages.push_back(std::move(m));
        batch->raw.emplace_back();
        --left;
        ++made;
      }
      chunk.message_count = batch->messages.size() - chunk.first_message;
      chunk.ends_conversation = left == 0;
      batch->chunks.push_back(chunk);
      first = false;
    }
  }
  return d;
}

ExportInfo bench_info(const std::string& digest) {
  ExportInfo info;
  info.file_name = "bench.tar";
  info.file_size = 1;
  info.digest = "sha256:" + digest;
  info.user_id = "8:live:bench";
  info.export_date = "2025-04-30T10:13";
  return info;
}

struct Timing {
  double copy_s = 0;   // begin + load_batch (COPY into staging or the side table)
  double merge_s = 0;  // finish_export
  double total() const { return copy_s + merge_s; }
  nlohmann::json result;
};

Timing run_loader(const Data& d, const std::string& conninfo, detail::LoaderOptions options = {}) {
  detail::Loader loader(DbConfig{conninfo}, options);
  loader.ensure_schema();
  PgConnection(conninfo).exec("CHECKPOINT");
  Timing t;
  auto start = Clock::now();
  loader.begin_export(bench_info("bench"), "Bench");
  for (const BatchPtr& b : d.batches) loader.load_batch(*b);
  t.copy_s = seconds_since(start);
  start = Clock::now();
  t.result = loader.finish_export({{"benchmark", true}});
  t.merge_s = seconds_since(start);
  return t;
}

/// The final rows of skype.messages as COPY text, like a file a user would \copy.
std::string render_final_rows(const Data& d) {
  detail::CopyBuffer b;
  for (const BatchPtr& batch : d.batches)
    for (const ConversationChunk& chunk : batch->chunks)
      for (std::size_t i = chunk.first_message; i < chunk.first_message + chunk.message_count;
           ++i) {
        const Message& m = batch->messages[i];
        b.text("8:live:bench");
        b.text(chunk.conversation->id);
        append_message_columns(b, m);
        b.integer(std::int64_t{1});
        b.end_row();
      }
  return std::string(b.view());
}

constexpr const char* final_columns =
    "(account_id, conversation_id, message_id, version, sent_at, sender_id, sender_raw, "
    "sender_name, message_type, content_raw, content_text, is_edited, edited_at, is_deleted, "
    "deleted_at, is_server_generated, properties, details, extra, export_id)";

/// COPY of the pre-rendered rows into skype.messages (with or without its indexes), sent
/// in 1 MiB pieces with PQputCopyData, in one transaction.
double run_bare_copy(const std::string& rows, const std::string& conninfo, bool indexes) {
  PgConnection conn(conninfo);
  detail::ensure_schema(conn);
  if (!indexes) {
    conn.exec(
        "DROP INDEX skype.messages_conversation_time_idx, skype.messages_sender_time_idx, "
        "skype.messages_type_idx, skype.messages_content_tsv_idx");
    conn.exec("ALTER TABLE skype.messages DROP CONSTRAINT messages_pkey");
  }
  conn.exec("CHECKPOINT");
  auto start = Clock::now();
  conn.exec("BEGIN");
  conn.copy_in(std::string("COPY skype.messages ") + final_columns + " FROM STDIN");
  std::string_view rest = rows;
  while (!rest.empty()) {
    std::size_t n = std::min<std::size_t>(rest.size(), 1u << 20);
    conn.put_copy_data(rest.substr(0, n));
    rest.remove_prefix(n);
  }
  conn.end_copy();
  conn.exec("COMMIT");
  return seconds_since(start);
}

double run_psql_copy(const std::string& rows, const Database& db) {
  {
    PgConnection conn(db.conninfo());
    detail::ensure_schema(conn);
    conn.exec("CHECKPOINT");
  }
  const std::string file = "/tmp/load_bench_" + std::to_string(::getpid()) + ".copy";
  {
    std::ofstream out(file, std::ios::binary);
    out.write(rows.data(), static_cast<std::streamsize>(rows.size()));
  }
  const std::string command = "psql -q -v ON_ERROR_STOP=1 -d " + db.name() +
                              " -c \"\\copy skype.messages " + final_columns + " FROM '" + file +
                              "'\"";
  auto start = Clock::now();
  const int status = std::system(command.c_str());
  const double s = seconds_since(start);
  std::remove(file.c_str());
  if (status != 0) throw std::runtime_error("psql \\copy failed");
  return s;
}

void row(const char* stage, std::size_t rows, double seconds, double reference) {
  std::printf("| %-44s | %10.0f | %8.2f | %6.2f |\n", stage, rows / seconds, seconds,
              seconds / reference);
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](std::size_t& value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      value = std::strtoull(argv[++i], nullptr, 10);
    };
    if (!std::strcmp(argv[i], "--rows"))
      next(o.rows);
    else if (!std::strcmp(argv[i], "--batch"))
      next(o.batch);
    else if (!std::strcmp(argv[i], "--conversations"))
      next(o.conversations);
    else if (!std::strcmp(argv[i], "--psql"))
      o.psql = true;
    else {
      std::fprintf(stderr,
                   "usage: load_bench [--rows N] [--batch N] [--conversations N] [--psql]\n");
      return 2;
    }
  }
  try {
    auto start = Clock::now();
    Data d = generate(o);
    std::printf("generated %zu rows in %zu batches, %.0f bytes of content+text per row, %.2f s\n",
                o.rows, d.batches.size(), double(d.content_bytes) / o.rows, seconds_since(start));
    const std::string rows = render_final_rows(d);
    std::printf("final rows as COPY text: %.1f MB\n", rows.size() / 1e6);

    double bare;
    {
      Database db;
      bare = run_bare_copy(rows, db.conninfo(), true);
    }
    Timing loader;
    {
      Database db;
      detail::LoaderOptions side;  // the synthetic export has no file: side-table load anyway
      side.side_load_min_file_bytes = 0;
      loader = run_loader(d, db.conninfo(), side);
    }
    Timing upsert;
    {
      Database db;
      detail::LoaderOptions upsert_only;
      upsert_only.side_load_min_file_bytes = UINT64_MAX;
      upsert = run_loader(d, db.conninfo(), upsert_only);
    }
    double unindexed;
    {
      Database db;
      unindexed = run_bare_copy(rows, db.conninfo(), false);
    }
    double psql = 0;
    if (o.psql) {
      Database db;
      psql = run_psql_copy(rows, db);
    }
    std::printf("\n| %-44s | %10s | %8s | %6s |\n", "stage", "rows/s", "seconds", "ratio");
    std::printf("|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(12, '-').c_str(),
                std::string(10, '-').c_str(), std::string(8, '-').c_str());
    row("bare COPY (PQputCopyData), indexed table", o.rows, bare, bare);
    if (o.psql) row("bare psql \\copy, indexed table", o.rows, psql, bare);
    row("bare COPY, table without any index", o.rows, unindexed, bare);
    row("loader: side-table COPY (load_batch)", o.rows, loader.copy_s, bare);
    row("loader: merge (finish_export)", o.rows, loader.merge_s, bare);
    row("loader total (side table, index build)", o.rows, loader.total(), bare);
    row("loader: COPY into staging, upsert path", o.rows, upsert.copy_s, bare);
    row("loader: merge, INSERT..ON CONFLICT indexed", o.rows, upsert.merge_s, bare);
    row("loader total (upsert into indexed table)", o.rows, upsert.total(), bare);
    std::printf("\nmerge steps (index rebuild): %s\nmerge steps (upsert): %s\n",
                loader.result["merge_seconds"].dump().c_str(),
                upsert.result["merge_seconds"].dump().c_str());
    std::printf("\nloader/bare COPY = %.2f (target <= 1.3); index_rebuild=%s\n",
                loader.total() / bare, loader.result["index_rebuild"].dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
