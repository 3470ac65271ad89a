#include "skype_etl/pipeline.hpp"

#include <stdexcept>
#include <typeinfo>

#include "skype_etl/errors.hpp"
#include "skype_etl/graph.hpp"

namespace skype_etl {

nlohmann::json run_etl_pipeline(const std::vector<std::filesystem::path>& files,
                                const Options& options, ETLContext& context) {
  nlohmann::json result;
  try {
    EtlGraph graph(files, options, context);
    const RunResult run = graph.run();
    result = run.to_json();
    // The last export stored (the seed's single-export result had its id).
    for (const ExportOutcome& e : run.exports)
      if (e.export_id) result["export_id"] = *e.export_id;
  } catch (const std::exception& error) {
    // A context that cannot run (a phase of it in use): refused, the context untouched.
    result = {{"success", false},
              {"exit_code", static_cast<int>(exit_code_for(error))},
              {"error", printable(error.what())},
              {"error_type", "std::logic_error"},
              {"stopped", true},
              {"exports", nlohmann::json::array()}};
    if (dynamic_cast<const std::logic_error*>(&error) == nullptr)
      result["error_type"] = typeid(error).name();
  }
  const nlohmann::json statistics = context.statistics();
  result["phases"] = statistics.value("phases", nlohmann::json::object());
  result["statistics"] = statistics;
  return result;
}

nlohmann::json run_etl_pipeline(const std::filesystem::path& file,
                                std::string_view user_display_name, ETLContext& context) {
  Options options;
  options.user_display_name = std::string(user_display_name);
  return run_etl_pipeline(std::vector<std::filesystem::path>{file}, options, context);
}

}  // namespace skype_etl
