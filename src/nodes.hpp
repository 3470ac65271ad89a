// The bodies of the graph's nodes and the run state they share. graphs/etl_graph.cpp wires
// them; nothing here knows about tbb::flow.
//
// Thread-safety: read_next() is called by one thread at a time (a serial input node),
// transform_batch() by many at once, load_batch() by one at a time (a serial node, fed in
// input order). Everything they share is either written before the batches it concerns are
// emitted (happens-before through the graph's queues) or atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.hpp"
#include "live_progress.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/graph.hpp"
#include "skype_etl/options.hpp"

namespace skype_etl::detail {

class ExportReader;
class InputSource;
class MediaStaging;
class Transformer;
class Loader;
class PgConnection;

class RunState {
 public:
  RunState(std::vector<std::filesystem::path> inputs, Options options, ETLContext& context);
  ~RunState();
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  /// Throws std::logic_error, changing nothing, when the run cannot start: it ran before,
  /// or a phase is in progress in the context (the caller started one, or another run uses
  /// the context).
  void check_can_start();
  /// Starts `phases` in the context, in order; when one cannot be started, ends those it
  /// started (as failed) and rethrows. Totals of downstream phases are the counts read so
  /// far.
  void start_phases(std::initializer_list<Phase> phases);

  /// Extract body: the next batch of the run (opening the inputs one after another), or
  /// nullptr when every input has been read. Ends the extract phase at the end.
  BatchPtr read_next();
  /// Transform body. In parallel mode ends the transform phase after the last batch.
  void transform_batch(Batch& batch);
  /// Load body: begins, feeds and finishes each export's transaction.
  void load_batch(const Batch& batch);

  /// Records the first failure in the context (for `phase`); later ones are ignored.
  void record_failure(Phase phase, const std::exception& error) noexcept;
  /// Rolls back the export being loaded and ends the phases still in progress as failed.
  /// Never throws.
  void abort() noexcept;
  /// After the graph drained without an error: ends what is still in progress (the
  /// transform phase, if its last batch raced the end of reading; the load phase).
  void finish_run();

  /// {"exports": [...]}.
  nlohmann::json result() const;
  /// EtlGraph::run()'s result: the exports so far and the context's phases; `failure`
  /// (if any) stopped the run.
  RunResult run_result(std::exception_ptr failure) const;
  /// EtlGraph::progress(): from any thread.
  RunProgress progress() const;
  ETLContext& context() noexcept { return m_context; }
  const Options& options() const noexcept { return m_options; }
  void set_batch_observer(std::function<void(const BatchProgress&)> observer) {
    m_observer = std::move(observer);
  }

 private:
  /// What one input's batches add up to, for its entry in the result and the statistics
  /// stored with it in skype.exports. Extract fields are written by the reader before the
  /// export's batches are emitted; transform times are atomic (many transform threads);
  /// the rest is the load thread's.
  struct ExportProgress {
    std::int64_t extract_start_us = 0;
    std::int64_t extract_end_us = 0;
    std::uint64_t conversations_read = 0;
    std::uint64_t messages_read = 0;
    std::uint64_t batches_read = 0;
    std::atomic<std::int64_t> transform_start_us{INT64_MAX};
    std::atomic<std::int64_t> transform_end_us{0};
    std::int64_t load_start_us = 0;
    std::uint64_t conversations_loaded = 0;
    std::uint64_t messages_loaded = 0;
    nlohmann::json transform = nlohmann::json::object();  // summed TransformCounters
    std::optional<MessagePlace> first_invalid_timestamp;
    std::shared_ptr<const MediaIndex> media;  // with --with-media: what the reader read
    // With --with-media and an output directory: the export's media files, staged by the
    // reader once messages.json is read whole, published by the load node once the export
    // is committed, removed otherwise.
    std::unique_ptr<MediaStaging> media_staging;
    // Unless fail_fast, a failing export is rolled back and the run goes on. The reader
    // stores what failed it in `failure` (at most once, before it emits the export's last
    // batch, which the load node reads it from) and then sets read_failed; the load node
    // stores a failure of its own in `failure` and sets load_failed, which tells the reader
    // to stop reading the export. The batches of a failed export are not loaded.
    std::exception_ptr failure;
    Phase failure_phase = Phase::extract;
    std::atomic<bool> read_failed{false};
    std::atomic<bool> load_failed{false};
    ExportProgress();
    ~ExportProgress();
  };

