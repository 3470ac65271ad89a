// The flow graph of a run, for programs that embed skype-etl.
//
//   input_node (reader) → limiter_node (batches_in_flight) → transform function_node
//   (unlimited) → sequencer_node (restores input order) → load function_node (serial)
//   → limiter.decrementer()
//
// Messages along the edges are std::shared_ptr<Batch>. The limiter bounds the batches
// alive at once, so memory stays flat whatever the export size.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "skype_etl/export.hpp"
#include "skype_etl/context.hpp"
#include "skype_etl/model.hpp"
#include "skype_etl/options.hpp"

namespace skype_etl {

class SKYPE_ETL_API EtlGraph {
 public:
  /// Called on the load thread after each batch is written (before the next one).
  using BatchObserver = std::function<void(const Batch&)>;

  EtlGraph(std::vector<std::filesystem::path> inputs, PipelineOptions options, ETLContext& context);
  ~EtlGraph();
  EtlGraph(const EtlGraph&) = delete;
  EtlGraph& operator=(const EtlGraph&) = delete;

  void on_batch_loaded(BatchObserver observer);

  /// Runs the graph (phases overlapping when context.parallel_processing(), one after
  /// another otherwise) and returns {"exports": [...]}, one entry per input in order:
  /// {file, kind, file_size, user_id, digest, status ("loaded" or "already loaded"),
  /// export_id, account_id, conversations, messages {read, new, updated, unchanged,
  /// superseded, invalid_timestamps}, phases (this export's share of each), transform,
  /// load, memory}: the object skype.exports.statistics stores for the export.
  /// Throws the first error of any node (InputError, DatabaseError, MemoryLimitExceeded,
  /// ...) after recording it in the context, rolling back the export being loaded and
  /// ending the phases it left in progress as failed (so the context can run again).
  /// Throws std::logic_error, changing nothing, when a phase is already in progress in the
  /// context, or when this graph has run before (one run per EtlGraph).
  nlohmann::json run();
  /// What run() returns, so far: after a failure, the exports loaded before it.
  nlohmann::json result() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace skype_etl
