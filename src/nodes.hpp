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
#include <memory>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "skype_etl/context.hpp"
#include "skype_etl/model.hpp"
#include "skype_etl/options.hpp"

namespace skype_etl::detail {

class ExportReader;
class Transformer;
class Loader;
class PgConnection;

class RunState {
 public:
  RunState(std::vector<std::filesystem::path> inputs, PipelineOptions options, ETLContext& context);
  ~RunState();
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  /// Extract body: the next batch of the run (opening the inputs one after another), or
  /// nullptr when every input has been read. Ends the extract phase at the end.
  BatchPtr read_next();
  /// Transform body. In parallel mode ends the transform phase after the last batch.
  void transform_batch(Batch& batch);
  /// Load body: begins, feeds and finishes each export's transaction.
  void load_batch(const Batch& batch);

  /// Records the first failure in the context (for `phase`); later ones are ignored.
  void record_failure(Phase phase, const std::exception& error) noexcept;
  /// Rolls back the export being loaded and marks running phases failed. Never throws.
  void abort() noexcept;
  /// Ends the load phase (and, in sequential mode, is not needed for the others).
  void finish_load_phase();

  /// {"exports": [...]}.
  nlohmann::json result() const;
  ETLContext& context() noexcept { return m_context; }
  const PipelineOptions& options() const noexcept { return m_options; }
  void set_batch_observer(std::function<void(const Batch&)> observer) {
    m_observer = std::move(observer);
  }

 private:
  void open_next_input();
  /// True when skype.exports already holds the export (false when that cannot be told).
  bool already_loaded(const ExportInfo& info);
  void maybe_end_transform_phase();
  /// Counts a batch leaving the reader: produced, and in flight until load_batch.
  void note_batch_read() noexcept;

  ETLContext& m_context;
  PipelineOptions m_options;
  std::vector<std::filesystem::path> m_inputs;
  std::function<void(const Batch&)> m_observer;

  // Reader side.
  std::size_t m_next_input = 0;
  std::unique_ptr<ExportReader> m_reader;
  bool m_reader_fresh = false;             // m_reader has yielded nothing yet
  std::unique_ptr<PgConnection> m_lookup;  // the reader's own short queries
  std::uint64_t m_sequence = 0;
  std::uint64_t m_conversations_read = 0;
  std::uint64_t m_messages_read = 0;
  /// One transformer per input, created before that input's first batch is emitted.
  std::vector<std::unique_ptr<Transformer>> m_transformers;

  // Phase bookkeeping across nodes.
  std::atomic<std::uint64_t> m_produced{0};
  std::atomic<std::uint64_t> m_transformed{0};
  std::atomic<bool> m_reading_done{false};
  std::atomic<bool> m_transform_ended{false};
  std::atomic<bool> m_failed{false};
  // Batches read but not yet loaded, and the most seen: at most the limiter_node's
  // threshold plus the one the input_node holds while the limiter is full.
  std::atomic<std::int64_t> m_in_flight{0};
  std::atomic<std::int64_t> m_in_flight_max{0};

  // Load side.
  std::unique_ptr<Loader> m_loader;
  bool m_export_open = false;
  bool m_skip_export = false;
  std::uint64_t m_batches_loaded = 0;
  nlohmann::json m_current;  // result entry of the export being loaded
  mutable std::mutex m_result_mutex;
  nlohmann::json m_exports = nlohmann::json::array();
};

}  // namespace skype_etl::detail
