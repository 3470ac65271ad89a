// The charts of the HTML report drawn over the run's time: the load's steps as a Gantt
// (under the phases' bars), and the samples (RunSampler) as line charts. Inline SVG only.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace skype_etl::detail {

/// Where times go across a chart: x = left + (seconds since the epoch - origin) * scale.
struct TimeAxis {
  double origin = 0;  ///< seconds since the epoch at x = left
  double span = 1;    ///< seconds across the plot
  int width = 900;    ///< of the whole SVG
  int left = 90;      ///< where the plot begins (labels to its left)
  int right = 20;     ///< margin to the right of the plot
  double x(double epoch_seconds) const;
  /// Ticks and their labels along y = `y`.
  std::string ticks(int y) const;
};

/// The earliest start and latest end (seconds since the epoch) of the exports' load steps
/// (exports[i].load.steps) and the samples (sampling.samples), widening [first, last].
void time_range_of(const nlohmann::json& exports, const nlohmann::json& sampling, double& first,
                   double& last);

/// Rows of the Gantt for the load steps of `exports`, from y = `top`: one row per step name
/// (and stream connection), a <rect class="step" data-step="name"> per step. Adds the height
/// used to `height`.
std::string load_steps_gantt(const nlohmann::json& exports, const TimeAxis& axis, int top,
                             int& height);

/// Three <svg class="chart" data-chart="..."> ("rates": messages/s per phase, "in_flight":
/// batches in flight against the limiter's bound, "memory": private memory), each drawn
/// with <path> elements; empty when there are fewer than two samples.
std::string sample_charts(const nlohmann::json& sampling, const TimeAxis& axis);

}  // namespace skype_etl::detail