  void open_next_input();
  /// The reader's step for the current export (the batch it yields, or nullptr to go on),
  /// as read_next's loop body.
  BatchPtr read_step();
  /// Ends the current (or just opened) export `index` after `error` in the reader: records
  /// it, closes the reader, and returns the export's last batch (empty), which tells the
  /// load node to drop the export.
  BatchPtr fail_export(std::size_t index, std::exception_ptr error);
  /// Whether `error` fails only the export it happened in (and the run may go on).
  bool fails_one_export(const std::exception& error) const noexcept;
  /// Loads `batch` into the database (load_batch's work while its export is sound); the
  /// export's result entry when the batch is its last, else null.
  nlohmann::json load_into_database(const Batch& batch, ExportProgress& progress);
  /// The result entry of an export that failed.
  nlohmann::json failed_entry(const ExportInfo& info, const ExportProgress& progress) const;
  /// Writes the media of the input just read into a staging directory (see ExportProgress).
  void stage_media(std::size_t index);
  /// After the export's last batch: publishes its media when it was stored, else drops them.
  void finish_media(ExportProgress& progress, bool stored);
  /// True when skype.exports already holds the export (false when that cannot be told).
  bool already_loaded(const ExportInfo& info);
  /// Counts a batch leaving the reader: its transform is pending until transform_batch.
  void note_batch_read(const Batch& batch);
  /// Drops one pending transform (a batch's, or the reader's own token when reading ends);
  /// the one that drops the last ends the transform phase (parallel mode).
  void transform_done();
  void add_counters(ExportProgress& progress, const TransformCounters& counters);
  /// The export's entry in the result and the statistics stored with it: counts by
  /// category, each phase's share of this export, what the transform and the load did.
  nlohmann::json export_entry(const ExportInfo& info, const ExportProgress& progress,
                              const nlohmann::json& loaded, std::int64_t load_end_us) const;

  ETLContext& m_context;
  Options m_options;
  std::vector<std::filesystem::path> m_inputs;
  std::function<void(const BatchProgress&)> m_observer;
  bool m_started = false;
  LiveProgress m_live;  // what EtlGraph::progress() shows

  // Reader side.
  std::size_t m_next_input = 0;
  std::size_t m_current_input = 0;  // the input m_reader reads
  bool m_stop_reading = false;      // --fail-fast and an export failed: read no other
  std::unique_ptr<ExportReader> m_reader;
  std::shared_ptr<InputSource> m_source;   // m_reader's input, for its media
  std::set<std::string> m_media_names;     // directories given to this run's inputs
  bool m_reader_fresh = false;             // m_reader has yielded nothing yet
  std::unique_ptr<PgConnection> m_lookup;  // the reader's own short queries
  std::uint64_t m_sequence = 0;
  std::uint64_t m_conversations_read = 0;
  std::uint64_t m_messages_read = 0;
  /// One transformer per input, created before that input's first batch is emitted.
  std::vector<std::unique_ptr<Transformer>> m_transformers;
  std::unique_ptr<ExportProgress[]> m_progress;  // one per input

  // Phase bookkeeping across nodes: batches read and not yet transformed, plus one while
  // the reader still reads (see transform_done).
  std::atomic<std::int64_t> m_transforms_pending{1};
  std::atomic<bool> m_failed{false};
  // Batches the limiter_node let through and the load has not finished, and the most seen:
  // the limiter's threshold bounds it (the input_node may hold one more, not yet admitted).
  std::atomic<std::int64_t> m_in_flight{0};
  std::atomic<std::int64_t> m_in_flight_max{0};

  // Load side.
  std::unique_ptr<Loader> m_loader;
  bool m_export_open = false;
  bool m_skip_export = false;
  std::uint64_t m_batches_loaded = 0;
  mutable std::mutex m_result_mutex;
  nlohmann::json m_exports = nlohmann::json::array();
};

}  // namespace skype_etl::detail
