#include "load/partition_hash.hpp"

#include <string>

namespace skype_etl::detail {
namespace {

constexpr std::uint32_t rotl(std::uint32_t x, int k) noexcept {
  return (x << k) | (x >> (32 - k));
}

// lookup3's mix() and final(), over the state (a, b, c).
struct State {
  std::uint32_t a, b, c;

  void mix() noexcept {
    a -= c;
    a ^= rotl(c, 4);
    c += b;
    b -= a;
    b ^= rotl(a, 6);
    a += c;
    c -= b;
    c ^= rotl(b, 8);
    b += a;
    a -= c;
    a ^= rotl(c, 16);
    c += b;
    b -= a;
    b ^= rotl(a, 19);
    a += c;
    c -= b;
    c ^= rotl(b, 4);
    b += a;
  }

  void final_mix() noexcept {
    c ^= b;
    c -= rotl(b, 14);
    a ^= c;
    a -= rotl(c, 11);
    b ^= a;
    b -= rotl(a, 25);
    c ^= b;
    c -= rotl(b, 16);
    a ^= c;
    a -= rotl(c, 4);
    b ^= a;
    b -= rotl(a, 14);
    c ^= b;
    c -= rotl(b, 24);
  }
};

// Up to four bytes from `p`, least significant first (a little-endian word, shorter at
// the end of the key).
std::uint32_t word(const unsigned char* p, std::size_t n) noexcept {
  std::uint32_t w = 0;
  for (std::size_t i = 0; i < n; ++i) w |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return w;
}

// The seed PostgreSQL hashes partition keys with (HASH_PARTITION_SEED).
constexpr std::uint64_t partition_seed = 0x7A5B22367996DCFDULL;

}  // namespace

std::uint64_t pg_hash_bytes_extended(std::string_view bytes, std::uint64_t seed) noexcept {
  const auto* k = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t len = bytes.size();
  // The length takes part modulo 2^32, as the server's uint32 does.
  const std::uint32_t init = 0x9e3779b9U + static_cast<std::uint32_t>(len) + 3923095U;
  State s{init, init, init};
  if (seed != 0) {
    // The seed is hashed as a first 12-byte block whose last four bytes are zero.
    s.a += static_cast<std::uint32_t>(seed >> 32);
    s.b += static_cast<std::uint32_t>(seed);
    s.mix();
  }
  while (len >= 12) {
    s.a += word(k, 4);
    s.b += word(k + 4, 4);
    s.c += word(k + 8, 4);
    s.mix();
    k += 12;
    len -= 12;
  }
  // The last 0-11 bytes: into a, then b, then c from its second byte on (c's lowest byte
  // is left to the length, which went into the initial state).
  s.a += word(k, len < 4 ? len : 4);
  if (len > 4) s.b += word(k + 4, len < 8 ? len - 4 : 4);
  if (len > 8) s.c += word(k + 8, len - 8) << 8;
  s.final_mix();
  return (static_cast<std::uint64_t>(s.b) << 32) | s.c;
}

std::size_t text_hash_partition(std::string_view value, std::size_t modulus) {
  // The value as stored: COPY cannot carry NUL bytes, and CopyBuffer drops them.
  std::string stored;
  if (value.find('\0') != std::string_view::npos) {
    for (char ch : value)
      if (ch != '\0') stored += ch;
    value = stored;
  }
  // compute_partition_hash_value: hash_combine64(0, the column's extended hash).
  const std::uint64_t row_hash =
      pg_hash_bytes_extended(value, partition_seed) + 0x49a0f4dd15e5a8e3ULL;
  return static_cast<std::size_t>(row_hash % modulus);
}

}  // namespace skype_etl::detail
