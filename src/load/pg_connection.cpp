#include "load/pg_connection.hpp"

#include <memory>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/local_db.hpp"
#include "skype_etl/errors.hpp"

namespace skype_etl::detail {

PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (m_result) PQclear(m_result);
    m_result = std::exchange(other.m_result, nullptr);
  }
  return *this;
}

PgResult::~PgResult() {
  if (m_result) PQclear(m_result);
}

int PgResult::rows() const noexcept {
  return m_result ? PQntuples(m_result) : 0;
}
int PgResult::columns() const noexcept {
  return m_result ? PQnfields(m_result) : 0;
}
bool PgResult::is_null(int row, int column) const noexcept {
  return PQgetisnull(m_result, row, column) != 0;
}
std::string_view PgResult::text(int row, int column) const noexcept {
  if (is_null(row, column)) return {};
  return {PQgetvalue(m_result, row, column),
          static_cast<std::size_t>(PQgetlength(m_result, row, column))};
}
long long PgResult::integer(int row, int column) const {
  std::string_view value = text(row, column);
  if (value.empty()) return 0;
  long long out = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size())
    throw DatabaseError("PostgreSQL returned '" + std::string(value) +
                        "' where an integer was expected");
  return out;
}

std::uint64_t PgResult::affected_rows() const noexcept {
  return m_result ? std::strtoull(PQcmdTuples(m_result), nullptr, 10) : 0;
}

std::string statement_head(std::string_view sql) {
  std::string head;
  bool space = false;
  int words = 0;
  for (char c : sql) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !head.empty();
      continue;
    }
    if (space) {
      if (++words >= 6) {
        head += " ...";
        return head;
      }
      head += ' ';
      space = false;
    }
    head += c;
    if (head.size() > 80) return head + "...";
  }
  return head;
}

PgConnection::PgConnection(const std::string& conninfo) {
  spdlog::debug("connecting to PostgreSQL: {}",
                conninfo.empty() ? std::string("libpq defaults and PG* environment")
                                 : redact_conninfo(conninfo));
  m_conn = PQconnectdb(conninfo.c_str());
  if (!m_conn) throw DatabaseError("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(m_conn) != CONNECTION_OK) {
    // PQerrorMessage names host and port but never the password.
    std::string message = PQerrorMessage(m_conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
      message.pop_back();
    std::string where = describe();
    PQfinish(m_conn);
    m_conn = nullptr;
    throw DatabaseError("cannot connect to PostgreSQL (" + where + "): " + message, "08001");
  }
  // Our own notices (e.g. "relation already exists, skipping") are not worth printing.
  PQsetNoticeProcessor(
      m_conn, [](void*, const char*) {}, nullptr);
}

PgConnection::~PgConnection() {
  if (m_conn) PQfinish(m_conn);
}

std::string PgConnection::describe() const {
  if (!m_conn) return {};
  auto value = [](const char* v) { return std::string(v ? v : ""); };
  std::string host = value(PQhost(m_conn));
  return "host=" + (host.empty() ? std::string("localhost") : host) +
         " port=" + value(PQport(m_conn)) + " dbname=" + value(PQdb(m_conn)) +
         " user=" + value(PQuser(m_conn));
}

int PgConnection::backend_pid() const noexcept {
  return m_conn ? PQbackendPID(m_conn) : 0;
}
bool PgConnection::is_ok() const noexcept {
  return m_conn && PQstatus(m_conn) == CONNECTION_OK;
}

void PgConnection::fail(const std::string& sql, PGresult* result) const {
  std::string sqlstate;
  std::string message;
  if (result) {
    if (const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE)) sqlstate = state;
    if (const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY)) {
      message = primary;
      if (const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL))
        message += std::string(" (") + detail + ")";
      if (const char* context = PQresultErrorField(result, PG_DIAG_CONTEXT))
        message += std::string("; ") + context;
    }
  }
  if (message.empty()) message = PQerrorMessage(m_conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (PQstatus(m_conn) != CONNECTION_OK) {
    if (sqlstate.empty()) sqlstate = "08006";
    message = "connection to PostgreSQL lost (" + describe() + "): " + message;
  }
  std::string text = "PostgreSQL error";
  if (!sqlstate.empty()) text += " " + sqlstate;
  text += " in '" + statement_head(sql) + "': " + message;
  if (result) PQclear(result);
  throw DatabaseError(text, sqlstate);
}

