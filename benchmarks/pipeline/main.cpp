// pipeline_bench: times the pipeline's stages one at a time on one export file, each stage
// in a forked child so that each gets its own peak memory, and prints one JSON line per
// stage:
//   {"stage", "messages", "seconds", "messages_per_second", "mb_per_second" (of the input
//    file), "peak_rss_anon_mb", ...stage-specific fields}
//
//   pipeline_bench FILE [--stages extract,transform,load] [--batch-size N] [--db CONNINFO]
//                       [--load-chunk-batches N]
//   pipeline_bench --summarize-report REPORT.json
//
// Stages:
//   extract    InputSource::open + ExportReader::next until the end (SHA-256 digest
//              included, as in a run; its share is printed as digest_seconds).
//   transform  extract + Transformer::transform on each batch, single-threaded;
//              transform_seconds / transform_messages_per_second are the transform's own
//              (wall and thread CPU time).
//   load       load only: batches are read and transformed untimed, N batches at a time
//              (--load-chunk-batches, 0 = the whole export first), and only the Loader's
//              begin_export / load_batch / finish_export are timed, into the database of
//              --db (which should be fresh: the export must not be loaded already).
//
// Peak private memory is RssAnon of /proc/self/status sampled every 5 ms by a thread
// (VmHWM counts the memory-mapped input's file pages; RssAnon has no peak field). For
// `load`, it includes the chunk of transformed batches held before the timed calls.
//
// --summarize-report reads a `skype-etl run --report` JSON file and prints one line of
// key=value pairs for benchmarks/run.sh (messages, seconds, peak RssAnon, the phases'
// intervals relative to the first phase's start, and how long all three overlapped).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bench_util.hpp"
#include "core/civil_time.hpp"
#include "extract/export_reader.hpp"
#include "extract/input_file.hpp"
#include "load/loader.hpp"
#include "skype_etl/context.hpp"
#include "transform/transformer.hpp"

