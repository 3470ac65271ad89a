// Running the whole extract → transform → load pipeline.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "skype_etl/context.hpp"
#include "skype_etl/export.hpp"
#include "skype_etl/options.hpp"

namespace skype_etl {

/// Loads one export (messages.json, a tar, a .gz of either, or an unpacked directory) into
/// the database of context.db_config(). Never throws for a failed run: the result says
/// {"success": false, "error": "...", "error_type": "...", "exit_code": N}. Result shape:
/// {success, phases{extract,transform,load}, export_id, exports[...], error, statistics}.
SKYPE_ETL_API nlohmann::json run_etl_pipeline(const std::filesystem::path& file,
                                              std::string_view user_display_name,
                                              ETLContext& context);

/// Several exports, loaded one after another through the same graph, each in its own
/// transaction (a later export's failure leaves the earlier ones loaded).
SKYPE_ETL_API nlohmann::json run_etl_pipeline(const std::vector<std::filesystem::path>& files,
                                              const Options& options, ETLContext& context);

}  // namespace skype_etl