PgResult PgConnection::check(PGresult* result, const std::string& sql) const {
  if (!result) fail(sql);
  ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_IN)
    return PgResult(result);
  fail(sql, result);
}

PgResult PgConnection::exec(const std::string& sql) {
  return check(PQexec(m_conn, sql.c_str()), sql);
}

PgResult PgConnection::exec_params(const std::string& sql, const std::vector<const char*>& params) {
  return check(PQexecParams(m_conn, sql.c_str(), static_cast<int>(params.size()), nullptr,
                            params.data(), nullptr, nullptr, 0),
               sql);
}

PgResult PgConnection::exec_params(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& p : params) values.push_back(p.c_str());
  return exec_params(sql, values);
}

void PgConnection::copy_in(const std::string& sql) {
  PgResult result = check(PQexec(m_conn, sql.c_str()), sql);
  if (PQresultStatus(result.get()) != PGRES_COPY_IN)
    throw DatabaseError("'" + statement_head(sql) + "' did not start a COPY FROM STDIN");
  m_in_copy = true;
  m_copy_sql = sql;
}

void PgConnection::put_copy_data(std::string_view data) {
  if (data.empty()) return;
  // PQputCopyData takes an int length: split absurdly large buffers.
  constexpr std::size_t max_chunk = 1u << 30;
  while (!data.empty()) {
    std::size_t n = data.size() < max_chunk ? data.size() : max_chunk;
    if (PQputCopyData(m_conn, data.data(), static_cast<int>(n)) != 1) {
      m_in_copy = false;
      fail(m_copy_sql);
    }
    data.remove_prefix(n);
  }
}

void PgConnection::end_copy() {
  m_in_copy = false;
  if (PQputCopyEnd(m_conn, nullptr) != 1) fail(m_copy_sql);
  // The COPY's own result, then whatever follows (nothing) until NULL.
  PGresult* result = PQgetResult(m_conn);
  PgResult first = check(result, m_copy_sql);
  while (PGresult* extra = PQgetResult(m_conn)) PQclear(extra);
}

void PgConnection::copy_out(const std::string& sql,
                            const std::function<void(std::string_view)>& on_data) {
  PGresult* started = PQexec(m_conn, sql.c_str());
  if (!started || PQresultStatus(started) != PGRES_COPY_OUT) {
    if (started && PQresultStatus(started) == PGRES_COMMAND_OK) {
      PQclear(started);
      throw DatabaseError("'" + statement_head(sql) + "' did not start a COPY TO STDOUT");
    }
    fail(sql, started);
  }
  PQclear(started);
  while (true) {
    char* buffer = nullptr;
    const int n = PQgetCopyData(m_conn, &buffer, 0);
    if (n > 0) {
      std::unique_ptr<char, void (*)(void*)> owned(buffer, PQfreemem);
      on_data(std::string_view(buffer, static_cast<std::size_t>(n)));
      continue;
    }
    if (n == -2) fail(sql);
    break;  // -1: done
  }
  PGresult* end = PQgetResult(m_conn);
  PgResult done = check(end, sql);
  while (PGresult* extra = PQgetResult(m_conn)) PQclear(extra);
}

void PgConnection::cancel_copy() noexcept {
  if (!m_in_copy || !m_conn) return;
  m_in_copy = false;
  PQputCopyEnd(m_conn, "aborted by skype-etl");
  while (PGresult* result = PQgetResult(m_conn)) PQclear(result);
}

void PgConnection::rollback() noexcept {
  if (is_ok()) PQclear(PQexec(m_conn, "ROLLBACK"));
}

std::string PgConnection::quote_literal(std::string_view text) const {
  char* quoted = PQescapeLiteral(m_conn, text.data(), text.size());
  if (!quoted)
    throw DatabaseError("cannot quote '" + std::string(text) +
                        "' as an SQL literal: " + PQerrorMessage(m_conn));
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

}  // namespace skype_etl::detail
