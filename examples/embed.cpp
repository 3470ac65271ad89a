// Embedding skype-etl: load an export through the library's graph and watch its progress.
//   embed EXPORT CONNINFO
#include <cstdio>

#include "skype_etl/context.hpp"
#include "skype_etl/graph.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s EXPORT CONNINFO\n", argv[0]);
    return 2;
  }
  skype_etl::ETLContext context(skype_etl::DbConfig{argv[2]}, /*batch_size=*/1000,
                                /*memory_limit_mb=*/std::nullopt, /*parallel_processing=*/true);
  skype_etl::PipelineOptions options;
  skype_etl::EtlGraph graph({argv[1]}, options, context);
  graph.on_batch_loaded([&context](const skype_etl::Batch&) {
    const auto& load = context.progress_tracker(skype_etl::Phase::load);
    std::fprintf(stderr, "\rloaded %llu messages",
                 static_cast<unsigned long long>(load.processed_messages()));
  });
  try {
    const auto result = graph.run();
    std::printf("\n%s\n", result.dump(2).c_str());
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "\nfailed: %s\n", error.what());
    return 1;
  }
}