namespace {

namespace se = skype_etl;
using skype_etl::bench::Clock;
using skype_etl::bench::RssAnonSampler;
using skype_etl::bench::seconds_since;
using skype_etl::bench::split;
using skype_etl::bench::thread_cpu_seconds;

struct Config {
  std::string file;
  std::vector<std::string> stages{"extract", "transform", "load"};
  std::size_t batch_size = skype_etl::Options{}.batch_size;  // skype-etl run's default
  std::string db;
  std::size_t load_chunk_batches = 256;
};

/// Ordered: the common fields come first, so a script can take the first "messages" even
/// though a stage's details (e.g. the loader's result) repeat some keys.
using Line = nlohmann::ordered_json;

/// The fields every stage prints. `seconds` is the measured time of the stage.
Line stage_line(const std::string& stage, std::uint64_t messages, double seconds,
                std::uint64_t file_bytes, double peak_mb) {
  Line line;
  line["stage"] = stage;
  line["messages"] = messages;
  line["seconds"] = seconds;
  line["messages_per_second"] = seconds > 0 ? static_cast<double>(messages) / seconds : 0.0;
  line["mb_per_second"] = seconds > 0 ? static_cast<double>(file_bytes) / seconds / 1e6 : 0.0;
  line["peak_rss_anon_mb"] = peak_mb;
  return line;
}

se::detail::ReaderOptions reader_options(const Config& config) {
  se::detail::ReaderOptions options;
  options.batch_size = config.batch_size;
  return options;
}

Line extract_stage(const Config& config) {
  RssAnonSampler sampler;
  const auto start = Clock::now();
  const double cpu_start = thread_cpu_seconds();
  auto source = se::detail::InputSource::open(config.file);
  const double open_seconds = seconds_since(start);
  // The reader's constructor computes the digest (cached): doing it first times its share.
  const auto digest_start = Clock::now();
  source->digest();
  const double digest_seconds = seconds_since(digest_start);
  se::detail::ExportReader reader(source, 0, reader_options(config));
  std::uint64_t messages = 0, batches = 0, checksum = 0;
  while (se::BatchPtr batch = reader.next()) {
    ++batches;
    messages += batch->raw.size();
    // Touch what a consumer would, so the walk's work is observable.
    for (const auto& m : batch->raw) checksum += m.content.size() + m.id.size();
  }
  const double seconds = seconds_since(start);
  const double cpu_seconds = thread_cpu_seconds() - cpu_start;
  sampler.stop();
  Line line = stage_line("extract", messages, seconds, source->file_size(), sampler.peak_mb());
  line["cpu_seconds"] = cpu_seconds;
  line["open_seconds"] = open_seconds;
  line["digest_seconds"] = digest_seconds;
  line["conversations"] = reader.conversations_read();
  line["batches"] = batches;
  line["file_bytes"] = source->file_size();
  line["json_bytes"] = source->json().size();
  line["checksum"] = checksum;
  return line;
}

Line transform_stage(const Config& config) {
  RssAnonSampler sampler;
  const auto start = Clock::now();
  auto source = se::detail::InputSource::open(config.file);
  se::detail::ExportReader reader(source, 0, reader_options(config));
  se::detail::TransformSettings settings;
  settings.owner_id = reader.info()->user_id;
  const se::detail::Transformer transformer(std::move(settings));
  std::uint64_t messages = 0, batches = 0, content_text_bytes = 0;
  double transform_seconds = 0, transform_cpu_seconds = 0;
  while (se::BatchPtr batch = reader.next()) {
    const auto transform_start = Clock::now();
    const double cpu_start = thread_cpu_seconds();
    transformer.transform(*batch);
    transform_cpu_seconds += thread_cpu_seconds() - cpu_start;
    transform_seconds += seconds_since(transform_start);
    ++batches;
    messages += batch->messages.size();
    for (const auto& m : batch->messages) content_text_bytes += m.content_text.size();
  }
  const double seconds = seconds_since(start);
  sampler.stop();
  Line line = stage_line("transform", messages, seconds, source->file_size(), sampler.peak_mb());
  line["transform_seconds"] = transform_seconds;
  line["transform_cpu_seconds"] = transform_cpu_seconds;
  line["transform_messages_per_second"] =
      transform_seconds > 0 ? static_cast<double>(messages) / transform_seconds : 0.0;
  line["transform_messages_per_cpu_second"] =
      transform_cpu_seconds > 0 ? static_cast<double>(messages) / transform_cpu_seconds : 0.0;
  line["batches"] = batches;
  line["content_text_bytes"] = content_text_bytes;
  return line;
}

Line load_stage(const Config& config) {
  if (config.db.empty())
    throw std::runtime_error("the load stage needs --db CONNINFO (a fresh database)");
  RssAnonSampler sampler;
  se::detail::Loader loader(se::DbConfig{config.db});
  loader.ensure_schema();  // untimed: a run does it once per database

  auto source = se::detail::InputSource::open(config.file);
  se::detail::ExportReader reader(source, 0, reader_options(config));
  se::detail::TransformSettings settings;
  settings.owner_id = reader.info()->user_id;
  const se::detail::Transformer transformer(std::move(settings));

  double begin_seconds = 0, copy_seconds = 0, merge_seconds = 0, prepare_seconds = 0;
  auto timed = Clock::now();
  if (loader.begin_export(*reader.info(), "") != se::detail::BeginResult::started)
    throw std::runtime_error("the export is already loaded in the database: use a fresh one");
  begin_seconds = seconds_since(timed);

  std::uint64_t messages = 0, batches = 0;
  std::vector<se::BatchPtr> chunk;
  bool more = true;
  nlohmann::json loaded;
  while (more) {
    // Untimed: read and transform the next chunk of batches.
    const auto prepare_start = Clock::now();
    chunk.clear();
    while (config.load_chunk_batches == 0 || chunk.size() < config.load_chunk_batches) {
      se::BatchPtr batch = reader.next();
      if (!batch) {
        more = false;
        break;
      }
      transformer.transform(*batch);
      chunk.push_back(std::move(batch));
    }
    prepare_seconds += seconds_since(prepare_start);
    sampler.sample();  // the chunk is at its largest here
    // Timed: the loader's calls only.
    timed = Clock::now();
    for (const se::BatchPtr& batch : chunk) {
      loader.load_batch(*batch);
      messages += batch->messages.size();
      ++batches;
    }
    copy_seconds += seconds_since(timed);
  }
  chunk.clear();
  timed = Clock::now();
  loaded = loader.finish_export(nlohmann::json{{"benchmark", "pipeline_bench load"}});
  merge_seconds = seconds_since(timed);
  sampler.stop();

  const double seconds = begin_seconds + copy_seconds + merge_seconds;
  Line line = stage_line("load", messages, seconds, source->file_size(), sampler.peak_mb());
  line["begin_seconds"] = begin_seconds;
  line["copy_seconds"] = copy_seconds;    // load_batch calls: COPY into staging
  line["merge_seconds"] = merge_seconds;  // finish_export: merge into the final tables, commit
  line["prepare_seconds_untimed"] = prepare_seconds;
  line["load_chunk_batches"] = config.load_chunk_batches;
  line["batches"] = batches;
  line["loaded"] = Line::parse(loaded.dump());  // the merge's own breakdown
  return line;
}

/// Runs one stage in a forked child (own address space, own peak memory); the child
/// prints its JSON line. Returns false when the child failed.
bool run_stage(const Config& config, const std::string& stage) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int rc = 0;
    try {
      Line line;
      if (stage == "extract") {
        line = extract_stage(config);
      } else if (stage == "transform") {
        line = transform_stage(config);
      } else if (stage == "load") {
        line = load_stage(config);
      } else {
        throw std::runtime_error("unknown stage '" + stage + "' (extract, transform, load)");
      }
      line["file"] = config.file;
      line["batch_size"] = config.batch_size;
      std::printf("%s\n", line.dump().c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pipeline_bench: stage %s failed: %s\n", stage.c_str(), e.what());
      rc = 1;
    }
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(rc);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) throw std::runtime_error("waitpid failed");
  if (WIFSIGNALED(status)) {
    std::fprintf(stderr, "pipeline_bench: stage %s killed by signal %d\n", stage.c_str(),
                 WTERMSIG(status));
    return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// --- --summarize-report ---------------------------------------------------------------

/// "2025-01-02T03:04:05.123456Z" (the report's format) → microseconds since the epoch.
std::int64_t parse_utc_us(const std::string& text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micros = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6d", &year, &month, &day, &hour, &minute,
                  &second, &micros) != 7)
    throw std::runtime_error("unexpected time '" + text + "' in the report");
  const std::int64_t seconds =
      ((skype_etl::detail::days_from_civil(year, static_cast<unsigned>(month),
                                           static_cast<unsigned>(day)) *
            24 +
        hour) *
           60 +
       minute) *
          60 +
      second;
  return seconds * 1'000'000 + micros;
}

