#include "nodes.hpp"

#include <cxxabi.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "core/clock.hpp"
#include "core/file_name.hpp"
#include "core/json_text.hpp"
#include "extract/export_reader.hpp"
#include "extract/media_writer.hpp"
#include "load/loader.hpp"
#include "load/pg_connection.hpp"
#include "skype_etl/errors.hpp"
#include "transform/transformer.hpp"

namespace skype_etl::detail {
namespace {

/// The exception's type as written in C++ ("skype_etl::InputError").
std::string demangled_type(const std::exception& error) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(typeid(error).name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? name.get() : typeid(error).name();
}

std::uint64_t conversations_ended(const Batch& batch) noexcept {
  std::uint64_t n = 0;
  for (const auto& chunk : batch.chunks) n += chunk.ends_conversation ? 1 : 0;
  return n;
}

void store_min(std::atomic<std::int64_t>& target, std::int64_t value) noexcept {
  std::int64_t seen = target.load(std::memory_order_relaxed);
  while (value < seen && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

void store_max(std::atomic<std::int64_t>& target, std::int64_t value) noexcept {
  std::int64_t seen = target.load(std::memory_order_relaxed);
  while (value > seen && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

/// One export's share of a phase, in the shape of the context's phase statistics.
nlohmann::json phase_share(std::int64_t start_us, std::int64_t end_us, std::uint64_t conversations,
                           std::uint64_t messages) {
  if (end_us < start_us) end_us = start_us;
  const double seconds = static_cast<double>(end_us - start_us) / 1e6;
  return nlohmann::json{
      {"status", "completed"},
      {"start_time", format_utc_us(start_us)},
      {"end_time", format_utc_us(end_us)},
      {"duration_seconds", seconds},
      {"conversations_processed", conversations},
      {"messages_processed", messages},
      {"messages_per_second", seconds > 0 ? static_cast<double>(messages) / seconds : 0.0}};
}

std::uint64_t count_of(const nlohmann::json& outcome, const char* key) {
  const auto found = outcome.find(key);
  return found != outcome.end() && found->is_number_integer() ? found->get<std::uint64_t>() : 0;
}

}  // namespace

RunState::RunState(std::vector<std::filesystem::path> inputs, Options options, ETLContext& context)
    : m_context(context),
      m_options(std::move(options)),
      m_inputs(std::move(inputs)),
      m_live(m_inputs) {
  m_transformers.resize(m_inputs.size());
  m_progress = std::make_unique<ExportProgress[]>(m_inputs.size());
}

RunState::~RunState() = default;

RunState::ExportProgress::ExportProgress() = default;
RunState::ExportProgress::~ExportProgress() = default;

void RunState::check_can_start() {
  if (m_started)
    throw std::logic_error(
        "EtlGraph::run: this graph has run already; build a new EtlGraph for another run");
  for (const Phase phase : all_phases) {
    const std::string name(phase_name(phase));
    if (m_context.is_in_progress(name))
      throw std::logic_error("EtlGraph::run: phase '" + name +
                             "' is already in progress in the context; end it first "
                             "(ETLContext::end_phase), or give the run a context of its own");
  }
  m_started = true;
}

void RunState::start_phases(std::initializer_list<Phase> phases) {
  std::vector<Phase> started;
  try {
    for (const Phase phase : phases) {
      // A downstream phase's totals are what the reader has read so far.
      const bool downstream = phase != Phase::extract;
      m_context.start_phase(phase_name(phase), downstream ? m_conversations_read : 0,
                            downstream ? m_messages_read : 0);
      started.push_back(phase);
    }
  } catch (...) {
    for (const Phase phase : started) {
      try {
        m_context.end_phase(phase_name(phase), nlohmann::json{{"status", "failed"}});
      } catch (...) {
        // Best effort: the first error is the one that propagates.
      }
    }
    throw;
  }
}

void RunState::open_next_input() {
  const std::size_t index = m_next_input++;
  m_current_input = index;
  m_progress[index].extract_start_us = now_us();
  m_live.opening(index);
  InputOptions input_options;
  input_options.temp_dir = m_options.temp_dir;
  input_options.max_gzip_ratio = m_options.max_gzip_ratio;
  input_options.memory = &m_context.memory_monitor();
  input_options.inflated_from = m_live.inflated_from(index);
  auto source = InputSource::open(m_inputs[index], input_options);
  m_source = source;
  m_live.reading(index, source->file_size(), source->content_size());
  ReaderOptions reader_options;
  reader_options.batch_size = m_context.batch_size();
  reader_options.with_media = m_options.with_media;
  reader_options.batch_max_bytes = m_options.batch_max_bytes;
  reader_options.memory = &m_context.memory_monitor();
  m_reader = std::make_unique<ExportReader>(std::move(source), index, reader_options);
  if (const auto& media = m_reader->media()) {
    m_progress[index].media = media;
    if (media->ignored > 0)
      m_context.add_statistics("extract",
                               nlohmann::json{{"media_metadata_ignored", media->ignored}});
    m_context.memory_monitor().check_memory();
  }
  TransformSettings settings;
  settings.owner_id = m_reader->info()->user_id;  // made canonical by the Transformer
  settings.owner_display_name = m_options.user_display_name;
  m_transformers[index] = std::make_unique<Transformer>(std::move(settings));
  m_reader_fresh = true;
}

bool RunState::already_loaded(const ExportInfo& info) {
  try {
    if (!m_lookup) m_lookup = std::make_unique<PgConnection>(m_context.db_config().conninfo);
    // Wait for the digest only when a loaded export has the same size: usually none has,
    // and hashing then goes on beside reading.
    const PgResult same_size =
        m_lookup->exec_params("SELECT 1 FROM skype.exports WHERE file_size = $1 LIMIT 1",
                              std::vector<std::string>{std::to_string(info.file_size)});
    if (same_size.rows() == 0) return false;
    PgResult r = m_lookup->exec_params("SELECT 1 FROM skype.exports WHERE file_digest = $1",
                                       std::vector<std::string>{info.digest.get()});
    return r.rows() > 0;
  } catch (const DatabaseError&) {
    // No schema yet, or no server: the load node decides (and reports real errors).
    m_lookup.reset();
    return false;
  }
}

BatchPtr RunState::read_next() {
  while (true) {
    if (m_failed.load(std::memory_order_relaxed)) return nullptr;
    if (!m_reader && (m_next_input == m_inputs.size() || m_stop_reading)) {
      m_context.set_totals("extract", m_conversations_read, m_messages_read);
      m_context.end_phase("extract", nlohmann::json{{"inputs", m_inputs.size()}});
      transform_done();  // the reader's own token: reading is over
      return nullptr;
    }
    try {
      if (BatchPtr batch = read_step()) return batch;
    } catch (const std::exception& error) {
      if (!fails_one_export(error)) throw;
      // --fail-fast: the exports read before this one are still loaded; none after it is
      // read.
      if (m_options.fail_fast) m_stop_reading = true;
      return fail_export(m_current_input, std::current_exception());
    }
  }
}

BatchPtr RunState::read_step() {
  if (!m_reader) open_next_input();
  ExportProgress& progress = m_progress[m_current_input];
  // The load node gave up on this export (and said why): read no more of it.
  if (progress.load_failed.load(std::memory_order_acquire))
    return fail_export(m_current_input, nullptr);
  if (m_reader_fresh) {
    m_reader_fresh = false;
    if (already_loaded(*m_reader->info())) {
      // Skip reading it: the load node still begins the export and reports it (its own
      // check runs under the digest's lock, so a race with another process stays safe).
      auto batch = std::make_shared<Batch>();
      batch->source = m_reader->info();
      batch->sequence = m_sequence++;
      batch->last_of_export = true;
      m_live.read_whole(batch->source->index);
      m_reader.reset();
      m_source.reset();
      note_batch_read(*batch);
      return batch;
    }
  }
  BatchPtr batch = m_reader->next();
  if (!batch) {  // the previous batch was this export's last
    m_reader.reset();
    return nullptr;
  }
  m_live.read(batch->source->index, m_reader->input_position(), batch->raw.size());
  if (batch->last_of_export) {
    m_live.read_whole(batch->source->index);
    // messages.json is read whole and valid: now its media, before the load can commit.
    stage_media(batch->source->index);
    m_reader.reset();
    m_source.reset();
  }
  // Numbered only once nothing can fail it: a number given to a batch that is then dropped
  // (media that cannot be staged) left a gap the loader's ordering waited on for ever, and
  // the export vanished from the run (exit 0, "0 exports").
  batch->sequence = m_sequence++;
  note_batch_read(*batch);
  m_context.update_progress("extract", conversations_ended(*batch), batch->raw.size());
  m_context.memory_monitor().check_memory();
  return batch;
}

BatchPtr RunState::fail_export(std::size_t index, std::exception_ptr error) {
  ExportProgress& progress = m_progress[index];
  std::shared_ptr<const ExportInfo> info = m_reader ? m_reader->info() : nullptr;
  if (!info) {  // it could not even be opened: named by its path
    auto named = std::make_shared<ExportInfo>();
    named->path = m_inputs[index];
    named->file_name = m_inputs[index].filename().string();
    named->kind = "unknown";
    named->index = index;
    info = std::move(named);
  }
  m_live.failed(index);
  if (error) {
    progress.failure = std::move(error);
    progress.failure_phase = Phase::extract;
    progress.read_failed.store(true, std::memory_order_release);
  }
  m_reader.reset();
  m_source.reset();
  auto batch = std::make_shared<Batch>();
  batch->source = std::move(info);
  batch->sequence = m_sequence++;
  batch->export_sequence = progress.batches_read;
  batch->last_of_export = true;
  note_batch_read(*batch);
  return batch;
}

bool RunState::fails_one_export(const std::exception& error) const noexcept {
  // Errors skype-etl raises about an export (unreadable, refused by the database, media
  // that cannot be written) fail that export. The memory limit, a lost or refused
  // connection (SQLSTATE class 08: every export after it would fail the same way) and
  // anything unexpected (a bug) fail the run.
  if (dynamic_cast<const MemoryLimitExceeded*>(&error) != nullptr) return false;
  if (const auto* database = dynamic_cast<const DatabaseError*>(&error))
    return database->sqlstate().rfind("08", 0) != 0;
  return dynamic_cast<const Error*>(&error) != nullptr;
}

void RunState::stage_media(std::size_t index) {
  if (!m_options.with_media || !m_context.output_dir() || !m_source ||
      m_source->media_members().empty())
    return;
  auto staging = std::make_unique<MediaStaging>(
      *m_context.output_dir(), media_directory_name(m_inputs[index], m_media_names));
  staging->write(*m_source);
  m_progress[index].media_staging = std::move(staging);
}

void RunState::finish_media(ExportProgress& progress, bool stored) {
  if (!progress.media_staging) return;
  if (!stored) {  // already loaded: nothing of it is written
    progress.media_staging.reset();
    return;
  }
  progress.media_staging->publish();
  m_context.add_statistics(
      "extract", nlohmann::json{{"media_files_written", progress.media_staging->files_written()}});
}

void RunState::note_batch_read(const Batch& batch) {
  ExportProgress& progress = m_progress[batch.source->index];
  const std::uint64_t conversations = conversations_ended(batch);
  progress.conversations_read += conversations;
  progress.messages_read += batch.raw.size();
  ++progress.batches_read;
  if (batch.last_of_export) progress.extract_end_us = now_us();
  m_conversations_read += conversations;
  m_messages_read += batch.raw.size();
  // Pending until transformed: the transform phase cannot end before this batch is.
  m_transforms_pending.fetch_add(1, std::memory_order_acq_rel);
  // What is read so far is what the phases downstream have to do.
  m_context.set_totals("transform", m_conversations_read, m_messages_read);
  m_context.set_totals("load", m_conversations_read, m_messages_read);
}

void RunState::transform_batch(Batch& batch) {
  // The limiter let the batch through: in flight until its load ends.
  const std::int64_t now = m_in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
  store_max(m_in_flight_max, now);
  ExportProgress& progress = m_progress[batch.source->index];
  store_min(progress.transform_start_us, now_us());
  // A failed export's batches are not loaded (one that could not be opened has no
  // transformer): not worth transforming either.
  const auto& transformer = m_transformers.at(batch.source->index);
  if (transformer && !progress.read_failed.load(std::memory_order_acquire) &&
      !progress.load_failed.load(std::memory_order_acquire))
    transformer->transform(batch);
  m_context.update_progress("transform", conversations_ended(batch), batch.raw.size());
  store_max(progress.transform_end_us, now_us());
  transform_done();
}

void RunState::transform_done() {
  // One counter, so exactly one caller sees it reach zero: the last transform when reading
  // was over before it, or the reader when every batch it read was transformed already.
  if (m_transforms_pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (m_context.parallel_processing()) m_context.end_phase("transform", nlohmann::json::object());
}

void RunState::add_counters(ExportProgress& progress, const TransformCounters& counters) {
  if (counters.first_invalid_timestamp && !progress.first_invalid_timestamp)
    progress.first_invalid_timestamp = counters.first_invalid_timestamp;
  if (!counters.nul_characters_removed && !counters.broken_markup && !counters.invalid_timestamps &&
      counters.unknown_types.empty())
    return;
  nlohmann::json t{{"nul_characters_removed", counters.nul_characters_removed},
                   {"broken_markup", counters.broken_markup},
                   {"invalid_timestamps", counters.invalid_timestamps}};
  for (const auto& [type, n] : counters.unknown_types) t["unknown_types"][type] = n;
  m_context.add_statistics("transform", t);
  nlohmann::json& sum = progress.transform;
  for (const char* key : {"nul_characters_removed", "broken_markup", "invalid_timestamps"})
    sum[key] = sum.value(key, std::uint64_t{0}) + t[key].get<std::uint64_t>();
  for (const auto& [type, n] : counters.unknown_types) {
    if (!sum.contains("unknown_types")) sum["unknown_types"] = nlohmann::json::object();
    nlohmann::json& types = sum["unknown_types"];
    types[type] = types.value(type, std::uint64_t{0}) + n;
  }
}

nlohmann::json RunState::export_entry(const ExportInfo& info, const ExportProgress& progress,
                                      const nlohmann::json& loaded,
                                      std::int64_t load_end_us) const {
  const bool stored = loaded.is_object() && loaded.contains("export_id");
  nlohmann::json entry{{"file", escape_file_name(info.path.string())},
                       {"kind", info.kind},
                       {"file_size", info.file_size},
                       {"user_id", valid_utf8(info.user_id)},
                       {"conversations", progress.conversations_read}};
  if (stored) {
    entry["export_id"] = loaded["export_id"];
    entry["account_id"] = loaded.value("account_id", nlohmann::json());
  }
  // Every message read is in exactly one of new, updated, unchanged, superseded (same id
  // later in the file with a higher version), skipped (its file turned out to be loaded
  // already, by another run, once read) or failed (its export failed: nothing of it stored).
  const bool failed = progress.failure != nullptr;
  entry["messages"] = {
      {"read", progress.messages_read},
      {"new", count_of(loaded, "inserted")},
      {"updated", count_of(loaded, "updated")},
      {"unchanged", count_of(loaded, "unchanged")},
      {"superseded", count_of(loaded, "superseded")},
      {"skipped", !stored && !failed ? progress.messages_read : 0},
      {"failed", failed ? progress.messages_read : 0},
      {"invalid_timestamps", progress.transform.value("invalid_timestamps", std::uint64_t{0})}};
  const std::int64_t transform_start = progress.transform_start_us.load(std::memory_order_relaxed);
  entry["phases"] = {
      {"extract", phase_share(progress.extract_start_us, progress.extract_end_us,
                              progress.conversations_read, progress.messages_read)},
      {"transform",
       phase_share(transform_start == INT64_MAX ? progress.extract_start_us : transform_start,
                   progress.transform_end_us.load(std::memory_order_relaxed),
                   progress.conversations_read, progress.messages_read)},
      {"load", phase_share(progress.load_start_us, load_end_us, progress.conversations_loaded,
                           progress.messages_loaded)}};
  nlohmann::json transform = progress.transform;
  if (progress.first_invalid_timestamp) {
    const MessagePlace& place = *progress.first_invalid_timestamp;
    transform["first_invalid_timestamp"] = {{"conversation_id", valid_utf8(place.conversation_id)},
                                            {"conversation_index", place.conversation_index},
                                            {"message_index", place.message_index},
                                            {"byte_offset", place.byte_offset},
                                            {"raw_value", valid_utf8(place.raw_value)}};
  }
  entry["transform"] = std::move(transform);
  if (stored && progress.media) {
    nlohmann::json media{{"metadata_ignored", progress.media->ignored}};
    if (progress.media->ignored > 0)
      media["first_ignored"] = {{"entry", valid_utf8(progress.media->first_ignored)},
                                {"reason", progress.media->first_ignored_reason}};
    if (progress.media_staging) {
      media["directory"] = escape_file_name(progress.media_staging->target().string());
      media["files_written"] = progress.media_staging->files_written();
    }
    entry["media"] = std::move(media);
  }
  if (stored) {
    nlohmann::json load = nlohmann::json::object();
    for (const char* key :
         {"conversations_updated", "participants", "attachments", "membership_texts", "batches",
          "index_rebuild", "side_table", "merge_seconds", "steps", "nul_bytes_removed",
          "json_nul_escapes_replaced"}) {
      const auto found = loaded.find(key);
      if (found != loaded.end()) load[key] = *found;
    }
    entry["load"] = std::move(load);
  }
  const double peak_mb =
      std::round(static_cast<double>(m_context.memory_monitor().peak_bytes()) / (1 << 20) * 10) /
      10;
  entry["memory"] = {{"peak_mb", peak_mb}};
  return entry;
}

void RunState::load_batch(const Batch& batch) {
  m_context.memory_monitor().check_memory();
  const ExportInfo& info = *batch.source;
  ExportProgress& progress = m_progress[info.index];
  nlohmann::json entry;
  m_live.loading(info.index);
  // Counted first: the statistics stored with the export, built with its last batch, count
  // that batch too.
  progress.conversations_loaded += conversations_ended(batch);
  progress.messages_loaded += batch.raw.size();
  m_live.loaded(info.index, batch.raw.size());
  if (!progress.read_failed.load(std::memory_order_acquire) &&
      !progress.load_failed.load(std::memory_order_relaxed)) {
    // The database's own trouble (no connection, a schema it cannot take) fails the run,
    // not the export: out of the try.
    if (batch.export_sequence == 0 && !m_loader) {
      LoaderOptions loader_options;
      loader_options.copy_streams = m_options.copy_streams;
      loader_options.maintenance_work_mem = m_options.maintenance_work_mem;
      loader_options.on_step = [this](const char* step) { m_live.load_step(step); };
      m_loader = std::make_unique<Loader>(m_context.db_config(), loader_options);
      m_loader->ensure_schema();
    }
    try {
      entry = load_into_database(batch, progress);
    } catch (const std::exception& error) {
      if (m_options.fail_fast || !fails_one_export(error)) throw;
      // The loader rolled the export back; a broken connection is not used again.
      m_export_open = false;
      if (m_loader) m_loader->abort_export();
      if (dynamic_cast<const DatabaseError*>(&error)) m_loader.reset();
      progress.failure = std::current_exception();
      progress.failure_phase = Phase::load;
      progress.load_failed.store(true, std::memory_order_release);
      m_live.failed(info.index);
    }
  } else {
    if (m_export_open) m_loader->abort_export();
    m_export_open = false;
    add_counters(progress, batch.counters);
  }
  m_context.update_progress("load", conversations_ended(batch), batch.raw.size());
  ++m_batches_loaded;
  if (m_options.fail_after_batches && m_batches_loaded >= *m_options.fail_after_batches)
    throw std::runtime_error("test hook: failing after " + std::to_string(m_batches_loaded) +
                             " batches");

  if (batch.last_of_export) {
    if (progress.failure) entry = failed_entry(info, progress);
    const bool stored = entry.value("status", "") == "loaded";
    {
      std::lock_guard<std::mutex> lock(m_result_mutex);
      m_exports.push_back(std::move(entry));
    }
    finish_media(progress, stored);
    m_live.done(info.index);
  }
  m_in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (m_observer) {
    BatchProgress seen;
    seen.export_index = info.index;
    seen.sequence = batch.sequence;
    seen.export_sequence = batch.export_sequence;
    seen.conversations = conversations_ended(batch);
    seen.messages = batch.raw.size();
    seen.last_of_export = batch.last_of_export;
    m_observer(seen);
  }
}

nlohmann::json RunState::load_into_database(const Batch& batch, ExportProgress& progress) {
  const ExportInfo& info = *batch.source;
  if (batch.export_sequence == 0) {
    progress.load_start_us = now_us();
    const auto begun = m_loader->begin_export(info, m_options.user_display_name);
    m_skip_export = begun == BeginResult::already_loaded;
    m_export_open = !m_skip_export;
  }
  if (m_export_open) m_loader->load_batch(batch);
  // Transform counters travel with the batch; sum them here, on one thread.
  add_counters(progress, batch.counters);
  if (!batch.last_of_export) return nullptr;

  nlohmann::json entry;
  if (m_export_open) {
    // The statistics stored with the export are its final figures: built when the merge
    // has counted everything, just before the commit.
    const nlohmann::json loaded = m_loader->finish_export_with([&](const nlohmann::json& outcome) {
      entry = export_entry(info, progress, outcome, now_us());
      entry["status"] = "loaded";
      return entry;
    });
    m_export_open = false;
    if (loaded.value("already_loaded", false)) {
      entry = nlohmann::json();  // another run loaded the same file meanwhile
    } else if (loaded.contains("merge_seconds")) {
      entry["load"]["merge_seconds"] = loaded["merge_seconds"];  // with the commit's time
      entry["load"]["steps"] = loaded["steps"];
    }
  }
  if (entry.is_null()) {
    entry = export_entry(info, progress, nlohmann::json(), now_us());
    entry["status"] = "already loaded";
  }
  entry["digest"] = info.digest.get();
  return entry;
}

nlohmann::json RunState::failed_entry(const ExportInfo& info,
                                      const ExportProgress& progress) const {
  nlohmann::json entry = export_entry(info, progress, nlohmann::json(), now_us());
  entry["status"] = "failed";
  const nlohmann::json recorded = m_context.record_export_error(
      phase_name(progress.failure_phase), progress.failure, escape_file_name(info.path.string()));
  entry["phase"] = recorded["phase"];
  entry["error"] = recorded["error_message"];
  entry["error_type"] = recorded["error_type"];
  try {
    std::rethrow_exception(progress.failure);
  } catch (const std::exception& error) {
    entry["exit_code"] = static_cast<int>(exit_code_for(error));
  } catch (...) {
    entry["exit_code"] = static_cast<int>(ExitCode::internal);
  }
  if (info.digest.ready()) {
    try {
      entry["digest"] = info.digest.get();
    } catch (const std::exception&) {
      // The file could not be hashed (it is what failed): no digest.
    }
  }
  return entry;
}

void RunState::finish_run() {
  // The graph has drained: no node runs any more.
  m_context.add_statistics("graph",
                           nlohmann::json{{"batches_in_flight_limit", m_options.batches_in_flight},
                                          {"batches_in_flight_max", m_in_flight_max.load()}});
  // The transform phase ends with its last batch (transform_done); should that ever not
  // have happened, it ends here rather than stay open.
  if (m_context.is_in_progress("transform"))
    m_context.end_phase("transform", nlohmann::json::object());
  m_context.end_phase("load", nlohmann::json{{"batches", m_batches_loaded}});
  // Under --fail-fast a failed export failed the run, and its phase (marked once every
  // phase has ended: the phases after a failed one could not end otherwise).
  if (m_options.fail_fast)
    for (std::size_t i = 0; i < m_inputs.size(); ++i)
      if (m_progress[i].failure)
        m_context.set_phase_status(phase_name(m_progress[i].failure_phase), "failed");
}

void RunState::record_failure(Phase phase, const std::exception& error) noexcept {
  if (m_failed.exchange(true)) return;
  try {
    m_context.record_error(phase_name(phase), error);
  } catch (...) {
    // Recording is best effort; the error itself is rethrown by the graph.
  }
}

void RunState::abort() noexcept {
  m_failed.store(true);
  if (m_loader) m_loader->abort_export();
  m_export_open = false;
  // Media of exports not committed are removed (those committed were published already).
  for (std::size_t i = 0; i < m_inputs.size(); ++i) m_progress[i].media_staging.reset();
  // Every phase this run left in progress ends, as failed: the context can run again.
  for (const Phase phase : all_phases) {
    try {
      const std::string name(phase_name(phase));
      if (m_context.is_in_progress(name))
        m_context.end_phase(name, nlohmann::json{{"status", "failed"}});
    } catch (...) {
      // Ending phases after a failure is best effort.
    }
  }
}

RunProgress RunState::progress() const {
  RunProgress progress = m_live.snapshot();
  progress.batches_in_flight = m_in_flight.load(std::memory_order_relaxed);
  progress.batches_in_flight_limit = m_options.batches_in_flight;
  return progress;
}

nlohmann::json RunState::result() const {
  std::lock_guard<std::mutex> lock(m_result_mutex);
  return nlohmann::json{{"exports", m_exports}};
}

RunResult RunState::run_result(std::exception_ptr failure) const {
  nlohmann::json json{{"success", true}, {"exit_code", 0}, {"stopped", failure != nullptr}};
  json["exports"] = result()["exports"];
  json["phases"] = m_context.statistics().value("phases", nlohmann::json::object());
  if (failure) {
    json["success"] = false;
    try {
      std::rethrow_exception(failure);
    } catch (const std::bad_alloc& error) {
      json["error"] = "out of memory: the system refused an allocation (std::bad_alloc)";
      json["error_type"] = demangled_type(error);
      json["exit_code"] = static_cast<int>(exit_code_for(error));
    } catch (const std::exception& error) {
      // Our errors say what happened; anything else is a bug, and says so.
      json["error"] = dynamic_cast<const Error*>(&error) != nullptr
                          ? printable(error.what())
                          : "internal error: " + printable(error.what());
      json["error_type"] = demangled_type(error);
      json["exit_code"] = static_cast<int>(exit_code_for(error));
    } catch (...) {
      json["error"] = "an exception that is not a std::exception";
      json["error_type"] = "unknown";
      json["exit_code"] = static_cast<int>(ExitCode::internal);
    }
  } else {
    // The run went through; the first export that failed (if any) gives the exit code.
    for (const auto& e : json["exports"]) {
      if (e.value("status", "") != "failed") continue;
      json["success"] = false;
      json["error"] = e.value("error", "");
      json["error_type"] = e.value("error_type", "");
      json["exit_code"] = e.value("exit_code", static_cast<int>(ExitCode::internal));
      break;
    }
  }
  return RunResult::from_json(json);
}

}  // namespace skype_etl::detail
