// Embedding skype-etl: load exports through the library's graph and watch its progress.
//   embed CONNINFO EXPORT...
#include <cstdio>

#include "skype_etl/context.hpp"
#include "skype_etl/graph.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CONNINFO EXPORT...\n", argv[0]);
    return 2;
  }
  skype_etl::Options options;  // every knob, with the command's defaults
  options.db.conninfo = argv[1];
  skype_etl::ETLContext context(options);
  skype_etl::EtlGraph graph({argv + 2, argv + argc}, options, context);
  std::uint64_t loaded = 0;
  graph.on_batch_loaded([&loaded](const skype_etl::BatchProgress& batch) {
    loaded += batch.messages;
    std::fprintf(stderr, "\rexport %zu: %llu messages loaded", batch.export_index + 1,
                 static_cast<unsigned long long>(loaded));
  });
  const skype_etl::RunResult result = graph.run();  // never throws for a failed run
  std::fprintf(stderr, "\n");
  for (const skype_etl::ExportOutcome& e : result.exports) {
    if (e.status == "failed") {
      std::printf("%s: failed: %s\n", e.file.c_str(), e.error.c_str());
    } else {
      std::printf("%s: %s, %llu messages read, %llu new (export %lld)\n", e.file.c_str(),
                  e.status.c_str(), static_cast<unsigned long long>(e.messages.read),
                  static_cast<unsigned long long>(e.messages.inserted),
                  static_cast<long long>(e.export_id.value_or(0)));
    }
  }
  if (!result.success) std::fprintf(stderr, "embed: %s\n", result.error.c_str());
  // The same as JSON, the shape `skype-etl run --report` writes: result.to_json().
  return result.exit_code;
}