int summarize_report(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "pipeline_bench: cannot read report '%s'\n", path.c_str());
    return 1;
  }
  const nlohmann::json report = nlohmann::json::parse(in);
  const nlohmann::json& stats = report.at("statistics");
  const nlohmann::json& phases = stats.at("phases");
  std::uint64_t messages = 0;
  if (phases.contains("extract"))
    messages = phases["extract"].value("processed_messages", std::uint64_t{0});
  double peak_mb = 0;
  if (stats.contains("memory") && stats["memory"].contains("peak_mb"))
    peak_mb = stats["memory"]["peak_mb"].get<double>();
  std::printf("success=%d messages=%llu report_seconds=%.3f peak_rss_anon_mb=%.1f",
              report.value("success", false) ? 1 : 0, static_cast<unsigned long long>(messages),
              report.value("seconds", 0.0), peak_mb);
  // Phase intervals relative to the earliest start.
  const char* names[] = {"extract", "transform", "load"};
  std::int64_t starts[3] = {}, ends[3] = {};
  bool complete = true;
  for (int i = 0; i < 3; ++i) {
    if (!phases.contains(names[i]) || !phases[names[i]]["start_time"].is_string() ||
        !phases[names[i]]["end_time"].is_string()) {
      complete = false;
      continue;
    }
    starts[i] = parse_utc_us(phases[names[i]]["start_time"].get<std::string>());
    ends[i] = parse_utc_us(phases[names[i]]["end_time"].get<std::string>());
  }
  if (complete) {
    const std::int64_t origin = *std::min_element(starts, starts + 3);
    for (int i = 0; i < 3; ++i)
      std::printf(" %s_start=%.3f %s_end=%.3f", names[i], (starts[i] - origin) / 1e6, names[i],
                  (ends[i] - origin) / 1e6);
    // How long all three phases ran at once (negative: they never did).
    const std::int64_t all_start = *std::max_element(starts, starts + 3);
    const std::int64_t all_end = *std::min_element(ends, ends + 3);
    std::printf(" all_three_overlap_seconds=%.3f", (all_end - all_start) / 1e6);
  }
  std::printf("\n");
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: pipeline_bench FILE [--stages extract,transform,load] [--batch-size N]\n"
               "                           [--db CONNINFO] [--load-chunk-batches N]\n"
               "       pipeline_bench --summarize-report REPORT.json\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      const bool has_value = i + 1 < argc;
      if (arg == "--summarize-report" && has_value) {
        return summarize_report(argv[++i]);
      } else if (arg == "--stages" && has_value) {
        config.stages = split(argv[++i], ',');
      } else if (arg == "--batch-size" && has_value) {
        config.batch_size = std::strtoull(argv[++i], nullptr, 10);
      } else if (arg == "--db" && has_value) {
        config.db = argv[++i];
      } else if (arg == "--load-chunk-batches" && has_value) {
        config.load_chunk_batches = std::strtoull(argv[++i], nullptr, 10);
      } else if (!arg.empty() && arg[0] != '-' && config.file.empty()) {
        config.file = arg;
      } else {
        return usage();
      }
    }
    if (config.file.empty() || config.batch_size == 0 || config.stages.empty()) return usage();
    bool ok = true;
    for (const std::string& stage : config.stages) ok = run_stage(config, stage) && ok;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline_bench: %s\n", e.what());
    return 1;
  }
}
