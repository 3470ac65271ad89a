#include "live_progress.hpp"

#include <algorithm>
#include <cstring>
#include <system_error>

#include "core/clock.hpp"
#include "core/file_name.hpp"

namespace skype_etl::detail {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;

}  // namespace

LiveProgress::LiveProgress(const std::vector<std::filesystem::path>& inputs)
    : m_count(inputs.size()), m_slots(std::make_unique<Slot[]>(inputs.size())) {
  for (std::size_t i = 0; i < m_count; ++i) {
    m_slots[i].path = inputs[i];
    m_slots[i].file = escape_file_name(inputs[i].string());
  }
}

LiveProgress::~LiveProgress() = default;

void LiveProgress::opening(std::size_t index) noexcept {
  Slot& slot = m_slots[index];
  slot.start_us.store(now_us(), relaxed);
  // What a .gz is inflated from (stat only: a pipe or a directory gives an error, and
  // open() says what is wrong with it).
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(slot.path, error);
  if (!error) slot.file_size.store(size, relaxed);
  slot.stage.store(opening_input, relaxed);
}

std::atomic<std::uint64_t>* LiveProgress::inflated_from(std::size_t index) noexcept {
  return &m_slots[index].inflated;
}

void LiveProgress::reading(std::size_t index, std::uint64_t file_size,
                           std::uint64_t content_size) noexcept {
  Slot& slot = m_slots[index];
  slot.file_size.store(file_size, relaxed);
  slot.content_size.store(content_size, relaxed);
  slot.stage.store(reading_input, relaxed);
}

void LiveProgress::read(std::size_t index, std::uint64_t position,
                        std::uint64_t messages) noexcept {
  Slot& slot = m_slots[index];
  slot.position.store(position, relaxed);
  slot.messages_read.fetch_add(messages, relaxed);
}

void LiveProgress::read_whole(std::size_t index) noexcept {
  Slot& slot = m_slots[index];
  slot.position.store(slot.content_size.load(relaxed), relaxed);
  slot.stage.store(read_input, relaxed);
}

void LiveProgress::loading(std::size_t index) noexcept {
  if (m_loading.exchange(index, relaxed) != index) m_slots[index].step.store(nullptr, relaxed);
}

void LiveProgress::load_step(const char* step) noexcept {
  const std::size_t index = m_loading.load(relaxed);
  if (index < m_count) m_slots[index].step.store(step, relaxed);
}

void LiveProgress::loaded(std::size_t index, std::uint64_t messages) noexcept {
  m_slots[index].messages_loaded.fetch_add(messages, relaxed);
}

void LiveProgress::done(std::size_t index) noexcept {
  Slot& slot = m_slots[index];
  slot.end_us.store(now_us(), relaxed);
  int stage = slot.stage.load(relaxed);
  while (stage != failed_input && !slot.stage.compare_exchange_weak(stage, finished, relaxed)) {
  }
}

void LiveProgress::failed(std::size_t index) noexcept {
  m_slots[index].stage.store(failed_input, relaxed);
}

RunProgress LiveProgress::snapshot() const {
  RunProgress progress;
  progress.exports.reserve(m_count);
  for (std::size_t i = 0; i < m_count; ++i) {
    const Slot& slot = m_slots[i];
    RunProgress::Export e;
    e.index = i;
    e.file = slot.file;
    const int stage = slot.stage.load(relaxed);
    e.file_size = slot.file_size.load(relaxed);
    e.messages_read = slot.messages_read.load(relaxed);
    e.messages_loaded = slot.messages_loaded.load(relaxed);
    e.start_us = slot.start_us.load(relaxed);
    e.end_us = slot.end_us.load(relaxed);
    const std::uint64_t inflated = slot.inflated.load(relaxed);
    switch (stage) {
      case waiting:
        e.activity = "waiting";
        break;
      case opening_input:
        e.activity = inflated > 0 ? "inflating" : "opening";
        break;
      case reading_input:
        e.activity = "reading";
        break;
      case read_input: {
        // The batches' COPY is the load itself; what follows are the steps of its finish.
        const char* step = slot.step.load(relaxed);
        e.activity = step && std::strcmp(step, "begin") != 0 && std::strcmp(step, "copy") != 0
                         ? step
                         : "loading";
        break;
      }
      case finished:
        e.activity = "done";
        break;
      default:
        e.activity = "failed";
    }
    if (stage == opening_input) {
      e.bytes_done = inflated;
      e.bytes_total = e.file_size;
    } else if (stage != waiting) {
      e.bytes_total = slot.content_size.load(relaxed);
      e.bytes_done = std::min(slot.position.load(relaxed), e.bytes_total);
    }
    progress.exports.push_back(std::move(e));
  }
  return progress;
}

}  // namespace skype_etl::detail
