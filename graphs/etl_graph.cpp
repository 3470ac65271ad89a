// The one place where the flow graph is wired. Node bodies live in src/nodes.cpp.
#include "skype_etl/graph.hpp"

#include <oneapi/tbb/flow_graph.h>

#include <exception>
#include <vector>

#include "nodes.hpp"

namespace skype_etl {
namespace {

namespace flow = oneapi::tbb::flow;
using detail::RunState;

/// Runs `body`, recording a failure in the context under `phase` before it propagates
/// (and cancels the graph).
template <typename Body>
auto guarded(RunState& state, Phase phase, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& error) {
    state.record_failure(phase, error);
    throw;
  }
}

/// Parallel mode: the three phases overlap; the limiter bounds batches in flight.
void run_parallel(RunState& state) {
  flow::graph graph;
  flow::input_node<BatchPtr> reader(graph, [&state](oneapi::tbb::flow_control& control) {
    BatchPtr batch = guarded(state, Phase::extract, [&] { return state.read_next(); });
    if (!batch) control.stop();
    return batch;
  });
  flow::limiter_node<BatchPtr> limiter(graph, state.options().batches_in_flight);
  flow::function_node<BatchPtr, BatchPtr> transform(
      graph, flow::unlimited, [&state](const BatchPtr& batch) {
        guarded(state, Phase::transform, [&] { state.transform_batch(*batch); });
        return batch;
      });
  // Transform finishes batches out of order; load needs each export's batches in order.
  flow::sequencer_node<BatchPtr> order(graph,
                                       [](const BatchPtr& batch) { return batch->sequence; });
  flow::function_node<BatchPtr, flow::continue_msg> load(
      graph, flow::serial, [&state](const BatchPtr& batch) {
        guarded(state, Phase::load, [&] { state.load_batch(*batch); });
        return flow::continue_msg();
      });

  flow::make_edge(reader, limiter);
  flow::make_edge(limiter, transform);
  flow::make_edge(transform, order);
  flow::make_edge(order, load);
  flow::make_edge(load, limiter.decrementer());

  state.context().start_phase("extract");
  state.context().start_phase("transform");
  state.context().start_phase("load");
  reader.activate();
  graph.wait_for_all();
  state.finish_load_phase();
}

/// Sequential mode: the same bodies, one phase after another (the seed's behaviour). The
/// whole export's batches are held between phases, so memory grows with the export.
void run_sequential(RunState& state) {
  std::vector<BatchPtr> batches;
  ETLContext& context = state.context();

  context.start_phase("extract");
  while (BatchPtr batch = guarded(state, Phase::extract, [&] { return state.read_next(); }))
    batches.push_back(std::move(batch));

  context.start_phase("transform");
  {
    flow::graph graph;
    flow::function_node<BatchPtr> transform(graph, flow::unlimited, [&state](const BatchPtr& b) {
      guarded(state, Phase::transform, [&] { state.transform_batch(*b); });
    });
    for (const auto& batch : batches) transform.try_put(batch);
    graph.wait_for_all();
  }
  context.end_phase("transform", nlohmann::json::object());

  context.start_phase("load");
  {
    flow::graph graph;
    flow::function_node<BatchPtr, flow::continue_msg, flow::queueing> load(
        graph, flow::serial, [&state](const BatchPtr& b) {
          guarded(state, Phase::load, [&] { state.load_batch(*b); });
          return flow::continue_msg();
        });
    for (auto& batch : batches) {
      load.try_put(batch);
    }
    graph.wait_for_all();
  }
  batches.clear();
  state.finish_load_phase();
}

}  // namespace

struct EtlGraph::Impl {
  Impl(std::vector<std::filesystem::path> inputs, PipelineOptions options, ETLContext& context)
      : state(std::move(inputs), std::move(options), context) {}
  RunState state;
};

EtlGraph::EtlGraph(std::vector<std::filesystem::path> inputs, PipelineOptions options,
                   ETLContext& context)
    : m_impl(std::make_unique<Impl>(std::move(inputs), std::move(options), context)) {}

EtlGraph::~EtlGraph() = default;

void EtlGraph::on_batch_loaded(BatchObserver observer) {
  m_impl->state.set_batch_observer(std::move(observer));
}

nlohmann::json EtlGraph::run() {
  RunState& state = m_impl->state;
  try {
    if (state.context().parallel_processing()) {
      run_parallel(state);
    } else {
      run_sequential(state);
    }
  } catch (const std::exception& error) {
    state.record_failure(Phase::load, error);  // no-op when a node already recorded it
    state.abort();
    throw;
  }
  return state.result();
}

nlohmann::json EtlGraph::result() const {
  return m_impl->state.result();
}

}  // namespace skype_etl
