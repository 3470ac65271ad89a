#include "output_buffer.hpp"

#include <cerrno>
#include <stdexcept>
#include <string>

namespace skype_etl::gen::detail {

OutputBuffer::OutputBuffer(const std::filesystem::path& path, std::size_t capacity)
    : m_path(path), m_buffer(capacity) {
  m_file = std::fopen(path.c_str(), "wb");
  if (m_file == nullptr) fail("cannot create");
  // Our own buffer already batches writes; stdio's would only add a copy.
  std::setvbuf(m_file, nullptr, _IONBF, 0);
}

OutputBuffer::~OutputBuffer() {
  if (m_file != nullptr) std::fclose(m_file);
}

void OutputBuffer::fail(const char* what) const {
  throw std::runtime_error(std::string(what) + " '" + m_path.string() +
                           "': " + std::strerror(errno));
}

void OutputBuffer::write_through(const char* data, std::size_t size) {
  if (size == 0) return;
  if (std::fwrite(data, 1, size, m_file) != size) fail("cannot write");
  m_flushed += size;
}

void OutputBuffer::flush() {
  const std::size_t used = m_used;
  m_used = 0;
  write_through(m_buffer.data(), used);
}

void OutputBuffer::overwrite(std::uint64_t offset, std::string_view bytes) {
  flush();
  if (::fseeko(m_file, static_cast<off_t>(offset), SEEK_SET) != 0) fail("cannot seek in");
  if (std::fwrite(bytes.data(), 1, bytes.size(), m_file) != bytes.size()) fail("cannot write");
  if (::fseeko(m_file, static_cast<off_t>(m_flushed), SEEK_SET) != 0) fail("cannot seek in");
}

void OutputBuffer::close() {
  flush();
  std::FILE* file = m_file;
  m_file = nullptr;
  if (std::fclose(file) != 0) fail("cannot write");
}

}  // namespace skype_etl::gen::detail
