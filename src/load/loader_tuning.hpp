// Knobs of the loader's merge that benchmarks and tests change; not part of the options
// a user sees.
#pragma once

#include <cstddef>

namespace skype_etl::detail {

/// When skype.messages is empty and an export stages at least this many messages, the
/// merge drops the table's indexes, inserts without ON CONFLICT, and rebuilds the indexes
/// in the same transaction: building an index by sorting is several times faster than
/// maintaining it row by row. Default 100'000; 0 disables. Thread-safe.
void set_index_rebuild_min_rows(std::size_t rows) noexcept;
std::size_t index_rebuild_min_rows() noexcept;

/// COPY data is sent once this many bytes are buffered (default 1 MiB). Thread-safe.
void set_copy_flush_bytes(std::size_t bytes) noexcept;
std::size_t copy_flush_bytes() noexcept;

}  // namespace skype_etl::detail
