// The generator's output file: large buffered fwrite()s and positioned rewrites (for the
// tar header whose size is only known at the end).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

namespace skype_etl::gen::detail {

/// Not thread-safe; owns the FILE. close() reports errors, the destructor only cleans up.
class OutputBuffer {
 public:
  explicit OutputBuffer(const std::filesystem::path& path, std::size_t capacity = 8u << 20);
  ~OutputBuffer();
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;

  void append(const char* data, std::size_t size) {
    if (size > m_buffer.size() - m_used) {
      flush();
      if (size > m_buffer.size()) {
        write_through(data, size);
        return;
      }
    }
    std::memcpy(m_buffer.data() + m_used, data, size);
    m_used += size;
  }
  void append(std::string_view text) { append(text.data(), text.size()); }
  void put(char c) {
    if (m_used == m_buffer.size()) flush();
    m_buffer[m_used++] = c;
  }

  /// Bytes written so far (flushed or buffered): the offset of the next byte.
  std::uint64_t position() const noexcept { return m_flushed + m_used; }
  void flush();
  /// Overwrites bytes already written at `offset` (flushes first); later appends continue at
  /// the end.
  void overwrite(std::uint64_t offset, std::string_view bytes);
  /// Flushes and closes; throws std::runtime_error naming the file on any write error.
  void close();

 private:
  void write_through(const char* data, std::size_t size);
  [[noreturn]] void fail(const char* what) const;

  std::filesystem::path m_path;
  std::FILE* m_file = nullptr;
  std::vector<char> m_buffer;
  std::size_t m_used = 0;
  std::uint64_t m_flushed = 0;
};

}  // namespace skype_etl::gen::detail
