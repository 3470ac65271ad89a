// Deterministic pseudo-random numbers for the generator. Everything is integer arithmetic
// with fixed algorithms (xoshiro256**, splitmix64), so a seed gives the same export on
// every platform and standard library (std::uniform_int_distribution would not).
#pragma once

#include <cstddef>
#include <cstdint>

namespace skype_etl::gen::detail {

/// splitmix64's finaliser: a bijection on 64-bit values (distinct inputs, distinct outputs).
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A bijection on [0, 2^62): used for ids that must never repeat.
constexpr std::uint64_t mix62(std::uint64_t x) noexcept {
  constexpr std::uint64_t mask = (1ULL << 62) - 1;
  x &= mask;
  x = (x * 0x9e3779b97f4a7c15ULL) & mask;  // odd multiplier: invertible modulo 2^62
  x ^= x >> 29;
  x = (x * 0xbf58476d1ce4e5b9ULL) & mask;
  x ^= x >> 32;
  return x;
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept {
    std::uint64_t s = seed;
    for (auto& word : m_state) {
      s += 0x9e3779b97f4a7c15ULL;
      word = mix64(s);
    }
  }

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(m_state[1] * 5, 7) * 9;
    const std::uint64_t t = m_state[1] << 17;
    m_state[2] ^= m_state[0];
    m_state[3] ^= m_state[1];
    m_state[1] ^= m_state[2];
    m_state[0] ^= m_state[3];
    m_state[2] ^= t;
    m_state[3] = rotl(m_state[3], 45);
    return result;
  }

  /// Uniform in [0, n) (n > 0); the modulo bias is far below anything a fixture notices.
  std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }
  /// Uniform in [lo, hi].
  std::int64_t between(std::int64_t lo, std::int64_t hi) noexcept {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  /// True with probability per_10000 / 10000.
  bool chance(std::uint32_t per_10000) noexcept { return below(10000) < per_10000; }

  template <class T, std::size_t N>
  const T& pick(const T (&items)[N]) noexcept {
    return items[below(N)];
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t m_state[4];
};

}  // namespace skype_etl::gen::detail
