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

/// Declared after a graph's nodes: if anything throws before wait_for_all() has returned,
/// cancels the graph and waits for its tasks before the nodes they use are destroyed (the
/// graph's own destructor would run a pending task on destroyed nodes).
class DrainOnUnwind {
 public:
  explicit DrainOnUnwind(flow::graph& graph) noexcept : m_graph(graph) {}
  ~DrainOnUnwind() {
    if (!m_armed) return;
    m_graph.cancel();
    try {
      m_graph.wait_for_all();
    } catch (...) {
      // The error that unwinds is the one that matters.
    }
  }
  DrainOnUnwind(const DrainOnUnwind&) = delete;
  DrainOnUnwind& operator=(const DrainOnUnwind&) = delete;
  /// wait_for_all() has returned: the nodes are idle.
  void drained() noexcept { m_armed = false; }

 private:
  flow::graph& m_graph;
  bool m_armed = true;
};

/// Parallel mode: the three phases overlap; the limiter bounds batches in flight.
void run_parallel(RunState& state) {
  // Before any node exists: a phase that cannot start leaves nothing to clean up.
  state.start_phases({Phase::extract, Phase::transform, Phase::load});

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
  DrainOnUnwind drain(graph);

  flow::make_edge(reader, limiter);
  flow::make_edge(limiter, transform);
  flow::make_edge(transform, order);
  flow::make_edge(order, load);
  flow::make_edge(load, limiter.decrementer());

  reader.activate();
  graph.wait_for_all();
  drain.drained();
  state.finish_run();
}

/// Sequential mode: the same bodies, one phase after another (the seed's behaviour). The
/// whole export's batches are held between phases, so memory grows with the export.
void run_sequential(RunState& state) {
  std::vector<BatchPtr> batches;
  ETLContext& context = state.context();

  state.start_phases({Phase::extract});
  while (BatchPtr batch = guarded(state, Phase::extract, [&] { return state.read_next(); }))
    batches.push_back(std::move(batch));

  state.start_phases({Phase::transform});
  {
    flow::graph graph;
    flow::function_node<BatchPtr> transform(graph, flow::unlimited, [&state](const BatchPtr& b) {
      guarded(state, Phase::transform, [&] { state.transform_batch(*b); });
    });
    DrainOnUnwind drain(graph);
    for (const auto& batch : batches) transform.try_put(batch);
    graph.wait_for_all();
    drain.drained();
  }
  context.end_phase("transform", nlohmann::json::object());

  state.start_phases({Phase::load});
  {
    flow::graph graph;
    flow::function_node<BatchPtr, flow::continue_msg, flow::queueing> load(
        graph, flow::serial, [&state](const BatchPtr& b) {
          guarded(state, Phase::load, [&] { state.load_batch(*b); });
          return flow::continue_msg();
        });
    DrainOnUnwind drain(graph);
    for (auto& batch : batches) load.try_put(batch);
    graph.wait_for_all();
    drain.drained();
  }
  batches.clear();
  state.finish_run();
}

}  // namespace

struct EtlGraph::Impl {
  Impl(std::vector<std::filesystem::path> inputs, Options options, ETLContext& context)
      : state(std::move(inputs), std::move(options), context) {}
  RunState state;
};

EtlGraph::EtlGraph(std::vector<std::filesystem::path> inputs, Options options, ETLContext& context)
    : m_impl(std::make_unique<Impl>(std::move(inputs), std::move(options), context)) {}

EtlGraph::~EtlGraph() = default;

void EtlGraph::on_batch_loaded(BatchObserver observer) {
  m_impl->state.set_batch_observer(std::move(observer));
}

RunResult EtlGraph::run() {
  RunState& state = m_impl->state;
  // A context whose phases are in use is refused before anything in it changes.
  state.check_can_start();
  std::exception_ptr failure;
  try {
    if (state.context().parallel_processing()) {
      run_parallel(state);
    } else {
      run_sequential(state);
    }
  } catch (const std::exception& error) {
    state.record_failure(Phase::load, error);  // no-op when a node already recorded it
    state.abort();
    failure = std::current_exception();
  }
  return state.run_result(failure);
}

RunResult EtlGraph::result() const {
  return m_impl->state.run_result(nullptr);
}

RunProgress EtlGraph::progress() const {
  return m_impl->state.progress();
}

}  // namespace skype_etl
