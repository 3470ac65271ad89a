#include "skype_etl/pipeline.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <typeinfo>

#include "skype_etl/errors.hpp"
#include "skype_etl/graph.hpp"

namespace skype_etl {
namespace {

std::string type_name(const std::exception& error) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(typeid(error).name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? name.get() : typeid(error).name();
}

}  // namespace

nlohmann::json run_etl_pipeline(const std::vector<std::filesystem::path>& files,
                                const PipelineOptions& options, ETLContext& context) {
  nlohmann::json result{{"success", false}};
  EtlGraph graph(files, options, context);
  try {
    nlohmann::json run = graph.run();
    result["success"] = true;
    result["exports"] = run["exports"];
    for (const auto& e : run["exports"]) {
      if (e.contains("export_id")) result["export_id"] = e["export_id"];
      // The run went on past a failed export: the first one's error is the run's.
      if (e.value("status", "") == "failed" && result["success"].get<bool>()) {
        result["success"] = false;
        result["error"] = e.value("error", "");
        result["error_type"] = e.value("error_type", "");
        result["exit_code"] = e.value("exit_code", static_cast<int>(ExitCode::internal));
      }
    }
  } catch (const std::exception& error) {
    result["error"] = error.what();
    result["error_type"] = type_name(error);
    result["exit_code"] = static_cast<int>(exit_code_for(error));
    result["exports"] = graph.result()["exports"];  // the inputs loaded before the failure
  }
  const nlohmann::json statistics = context.statistics();
  result["phases"] = statistics.value("phases", nlohmann::json::object());
  result["statistics"] = statistics;
  return result;
}

nlohmann::json run_etl_pipeline(const std::filesystem::path& file,
                                std::string_view user_display_name, ETLContext& context) {
  PipelineOptions options;
  options.user_display_name = std::string(user_display_name);
  return run_etl_pipeline(std::vector<std::filesystem::path>{file}, options, context);
}

}  // namespace skype_etl
