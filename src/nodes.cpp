#include "nodes.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

#include "extract/export_reader.hpp"
#include "extract/media_writer.hpp"
#include "load/loader.hpp"
#include "load/pg_connection.hpp"
#include "skype_etl/errors.hpp"
#include "transform/transformer.hpp"

namespace skype_etl::detail {
namespace {

std::uint64_t conversations_ended(const Batch& batch) noexcept {
  std::uint64_t n = 0;
  for (const auto& chunk : batch.chunks) n += chunk.ends_conversation ? 1 : 0;
  return n;
}

}  // namespace

RunState::RunState(std::vector<std::filesystem::path> inputs, PipelineOptions options,
                   ETLContext& context)
    : m_context(context), m_options(std::move(options)), m_inputs(std::move(inputs)) {
  m_transformers.resize(m_inputs.size());
}

RunState::~RunState() = default;

void RunState::open_next_input() {
  const std::size_t index = m_next_input++;
  auto source = InputSource::open(m_inputs[index]);
  if (m_options.with_media && m_context.output_dir() && !source->media_members().empty()) {
    const std::size_t written = write_media_files(
        *source, *m_context.output_dir() / m_inputs[index].filename().replace_extension());
    m_context.add_statistics("extract", nlohmann::json{{"media_files_written", written}});
  }
  ReaderOptions reader_options;
  reader_options.batch_size = m_context.batch_size();
  reader_options.with_media = m_options.with_media;
  m_reader = std::make_unique<ExportReader>(std::move(source), index, reader_options);
  TransformSettings settings;
  settings.owner_id = normalize_account_id(m_reader->info()->user_id);
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
    if (!m_reader) {
      if (m_next_input == m_inputs.size()) {
        ProgressTracker& tracker = m_context.progress_tracker(Phase::extract);
        m_context.set_totals("extract", tracker.processed_conversations(),
                             tracker.processed_messages());
        m_context.end_phase("extract", nlohmann::json{{"inputs", m_inputs.size()}});
        m_reading_done.store(true, std::memory_order_release);
        maybe_end_transform_phase();
        return nullptr;
      }
      open_next_input();
    }
    if (m_reader_fresh) {
      m_reader_fresh = false;
      if (already_loaded(*m_reader->info())) {
        // Skip reading it: the load node still begins the export and reports it (its own
        // check runs under the digest's lock, so a race with another process stays safe).
        auto batch = std::make_shared<Batch>();
        batch->source = m_reader->info();
        batch->sequence = m_sequence++;
        batch->last_of_export = true;
        note_batch_read();
        m_reader.reset();
        return batch;
      }
    }
    BatchPtr batch = m_reader->next();
    if (!batch) {  // the previous batch was this export's last
      m_reader.reset();
      continue;
    }
    batch->sequence = m_sequence++;
    note_batch_read();
    m_context.update_progress("extract", conversations_ended(*batch), batch->raw.size());
    m_context.memory_monitor().check_memory();
    if (batch->last_of_export) m_reader.reset();
    return batch;
  }
}

void RunState::transform_batch(Batch& batch) {
  m_transformers.at(batch.source->index)->transform(batch);
  m_context.update_progress("transform", conversations_ended(batch), batch.raw.size());
  m_transformed.fetch_add(1, std::memory_order_acq_rel);
  maybe_end_transform_phase();
}

void RunState::maybe_end_transform_phase() {
  if (!m_context.parallel_processing()) return;
  if (!m_reading_done.load(std::memory_order_acquire)) return;
  if (m_transformed.load(std::memory_order_acquire) != m_produced.load(std::memory_order_relaxed))
    return;
  if (m_transform_ended.exchange(true)) return;
  m_context.end_phase("transform", nlohmann::json::object());
}

void RunState::load_batch(const Batch& batch) {
  m_context.memory_monitor().check_memory();
  const ExportInfo& info = *batch.source;
  if (batch.export_sequence == 0) {
    if (!m_loader) {
      LoaderOptions loader_options;
      loader_options.copy_streams = m_options.copy_streams;
      m_loader = std::make_unique<Loader>(m_context.db_config(), loader_options);
      m_loader->ensure_schema();
    }
    m_current = nlohmann::json{{"file", info.path.string()},
                               {"kind", info.kind},
                               {"file_size", info.file_size},
                               {"user_id", info.user_id}};
    const auto begun = m_loader->begin_export(info, m_options.user_display_name);
    m_skip_export = begun == BeginResult::already_loaded;
    m_export_open = !m_skip_export;
    if (m_skip_export) m_current["status"] = "already loaded";
  }
  if (m_export_open) m_loader->load_batch(batch);

  // Transform counters travel with the batch; sum them here, on one thread.
  const TransformCounters& counters = batch.counters;
  if (counters.nul_characters_removed || counters.broken_markup || counters.invalid_timestamps ||
      !counters.unknown_types.empty()) {
    nlohmann::json t{{"nul_characters_removed", counters.nul_characters_removed},
                     {"broken_markup", counters.broken_markup},
                     {"invalid_timestamps", counters.invalid_timestamps}};
    for (const auto& [type, n] : counters.unknown_types) t["unknown_types"][type] = n;
    m_context.add_statistics("transform", t);
  }
  m_context.update_progress("load", conversations_ended(batch), batch.raw.size());
  ++m_batches_loaded;
  if (m_options.fail_after_batches && m_batches_loaded >= *m_options.fail_after_batches)
    throw std::runtime_error("test hook: failing after " + std::to_string(m_batches_loaded) +
                             " batches");

  if (batch.last_of_export) {
    if (m_export_open) {
      nlohmann::json loaded = m_loader->finish_export(m_context.statistics());
      m_export_open = false;
      m_current["status"] = loaded.value("already_loaded", false) ? "already loaded" : "loaded";
      m_current.update(loaded);
    }
    m_current["digest"] = info.digest.get();
    std::lock_guard<std::mutex> lock(m_result_mutex);
    m_exports.push_back(std::move(m_current));
    m_current = nlohmann::json();
  }
  m_in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (m_observer) m_observer(batch);
}

void RunState::note_batch_read() noexcept {
  m_produced.fetch_add(1, std::memory_order_relaxed);
  const std::int64_t now = m_in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
  std::int64_t seen = m_in_flight_max.load(std::memory_order_relaxed);
  while (now > seen && !m_in_flight_max.compare_exchange_weak(seen, now)) {
  }
}

void RunState::finish_load_phase() {
  // Called after the graph has drained: the load node no longer runs.
  m_context.add_statistics("graph",
                           nlohmann::json{{"batches_in_flight_limit", m_options.batches_in_flight},
                                          {"batches_in_flight_max", m_in_flight_max.load()}});
  m_context.end_phase("load", nlohmann::json{{"batches", m_batches_loaded}});
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
  for (const Phase phase : all_phases) {
    try {
      const std::string name(phase_name(phase));
      if (m_context.get_phase_status(name) == "running") {
        m_context.set_phase_status(name, "failed");
        m_context.end_phase(name, nlohmann::json::object());
      }
    } catch (...) {
      // Ending phases after a failure is best effort.
    }
  }
}

nlohmann::json RunState::result() const {
  std::lock_guard<std::mutex> lock(m_result_mutex);
  return nlohmann::json{{"exports", m_exports}};
}

}  // namespace skype_etl::detail
