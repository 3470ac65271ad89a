#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>

#include "core/model.hpp"

namespace skype_etl {

char* TextArena::allocate(std::size_t size) {
  if (m_blocks.empty() || m_blocks.back().size - m_blocks.back().used < size) {
    Block block;
    block.size = std::max(size, m_block_size);
    block.data = std::make_unique<char[]>(block.size);
    m_blocks.push_back(std::move(block));
  }
  Block& block = m_blocks.back();
  return block.data.get() + block.used;
}

std::string_view TextArena::commit(const char* begin, std::size_t used) noexcept {
  m_blocks.back().used += used;
  m_total += used;
  return {begin, used};
}

std::string_view TextArena::store(std::string_view text) {
  if (text.empty()) return {};
  char* out = allocate(text.size());
  std::memcpy(out, text.data(), text.size());
  return commit(out, text.size());
}

bool TextArena::owns(std::string_view text) const noexcept {
  // std::less orders pointers of unrelated blocks too, where `<` would not be specified.
  const std::less<const char*> before;
  for (const Block& block : m_blocks) {
    const char* begin = block.data.get();
    if (!before(text.data(), begin) && !before(begin + block.used, text.data() + text.size()))
      return true;
  }
  return false;
}

Digest::Digest(std::string known) {
  std::promise<std::string> value;
  value.set_value(std::move(known));
  m_value = value.get_future().share();
}

bool Digest::ready() const {
  return m_value.valid() && m_value.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

const std::string& Digest::get() const {
  static const std::string none;
  return m_value.valid() ? m_value.get() : none;
}

}  // namespace skype_etl
