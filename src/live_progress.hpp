// Where each input of a run is, set by the nodes as they go and read by
// EtlGraph::progress() from any thread.
//
// Thread-safety: every member is an atomic, written by one node (the reader, or the load)
// once per batch or per load step, and read with relaxed loads: a snapshot is a consistent
// view of each counter, not of all of them at one instant (a display does not need that).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "skype_etl/graph.hpp"

namespace skype_etl::detail {

class LiveProgress {
 public:
  explicit LiveProgress(const std::vector<std::filesystem::path>& inputs);
  ~LiveProgress();
  LiveProgress(const LiveProgress&) = delete;
  LiveProgress& operator=(const LiveProgress&) = delete;

  // The reader's thread.
  /// Input `index` is being opened (and, for a .gz, inflated: see inflated_from).
  void opening(std::size_t index) noexcept;
  /// Where InputSource::open stores the compressed bytes inflated (InputOptions).
  std::atomic<std::uint64_t>* inflated_from(std::size_t index) noexcept;
  /// Opened: `file_size` bytes given, `content_size` bytes to read (decompressed, for a .gz).
  void reading(std::size_t index, std::uint64_t file_size, std::uint64_t content_size) noexcept;
  /// A batch of `messages` left the reader, which is at byte `position` of the content.
  void read(std::size_t index, std::uint64_t position, std::uint64_t messages) noexcept;
  /// Every byte of the input was read (or it was skipped: loaded before).
  void read_whole(std::size_t index) noexcept;

  // The load's thread.
  /// A batch of input `index` reaches the load: the steps told from now on are its.
  void loading(std::size_t index) noexcept;
  /// A step of the export being loaded begins (LoaderOptions::on_step; a string literal).
  void load_step(const char* step) noexcept;
  /// A batch of `messages` was loaded.
  void loaded(std::size_t index, std::uint64_t messages) noexcept;
  /// The export's result is in (a failed one stays "failed").
  void done(std::size_t index) noexcept;

  // Either thread, once per export.
  /// The export failed (its error is reported with its result); the run goes on.
  void failed(std::size_t index) noexcept;

  /// Every input, in order (batches_in_flight left for the caller).
  RunProgress snapshot() const;

 private:
  enum Stage : int { waiting, opening_input, reading_input, read_input, finished, failed_input };
  struct Slot {
    std::filesystem::path path;  // set by the constructor, never changed
    std::string file;            // the same
    std::atomic<int> stage{waiting};
    std::atomic<const char*> step{nullptr};  // the load's step (a literal) once it runs
    std::atomic<std::uint64_t> inflated{0};
    std::atomic<std::uint64_t> file_size{0};
    std::atomic<std::uint64_t> position{0};
    std::atomic<std::uint64_t> content_size{0};
    std::atomic<std::uint64_t> messages_read{0};
    std::atomic<std::uint64_t> messages_loaded{0};
    std::atomic<std::int64_t> start_us{0};
    std::atomic<std::int64_t> end_us{0};
  };
  std::size_t m_count;
  std::unique_ptr<Slot[]> m_slots;
  std::atomic<std::size_t> m_loading{SIZE_MAX};  // the input whose batches the load has
};

}  // namespace skype_etl::detail
