// A small RAII layer over libpq: the loader needs PQputCopyData with large buffers, which
// libpqxx 6.4 does not offer (its stream_to sends one row at a time).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <libpq-fe.h>

namespace skype_etl::detail {

/// Owns one PGresult.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* result) noexcept : m_result(result) {}
  PgResult(PgResult&& other) noexcept : m_result(other.m_result) { other.m_result = nullptr; }
  PgResult& operator=(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult();

  int rows() const noexcept;
  int columns() const noexcept;
  bool is_null(int row, int column) const noexcept;
  /// Text of a field ("" for NULL). Valid as long as this result.
  std::string_view text(int row, int column) const noexcept;
  /// Field as an integer (0 for NULL). Throws DatabaseError when it is not an integer.
  long long integer(int row, int column) const;
  /// Rows an INSERT, UPDATE or DELETE wrote (PQcmdTuples; 0 for other statements).
  std::uint64_t affected_rows() const noexcept;
  PGresult* get() const noexcept { return m_result; }

 private:
  PGresult* m_result = nullptr;
};

/// One libpq connection. Not thread-safe: use one per thread.
/// Every failure throws skype_etl::DatabaseError carrying the server's message, its SQLSTATE
/// and the first words of the failing statement; never the password.
class PgConnection {
 public:
  /// `conninfo`: a URI or key=value string; empty = libpq defaults and the PG* environment.
  explicit PgConnection(const std::string& conninfo);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// Runs one or more statements without parameters; returns the last result.
  PgResult exec(const std::string& sql);
  /// Runs one statement with text parameters ($1...); std::nullopt-like NULLs are passed
  /// as `nullptr` entries of `params`.
  PgResult exec_params(const std::string& sql, const std::vector<const char*>& params);
  PgResult exec_params(const std::string& sql, const std::vector<std::string>& params);

  /// Starts `COPY ... FROM STDIN`. Only one COPY may be in progress per connection.
  void copy_in(const std::string& sql);
  /// Sends COPY data (any number of whole or partial rows).
  void put_copy_data(std::string_view data);
  /// Ends the COPY; throws when the server rejected the data.
  void end_copy();
  /// Runs `COPY ... TO STDOUT`, handing each piece of its data (libpq gives one row per
  /// piece; a binary COPY's header comes with the first, its trailer alone last) to
  /// `on_data` as it arrives.
  void copy_out(const std::string& sql, const std::function<void(std::string_view)>& on_data);
  /// Aborts a COPY in progress (the transaction becomes failed). Never throws.
  void cancel_copy() noexcept;
  bool in_copy() const noexcept { return m_in_copy; }
  /// Ends the transaction with ROLLBACK, if the connection is still usable; for clean-up
  /// paths, so it never throws (a failure leaves the connection to be dropped).
  void rollback() noexcept;
  /// `text` as an SQL string literal, quoted for this connection's encoding (for a
  /// statement that cannot take parameters, such as COPY ... TO STDOUT).
  std::string quote_literal(std::string_view text) const;

  /// The server process id of this connection (for pg_terminate_backend in tests).
  int backend_pid() const noexcept;
  bool is_ok() const noexcept;
  /// "host=... port=... dbname=... user=..." without the password, for messages.
  std::string describe() const;
  PGconn* get() const noexcept { return m_conn; }

 private:
  [[noreturn]] void fail(const std::string& sql, PGresult* result = nullptr) const;
  PgResult check(PGresult* result, const std::string& sql) const;

  PGconn* m_conn = nullptr;
  bool m_in_copy = false;
  std::string m_copy_sql;
};

/// First words of a statement, for error messages (never contains parameter values).
std::string statement_head(std::string_view sql);

}  // namespace skype_etl::detail
