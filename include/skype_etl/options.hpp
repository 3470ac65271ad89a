// Every knob of a run, with its default, in one place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace skype_etl {

/// Where to load. `conninfo` is a libpq connection string (URI or key=value);
/// empty means libpq's defaults and the PG* environment variables.
struct DbConfig {
  std::string conninfo;
};

/// Every knob of a run, each with its one default: the command's options (`skype-etl run
/// --help` shows these defaults), the library's and the benchmarks'. ETLContext(options)
/// takes the first five; EtlGraph and run_etl_pipeline the rest (and use the context's for
/// the first five).
struct Options {
  /// Messages per batch travelling through the graph.
  static constexpr std::size_t default_batch_size = 1000;

  DbConfig db;
  std::size_t batch_size = default_batch_size;
  /// Private memory (RssAnon) allowed, in MB; empty or 0: no limit.
  std::optional<std::size_t> memory_limit_mb;
  /// Extract, transform and load overlap (a flow graph with backpressure); false: one
  /// after another (the whole export held in memory between them).
  bool parallel_processing = true;
  /// With with_media: where each export's media files go, in a directory of its own.
  std::optional<std::filesystem::path> output_dir;

  /// Display name given to the export owner's own messages (their displayName is null).
  std::string user_display_name;
  /// Batches allowed between the reader and the end of the load node at once
  /// (the limiter_node threshold). Bounds memory whatever the export size.
  std::size_t batches_in_flight = 8;
  /// Connections that COPY the messages of a large export of an account new to the database
  /// at once, and then build the indexes of its partition at once (more server cores at
  /// work); 1 = one at a time, 0 = load it like a later export of the account (staged, then
  /// merged).
  std::size_t copy_streams = 2;
  /// maintenance_work_mem of the load's index builds, in bytes; a server whose own setting
  /// is larger keeps its own. Empty (the default): 256 MiB, at most a 16th of the RAM for a
  /// server reached through a Unix socket (on this machine), at most twice shared_buffers
  /// for another.
  std::optional<std::uint64_t> maintenance_work_mem;
  /// A batch ends at the context's batch size or once its messages span this many bytes of
  /// messages.json, whichever comes first (0: no byte limit): batches of large messages stay
  /// small, so what batches in flight hold stays bounded (README: "Resources").
  std::size_t batch_max_bytes = std::size_t{1} << 20U;
  /// Join media/<docid>.json metadata from the tar to messages.
  bool with_media = false;
  /// Directory where a gzip-compressed export (.tar.gz, .json.gz) is inflated, into an
  /// unlinked temporary file that is memory-mapped (file-backed pages, not private memory)
  /// and freed when the export is read. Empty: $TMPDIR, else /tmp. It needs the inflated size
  /// free (and keeps 1 GiB, or 5% of its file system, free besides).
  std::filesystem::path temp_dir;
  /// Refuse gzip data that inflates to more than this many times its compressed size (plus
  /// 64 MiB): real exports inflate about 5-15 times (a chat of nothing but near-identical
  /// call events: 45), gzip bombs about 1000 times. 0: no limit (for a genuine file beyond it).
  std::uint64_t max_gzip_ratio = 100;
  /// Test hook: throw after this many batches were loaded (simulates a crash mid-load).
  std::optional<std::size_t> fail_after_batches;
  /// A failing export (unreadable, refused by the database) ends the run. Otherwise
  /// (default) the run goes on with the next export: the failed one is rolled back and its
  /// entry in the result says why (status "failed"); what ends the run anyway is a failure
  /// no export is to blame for (the memory limit, a bug).
  bool fail_fast = false;
};

/// The name of Options before 1.0, kept for programs written against it.
using PipelineOptions = Options;

}  // namespace skype_etl
