// The flow graph of a run, for programs that embed skype-etl.
//
//   input_node (reader) → limiter_node (batches_in_flight) → transform function_node
//   (unlimited) → sequencer_node (restores input order) → load function_node (serial)
//   → limiter.decrementer()
//
// Messages along the edges are std::shared_ptr<Batch>. The limiter bounds the batches
// alive at once, so memory stays flat whatever the export size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skype_etl/context.hpp"
#include "skype_etl/export.hpp"
#include "skype_etl/options.hpp"
#include "skype_etl/result.hpp"

namespace skype_etl {

/// A run as it goes, for progress displays and samplers (EtlGraph::progress()).
struct RunProgress {
  /// One input of the run.
  struct Export {
    std::size_t index = 0;  ///< among the graph's inputs, from 0
    /// The path as given, written as exports.file_name is (valid UTF-8, other bytes as
    /// `\xHH`). It comes from the user's files: escape control characters before printing
    /// it to a terminal.
    std::string file;
    /// What happens to it now: "waiting" (not opened yet), "opening", "inflating" (a .gz
    /// being decompressed), "reading" (batches leaving the reader), "loading" (read whole;
    /// its last batches on their way to the database), then the step of the load's finish
    /// that runs ("copy_rest", "index_build", "messages", ..., "commit": the load steps of
    /// the report), and "done" once its result is in; "failed" once it failed (the run goes
    /// on with the next). A run that stops on an error leaves it where it was.
    std::string activity;
    std::uint64_t file_size = 0;  ///< bytes of the file given; 0 until it is opened
    /// Progress through bytes_total bytes: while inflating, the compressed bytes inflated so
    /// far, of file_size; from reading on, bytes read up to the reader's position, of the
    /// file (of the decompressed content for a .gz), all of them once it is read whole.
    std::uint64_t bytes_done = 0;
    std::uint64_t bytes_total = 0;
    std::uint64_t messages_read = 0;    ///< message objects read so far
    std::uint64_t messages_loaded = 0;  ///< of those, handed to the database (COPY)
    /// When it began to be opened and when its result was in (system_clock microseconds
    /// since the epoch, the clock of the phases' times); 0: not yet.
    std::int64_t start_us = 0;
    std::int64_t end_us = 0;
  };
  std::vector<Export> exports;              ///< every input, in order
  std::int64_t batches_in_flight = 0;       ///< admitted by the limiter, not yet loaded
  std::size_t batches_in_flight_limit = 0;  ///< the limiter's threshold
};

/// A batch the load node has written, as EtlGraph::on_batch_loaded tells it.
struct BatchProgress {
  std::size_t export_index = 0;       ///< its input, among the graph's inputs from 0
  std::uint64_t sequence = 0;         ///< its place in the run, from 0
  std::uint64_t export_sequence = 0;  ///< its place in its export, from 0
  std::uint64_t conversations = 0;    ///< conversations that ended in it
  std::uint64_t messages = 0;         ///< message objects in it
  bool last_of_export = false;        ///< nothing of its export follows
};

class SKYPE_ETL_API EtlGraph {
 public:
  /// Called on the load thread after each batch is written (before the next one).
  using BatchObserver = std::function<void(const BatchProgress&)>;

  EtlGraph(std::vector<std::filesystem::path> inputs, Options options, ETLContext& context);
  ~EtlGraph();
  EtlGraph(const EtlGraph&) = delete;
  EtlGraph& operator=(const EtlGraph&) = delete;

  void on_batch_loaded(BatchObserver observer);

  /// Runs the graph (phases overlapping when context.parallel_processing(), one after
  /// another otherwise) and says what happened: RunResult has one entry per input it got
  /// to, in order, with its status ("loaded", "already loaded", "failed"), counts and ids;
  /// each entry's statistics are the object skype.exports.statistics stores for it. An
  /// export that fails is rolled back and the run goes on (unless options.fail_fast); a
  /// failure no export is to blame for (the memory limit, a lost connection, a bug) stops
  /// the run: the export being loaded is rolled back, the phases it left in progress end
  /// as failed (so the context can run again), and the result says stopped. Never throws
  /// for a failed run: success, exit_code and error say it. Throws std::logic_error,
  /// changing nothing, when a phase is already in progress in the context, or when this
  /// graph has run before (one run per EtlGraph).
  RunResult run();
  /// What run() returns, so far (the inputs done up to now).
  RunResult result() const;
  /// Where the run is, for a progress display or a sampler polling it from another thread
  /// while run() runs (also before and after). Thread-safe and cheap: it reads atomics the
  /// nodes set once per batch and once per load step (no lock is shared with the nodes),
  /// and copies one entry per input.
  RunProgress progress() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace skype_etl
