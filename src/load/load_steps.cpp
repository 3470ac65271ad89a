#include "load/load_steps.hpp"

#include "core/clock.hpp"

namespace skype_etl::detail {

void LoadSteps::begin(const char* name) {
  const std::int64_t now = now_us();
  if (m_running) m_steps[m_running_index].end_us = now;
  m_running_index = m_steps.size();
  m_steps.push_back(Step{name, std::string(), 0, now, 0});
  m_running = true;
  if (m_observer) m_observer(name);
}

void LoadSteps::end() {
  if (!m_running) return;
  m_steps[m_running_index].end_us = now_us();
  m_running = false;
}

void LoadSteps::add_streams(const char* name, const std::vector<StatementTiming>& timings,
                            const std::vector<std::string>& details) {
  for (std::size_t i = 0; i < timings.size(); ++i)
    m_steps.push_back(Step{name, i < details.size() ? details[i] : std::string(),
                           timings[i].stream + 1, timings[i].start_us, timings[i].end_us});
}

void LoadSteps::clear() {
  m_steps.clear();
  m_running = false;
}

nlohmann::json LoadSteps::to_json() const {
  const std::int64_t now = now_us();
  nlohmann::json steps = nlohmann::json::array();
  for (const Step& step : m_steps) {
    nlohmann::json entry{{"step", step.name},
                         {"connection", step.connection},
                         {"start_us", step.start_us},
                         {"end_us", step.end_us != 0 ? step.end_us : now}};
    if (!step.detail.empty()) entry["detail"] = step.detail;
    steps.push_back(std::move(entry));
  }
  return steps;
}

nlohmann::json LoadSteps::seconds_since(std::int64_t since_us) const {
  const std::int64_t now = now_us();
  nlohmann::json seconds = nlohmann::json::object();
  for (const Step& step : m_steps) {
    if (step.connection != 0 || step.start_us < since_us) continue;
    const double s =
        static_cast<double>((step.end_us != 0 ? step.end_us : now) - step.start_us) / 1e6;
    seconds[step.name] = seconds.value(step.name, 0.0) + s;
  }
  return seconds;
}

}  // namespace skype_etl::detail
