// skype-etl-generate: writes a synthetic Skype export and prints its summary as one JSON
// line, e.g. skype-etl-generate --messages 1000000 --seed 7 --format tar -o export.tar
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "generator/generator.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Writes a synthetic Skype export (messages.json or a tar holding it)"};
  skype_etl::gen::GeneratorOptions options;
  std::string format = "json";
  std::string output;
  bool no_quirks = false;
  app.add_option("--messages,-n", options.messages, "message objects to write")
      ->capture_default_str();
  app.add_option("--seed,-s", options.seed, "random seed (same seed, same bytes)")
      ->capture_default_str();
  app.add_option("--format,-f", format, "json or tar")
      ->check(CLI::IsMember({"json", "tar"}))
      ->capture_default_str();
  app.add_option("--conversations,-c", options.conversations,
                 "conversations (0: about 2*sqrt(messages))")
      ->capture_default_str();
  app.add_option("--user-id", options.user_id, "the export owner's id")->capture_default_str();
  app.add_option("--newer", options.newer_percent,
                 "a later export of the same seed: every conversation gets this percentage "
                 "more messages, newer than the others, which stay as they were")
      ->check(CLI::Range(0u, 1000u))
      ->capture_default_str();
  app.add_flag("--no-quirks", no_quirks,
               "leave out the real-world quirks (missing fields, duplicates, ...)");
  app.add_option("-o,--output", output, "file to write")->required();
  CLI11_PARSE(app, argc, argv);
  options.quirks = !no_quirks;
  options.format = format == "tar" ? skype_etl::gen::GeneratorOptions::Format::tar
                                   : skype_etl::gen::GeneratorOptions::Format::json;
  try {
    const auto start = std::chrono::steady_clock::now();
    const skype_etl::gen::GeneratorSummary summary =
        skype_etl::gen::generate_export(options, output);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json line = {
        {"file", output},
        {"format", format},
        {"seed", options.seed},
        {"newer_percent", options.newer_percent},
        {"quirks", options.quirks},
        {"conversations", summary.conversations},
        {"messages", summary.messages},
        {"distinct_messages", summary.distinct_messages},
        {"json_bytes", summary.json_bytes},
        {"file_bytes", summary.file_bytes},
        {"messages_by_type", summary.messages_by_type},
        {"seconds", seconds},
        {"mb_per_second", seconds > 0 ? summary.file_bytes / seconds / 1e6 : 0.0},
    };
    std::puts(line.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "skype-etl-generate: %s\n", e.what());
    return 1;
  }
  return 0;
}
