// Bounded-memory detection of message ids seen before in a conversation (the loader's
// duplicate candidates).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace skype_etl::detail {

/// Tells whether a message id may have been seen before in its conversation, in bounded
/// memory, from 64-bit hashes of the ids. Exact (an open-addressing set of the hashes) up
/// to exact_max ids, then a Bloom filter of bloom_bits bits (3 probes) that the set's
/// hashes seed. Never says "new" for an id seen before; may say "seen" for a new id (rarely:
/// about 0.6% of the ids of a conversation of 550k messages), which only makes the merge
/// look at that id. Released to nothing between conversations.
class IdSeenFilter {
 public:
  static constexpr std::size_t exact_max = std::size_t{1} << 15U;   // a 512 KiB table
  static constexpr std::size_t bloom_bits = std::size_t{1} << 23U;  // 1 MiB

  /// Adds `hash`; false when it may have been added before.
  bool insert(std::uint64_t hash) {
    if (hash == 0) hash = 1;  // 0 marks an empty slot
    if (!m_bloom.empty()) return bloom_insert(hash);
    if (m_size >= exact_max) {
      m_bloom.assign(bloom_bits / 64, 0);
      for (std::uint64_t h : m_slots)
        if (h != 0) bloom_insert(h);
      m_slots = std::vector<std::uint64_t>();
      return bloom_insert(hash);
    }
    if ((m_size + 1) * 2 > m_slots.size()) grow();
    return exact_insert(hash);
  }

  void clear() {
    m_slots = std::vector<std::uint64_t>();
    m_bloom = std::vector<std::uint64_t>();
    m_size = 0;
  }

 private:
  bool exact_insert(std::uint64_t hash) {
    const std::size_t mask = m_slots.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      if (m_slots[i] == hash) return false;
      if (m_slots[i] == 0) {
        m_slots[i] = hash;
        ++m_size;
        return true;
      }
    }
  }

  void grow() {
    std::vector<std::uint64_t> old = std::move(m_slots);
    m_slots.assign(std::max<std::size_t>(1024, old.size() * 2), 0);
    for (std::uint64_t h : old)
      if (h != 0) exact_insert(h);
  }

  bool bloom_insert(std::uint64_t hash) {
    // Double hashing: probe i is h1 + i * h2 (Kirsch and Mitzenmacher).
    const std::uint64_t h1 = hash & 0xffffffffU;
    const std::uint64_t h2 = (hash >> 32U) | 1U;
    bool fresh = false;
    for (std::uint64_t i = 0; i < 3; ++i) {
      const std::uint64_t bit = (h1 + i * h2) & (bloom_bits - 1);
      std::uint64_t& word = m_bloom[bit / 64];
      const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
      if ((word & mask) == 0) {
        fresh = true;
        word |= mask;
      }
    }
    return fresh;
  }

  std::size_t m_size = 0;
  std::vector<std::uint64_t> m_slots;
  std::vector<std::uint64_t> m_bloom;
};

}  // namespace skype_etl::detail
