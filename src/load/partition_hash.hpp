// Which hash partition PostgreSQL puts a text value in, computed here: a side-table load
// split into one table per COPY stream (side_table.hpp) sends each message to the stream
// whose table its message_id belongs in, without asking the server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace skype_etl::detail {

/// PostgreSQL's hash_bytes_extended (src/common/hashfn.c: Bob Jenkins' lookup3, the
/// 64-bit variant with a seed), as the server computes it on a little-endian machine.
std::uint64_t pg_hash_bytes_extended(std::string_view bytes, std::uint64_t seed) noexcept;

/// The remainder of the partition of `PARTITION BY HASH (column)` with `modulus` equal
/// partitions that a row whose column (text, under a deterministic collation such as "C")
/// is `value` goes to, `value` as CopyBuffer stores it (without NUL bytes). `modulus` > 0.
/// Callers check it against the server once (satisfies_hash_partition) before relying on it.
std::size_t text_hash_partition(std::string_view value, std::size_t modulus);

}  // namespace skype_etl::detail
