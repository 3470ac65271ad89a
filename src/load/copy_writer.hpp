// Encoder of PostgreSQL's COPY formats (text, and binary for the message rows) into a large
// growable buffer: the loader's hot path. Rows are built field by field and sent with
// PQputCopyData when the buffer is full.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/model.hpp"

namespace skype_etl::detail {

/// Writes "YYYY-MM-DD HH:MM:SS.ffffff+00" (29 bytes) for `us` microseconds since the
/// Unix epoch (UTC) into `out`. Returns false (and writes nothing) for years outside
/// 1..9999, which PostgreSQL would need "BC" or more digits for.
bool format_timestamp_us(std::int64_t us, char* out) noexcept;
inline constexpr std::size_t timestamp_text_size = 29;
/// Same, as a string ("" when out of range).
std::string format_timestamp_us(std::int64_t us);

class CopyBuffer;

/// Appends the columns message_id .. extra of a message row (message_id, version, sent_at,
/// sender_id, sender_raw, sender_name, ..., details, extra), in the order the loader's
/// staging table and column lists use.
void append_message_columns(CopyBuffer& row, const Message& m);

/// The two COPY formats a CopyBuffer writes.
enum class CopyFormat {
  /// Tab-separated text: every column type, parsed by the server's input functions.
  text,
  /// PostgreSQL's binary format: the server takes integers, booleans and timestamps as they
  /// are instead of parsing them (less server time: benchmarks/README.md).
  /// The column types must match the table's exactly: integer() is a bigint here.
  binary,
};

/// A COPY row builder. Field methods append one column (adding the separator or length
/// themselves); end_row() ends the row. Not thread-safe; reusable with clear(). A binary
/// COPY stream begins with binary_copy_header() and ends with binary_copy_trailer(), which
/// the buffer does not write.
class CopyBuffer {
 public:
  explicit CopyBuffer(CopyFormat format = CopyFormat::text)
      : m_binary(format == CopyFormat::binary) {}
  ~CopyBuffer();
  CopyBuffer(const CopyBuffer&) = delete;
  CopyBuffer& operator=(const CopyBuffer&) = delete;
  CopyBuffer(CopyBuffer&& other) noexcept;
  CopyBuffer& operator=(CopyBuffer&& other) noexcept;

  /// Text, escaped (backslash, tab, newline, carriage return). NUL bytes (which PostgreSQL
  /// text cannot hold) are dropped and counted in nul_bytes_removed().
  void text(std::string_view value);
  /// Text, or NULL when empty: for values where "" says nothing (ids, types, attributes).
  void text_or_null(std::string_view value) {
    if (value.empty())
      null();
    else
      text(value);
  }
  /// Text ("" included), or NULL when there is none: for values where "" and null differ
  /// in the export (display names).
  void nullable_text(const std::optional<std::string_view>& value) {
    if (value)
      text(*value);
    else
      null();
  }
  void null();
  /// A bigint in binary format; any integer column in text format.
  void integer(std::int64_t value);
  void integer(const std::optional<std::int64_t>& value) {
    if (value)
      integer(*value);
    else
      null();
  }
  void boolean(bool value);
  /// A timestamptz; NULL when outside years 1..9999.
  void timestamp_us(std::int64_t us);
  void timestamp_us(const std::optional<std::int64_t>& us) {
    if (us)
      timestamp_us(*us);
    else
      null();
  }
  /// A float8 (text format only); NULL when not finite.
  void floating(double value);
  void floating(const std::optional<double>& value) {
    if (value)
      floating(*value);
    else
      null();
  }
  /// Raw JSON text for a jsonb column: NULL when empty; the escape \u0000 (which jsonb
  /// rejects) is replaced by \ufffd and counted in json_nul_escapes_replaced().
  void json(std::string_view value);
  void end_row();
  /// Appends `count` whole rows already encoded in this buffer's format (e.g. read from a
  /// COPY ... TO STDOUT of the same columns).
  void append_rows(std::string_view encoded, std::uint64_t count);

  std::string_view view() const noexcept { return {m_data, m_size}; }
  std::size_t size() const noexcept { return m_size; }
  bool empty() const noexcept { return m_size == 0; }
  std::uint64_t rows() const noexcept { return m_rows; }
  /// Forgets the content (keeps the capacity and the counters).
  void clear() noexcept {
    m_size = 0;
    m_field_open = false;
  }
  /// Forgets the content and the counters (keeps the capacity): a buffer to reuse.
  void reset() noexcept {
    clear();
    m_rows = m_nul_removed = m_json_nul_replaced = 0;
  }
  std::uint64_t nul_bytes_removed() const noexcept { return m_nul_removed; }
  std::uint64_t json_nul_escapes_replaced() const noexcept { return m_json_nul_replaced; }
  bool binary() const noexcept { return m_binary; }

 private:
  void reserve_more(std::size_t extra);
  void ensure(std::size_t extra) {
    if (m_capacity - m_size < extra) reserve_more(extra);
  }
  /// Starts a field: in text format writes the tab before every field but the first, in
  /// binary format reserves the row's field count before the first. Needs 2 bytes ensured.
  void separator() {
    if (m_binary) {
      if (!m_field_open) {
        m_row_start = m_size;
        m_size += 2;
        m_fields = 0;
      }
      ++m_fields;
    } else if (m_field_open) {
      m_data[m_size++] = '\t';
    }
    m_field_open = true;
  }
  /// Binary format: a field of `size` bytes taken from `bytes` (big-endian already).
  void binary_field(const void* bytes, std::uint32_t size);
  void append_escaped(std::string_view value);
  /// Binary format: `value` without its NUL bytes, behind its length.
  void append_binary_text(std::string_view value, std::string_view prefix = {});

  char* m_data = nullptr;
  std::size_t m_size = 0;
  std::size_t m_capacity = 0;
  bool m_binary = false;
  bool m_field_open = false;    ///< a field was written in the current row
  std::size_t m_row_start = 0;  ///< binary: where the current row's field count goes
  std::uint16_t m_fields = 0;   ///< binary: fields of the current row
  std::uint64_t m_rows = 0;
  std::uint64_t m_nul_removed = 0;
  std::uint64_t m_json_nul_replaced = 0;
};

/// What a binary COPY stream begins with (signature, flags, header extension length).
std::string_view binary_copy_header() noexcept;
/// What a binary COPY stream ends with (a field count of -1).
std::string_view binary_copy_trailer() noexcept;
/// Field `index` (from 0) of one row in COPY's binary format: its bytes, empty when NULL.
/// Throws DatabaseError when the row has no such field or is cut short.
std::string_view binary_row_field(std::string_view row, std::size_t index);

/// Replaces every JSON escape \u0000 in `json` by \ufffd (an escaped backslash followed
/// by "u0000" is left alone). Returns the number replaced; `out` receives the result only
/// when that is non-zero.
std::size_t replace_json_nul_escapes(std::string_view json, std::string& out);

}  // namespace skype_etl::detail
