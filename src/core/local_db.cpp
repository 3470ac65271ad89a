// The local default database: initdb + pg_ctl driven through argument vectors
// (posix_spawn, no shell of ours), and the helpers that decide whether it is needed.
//
// Layout: the cluster lives in the data directory, whose Unix socket sits in the data
// directory itself (mode 0700, so `trust` authentication admits only its owner and root),
// or, when that path cannot hold a socket (too long for sun_path, or characters PostgreSQL
// would split on), in /tmp/skype-etl-<hash of the data directory>. There is no TCP
// listener. The port (part of the socket's file name) is kept in <data>/skype-etl.port.
//
// Root: PostgreSQL refuses to run as root, so the server runs as the `postgres` system
// user (runuser), which owns the data directory. Every ancestor of the data directory must
// be traversable by postgres; root's default, ~/.local/share under /root (mode 0700), is
// not, so root's default data directory is /var/lib/skype-etl/pg instead (the FHS place for
// state of a system service), unless XDG_DATA_HOME says otherwise.
//
// Thread-safety: LocalDatabase holds no mutable state; concurrent ensure_running calls, in
// one process or several, serialise on an flock of the data directory.
#include "core/local_db.hpp"

#include <fcntl.h>
#include <grp.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <system_error>
#include <vector>

#include <libpq-fe.h>
#include <pqxx/pqxx>

#include <spdlog/spdlog.h>

#include "skype_etl/errors.hpp"

extern char** environ;

namespace skype_etl::detail {
namespace {

namespace fs = std::filesystem;

constexpr const char* k_database = "skype";
constexpr const char* k_port_file = "skype-etl.port";
constexpr int k_default_port = 5432;
// sizeof(sockaddr_un::sun_path) is 108, including the terminating NUL.
constexpr std::size_t k_max_socket_path = 107;
constexpr const char* k_socket_prefix = "/.s.PGSQL.";

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

bool running_as_root() {
  return ::geteuid() == 0;
}

/// The `postgres` system user the server runs as when we are root.
struct ServerAccount {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

std::optional<ServerAccount> postgres_account() {
  struct passwd* pw = ::getpwnam("postgres");
  if (!pw) return std::nullopt;
  ServerAccount account{pw->pw_uid, pw->pw_gid, {}};
  int count = 32;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (::getgrouplist("postgres", pw->pw_gid, groups.data(), &count) == -1) {
    groups.resize(static_cast<std::size_t>(count));
    if (::getgrouplist("postgres", pw->pw_gid, groups.data(), &count) == -1) count = 0;
  }
  groups.resize(static_cast<std::size_t>(std::max(count, 0)));
  account.groups = std::move(groups);
  return account;
}

ServerAccount require_postgres_account() {
  auto account = postgres_account();
  if (!account) {
    throw DatabaseError(
        "skype-etl runs its local database as the 'postgres' system user when run as root, "
        "and there is no such user: install postgresql-15 (scripts/install-deps.sh), run "
        "skype-etl as a normal user, or pass --db with a server of your own");
  }
  return *account;
}

/// The first existing directory on the way to `path` (inclusive) that `account` may not
/// traverse, or nothing. Directories that do not exist yet are created 0755 by us.
std::optional<fs::path> first_blocking_dir(const fs::path& path, const ServerAccount& account) {
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(path, ec);
  if (ec) resolved = path;
  std::vector<fs::path> chain;
  for (fs::path p = resolved; !p.empty(); p = p.parent_path()) {
    chain.push_back(p);
    if (p == p.root_path()) break;
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    struct stat st {};
    if (::stat(it->c_str(), &st) != 0) continue;
    bool in_group = std::find(account.groups.begin(), account.groups.end(), st.st_gid) !=
                        account.groups.end() ||
                    st.st_gid == account.gid;
    mode_t needed = st.st_uid == account.uid ? S_IXUSR : in_group ? S_IXGRP : S_IXOTH;
    if ((st.st_mode & needed) == 0) return *it;
  }
  return std::nullopt;
}

std::string user_name() {
  if (running_as_root()) return "postgres";
  if (struct passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) return pw->pw_name;
  std::string user = env_or_empty("USER");
  return user.empty() ? std::string("postgres") : user;
}

/// A conninfo value, quoted when libpq needs it.
std::string conninfo_value(const std::string& value) {
  bool plain = !value.empty() && value.find_first_of(" \t\n\r\f\v'\\") == std::string::npos;
  if (plain) return value;
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

/// A word for /bin/sh: pg_ctl hands its -o options to the shell.
std::string shell_quote(const std::string& value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  return quoted + "'";
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

/// pg_ctl pastes -D and -l into a shell command inside double quotes: refuse paths that
/// would break out of them.
void check_path_for_pg_ctl(const fs::path& data_dir) {
  const std::string& text = data_dir.native();
  if (text.find_first_of("\"$`\\\n\r") != std::string::npos) {
    throw DatabaseError("the local database directory '" + text +
                        "' contains a character pg_ctl cannot handle (\" $ ` \\ or a line "
                        "break): choose another directory (--data-dir or XDG_DATA_HOME)");
  }
}

int read_port(const fs::path& data_dir) {
  std::ifstream in(data_dir / k_port_file);
  int port = 0;
  if (in >> port && port > 0 && port < 65536) return port;
  return k_default_port;
}

/// Where the socket goes: the data directory when its path fits, else a short directory
/// under /tmp named after the data directory and the server's user.
struct SocketPlace {
  fs::path dir;
  bool in_data_dir;
};

SocketPlace socket_place(const fs::path& data_dir) {
  const std::string& text = data_dir.native();
  bool fits = text.size() + std::strlen(k_socket_prefix) + 5 <= k_max_socket_path;
  // unix_socket_directories is a comma-separated list with optional double quotes and
  // trimmed blanks: such paths cannot be given as they are.
  bool parsable = text.find_first_of(",\"") == std::string::npos && !text.empty() &&
                  !std::isspace(static_cast<unsigned char>(text.back()));
  if (fits && parsable) return {data_dir, true};
  uid_t owner = ::geteuid();
  if (running_as_root()) {
    if (auto account = postgres_account()) owner = account->uid;
  }
  char name[64];
  std::snprintf(name, sizeof name, "/tmp/skype-etl-%016llx",
                static_cast<unsigned long long>(fnv1a(text + '\0' + std::to_string(owner))));
  return {fs::path(name), false};
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr, interleaved
};

fs::path find_runuser() {
  for (const char* candidate :
       {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  throw DatabaseError(
      "runuser not found: it is needed to run PostgreSQL as the 'postgres' user when "
      "skype-etl runs as root (Debian package util-linux)");
}

/// Runs argv[0] (an absolute path) with the given arguments, in "/", stdin from
/// /dev/null, capturing its output; as the postgres user when `as_postgres`.
CommandResult run_command(std::vector<std::string> argv, bool as_postgres) {
  if (as_postgres) {
    std::vector<std::string> prefix = {find_runuser().native(), "-u", "postgres", "--"};
    argv.insert(argv.begin(), prefix.begin(), prefix.end());
  }
  std::vector<char*> args;
  std::string line;
  for (auto& arg : argv) {
    args.push_back(arg.data());
    line += (line.empty() ? "" : " ") + arg;
  }
  args.push_back(nullptr);
  spdlog::debug("local database: running {}", line);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw DatabaseError(std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  // The postgres user may not enter the caller's working directory.
  posix_spawn_file_actions_addchdir_np(&actions, "/");
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw DatabaseError("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  CommandResult result;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n > 0) {
      result.output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) == -1 && errno == EINTR) {
  }
  if (WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    result.exit_code = 128 + WTERMSIG(status);
  return result;
}

std::string trimmed(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

std::string last_lines(const fs::path& file, std::size_t count) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (lines.size() > count) lines.erase(lines.begin());
  }
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return trimmed(std::move(text));
}

bool has_exe(const fs::path& dir, const char* name) {
  return ::access((dir / name).c_str(), X_OK) == 0;
}

/// initdb and pg_ctl: SKYPE_ETL_PG_BINDIR, else the version the cluster was made with,
/// else the newest /usr/lib/postgresql/<version>/bin (Debian keeps server binaries off
/// PATH, and pg_config --bindir names the client's directory), else PATH.
fs::path find_bindir(const fs::path& data_dir) {
  std::string override_dir = env_or_empty("SKYPE_ETL_PG_BINDIR");
  if (!override_dir.empty()) {
    if (!has_exe(override_dir, "pg_ctl") || !has_exe(override_dir, "initdb")) {
      throw DatabaseError("SKYPE_ETL_PG_BINDIR=" + override_dir +
                          " holds no initdb and pg_ctl: point it at PostgreSQL's bin directory");
    }
    return override_dir;
  }
  const fs::path debian_root = "/usr/lib/postgresql";
  std::ifstream version_file(data_dir / "PG_VERSION");
  std::string cluster_version;
  if (version_file >> cluster_version) {
    fs::path dir = debian_root / cluster_version / "bin";
    if (has_exe(dir, "pg_ctl")) return dir;
  }
  std::error_code ec;
  long best_version = -1;
  fs::path best;
  for (fs::directory_iterator it(debian_root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().native();
    char* parse_end = nullptr;
    long version = std::strtol(name.c_str(), &parse_end, 10);
    if (parse_end == name.c_str() || *parse_end != '\0') continue;
    fs::path dir = it->path() / "bin";
    if (version > best_version && has_exe(dir, "pg_ctl") && has_exe(dir, "initdb")) {
      best_version = version;
      best = dir;
    }
  }
  if (!best.empty()) return best;
  std::string path_env = env_or_empty("PATH");
  std::stringstream dirs(path_env);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && has_exe(dir, "pg_ctl") && has_exe(dir, "initdb")) return dir;
  }
  throw DatabaseError(
      "PostgreSQL server programs (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin "
      "or PATH: install postgresql-15 (scripts/install-deps.sh), set SKYPE_ETL_PG_BINDIR, or "
      "pass --db with a server of your own");
}

/// mkdir -p for the directories above the data directory; as root they are made 0755
/// whatever the umask, so that the postgres user can traverse them. Appends those it
/// created to `created`, outermost first.
void create_parents(const fs::path& dir, std::vector<fs::path>& created) {
  std::vector<fs::path> missing;
  for (fs::path p = dir; !p.empty() && !fs::exists(p); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.root_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      throw DatabaseError("cannot create directory '" + it->native() +
                          "' for the local database: " + std::strerror(errno));
    }
    created.push_back(*it);
    if (running_as_root()) ::chmod(it->c_str(), 0755);
  }
}

/// Undoes what a start that failed created: the directories above the data directory that
/// it made (if still empty), the data directory if it made it, and, only when
/// `cluster_made` (initdb ran, under the lock, in a directory found empty), everything in
/// the data directory. Best effort: the failure is what gets reported. Never touches a
/// directory's contents otherwise: a data directory that was there stays as it was.
void remove_failed_first_start(const fs::path& data_dir, bool data_dir_created, bool cluster_made,
                               const std::vector<fs::path>& parents_created) {
  std::error_code ec;
  if (cluster_made) {
    if (data_dir_created) {
      fs::remove_all(data_dir, ec);
    } else {
      for (fs::directory_iterator it(data_dir, ec), end; !ec && it != end; it.increment(ec))
        fs::remove_all(it->path(), ec);
    }
  } else if (data_dir_created) {
    ::rmdir(data_dir.c_str());  // made empty here; fails, as it should, if anything is in it
  }
  for (auto it = parents_created.rbegin(); it != parents_created.rend(); ++it)
    ::rmdir(it->c_str());  // fails, as it should, if something else was put there meanwhile
}

/// Holds an exclusive flock on the data directory: one initdb/start at a time.
class DirectoryLock {
 public:
  explicit DirectoryLock(const fs::path& dir)
      : m_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (m_fd < 0) {
      throw DatabaseError("cannot open the local database directory '" + dir.native() +
                          "': " + std::strerror(errno));
    }
    while (::flock(m_fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    // Another process whose first start failed may have removed the directory while we
    // waited: the lock is then on a directory that no path leads to.
    struct stat locked {};
    struct stat now {};
    if (::fstat(m_fd, &locked) != 0 || ::stat(dir.c_str(), &now) != 0 ||
        locked.st_ino != now.st_ino || locked.st_dev != now.st_dev) {
      ::close(m_fd);
      throw DatabaseError("the local database directory '" + dir.native() +
                          "' was removed by another skype-etl whose first start of it failed: "
                          "try again");
    }
  }
  ~DirectoryLock() { ::close(m_fd); }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int m_fd;
};

bool directory_is_empty(const fs::path& dir) {
  std::error_code ec;
  return fs::directory_iterator(dir, ec) == fs::directory_iterator() && !ec;
}

/// pid of the postmaster serving `data_dir`, if one is alive.
std::optional<pid_t> postmaster_pid(const fs::path& data_dir) {
  std::ifstream in(data_dir / "postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return std::nullopt;
  // A stale postmaster.pid (after a crash) may name a pid reused by something else.
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (comm >> name && name.rfind("postgres", 0) != 0 && name.rfind("postmaster", 0) != 0) {
    return std::nullopt;
  }
  return static_cast<pid_t>(pid);
}

const char* cluster_locale() {
  // C.UTF-8 classifies non-ASCII letters (upper(), ILIKE) and sorts by code point; plain C
  // is the fallback where the C library lacks it.
  if (locale_t probe = ::newlocale(LC_ALL_MASK, "C.UTF-8", nullptr)) {
    ::freelocale(probe);
    return "C.UTF-8";
  }
  return "C";
}

std::string connect_string(const fs::path& socket_dir, int port, const std::string& dbname) {
  return "host=" + conninfo_value(socket_dir.native()) + " port=" + std::to_string(port) +
         " dbname=" + dbname + " user=" + conninfo_value(user_name());
}

// --- redact_conninfo ---------------------------------------------------------------

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool is_uri(std::string_view text) {
  return starts_with(text, "postgresql://") || starts_with(text, "postgres://");
}

std::string redact_uri(std::string_view uri) {
  std::size_t start = uri.find("://") + 3;
  std::string out(uri.substr(0, start));
  // As libpq does: user information ends at the first '@' before any '/'.
  std::size_t at = start;
  while (at < uri.size() && uri[at] != '@' && uri[at] != '/') ++at;
  std::size_t rest = start;
  if (at < uri.size() && uri[at] == '@') {
    std::string_view userinfo = uri.substr(start, at - start);
    std::size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      out += userinfo;
    } else {
      out += userinfo.substr(0, colon);
      out += ":***";
    }
    rest = at;
  }
  std::size_t query = uri.find('?', rest);
  out += uri.substr(rest, query == std::string_view::npos ? uri.size() - rest : query - rest);
  if (query == std::string_view::npos) return out;
  out += '?';
  std::string_view params = uri.substr(query + 1);
  bool first = true;
  while (true) {
    std::size_t amp = params.find('&');
    std::string_view param = params.substr(0, amp);
    if (!first) out += '&';
    first = false;
    std::size_t eq = param.find('=');
    if (eq != std::string_view::npos && param.substr(0, eq) == "password") {
      out += "password=***";
    } else {
      out += param;
    }
    if (amp == std::string_view::npos) break;
    params.remove_prefix(amp + 1);
  }
  return out;
}

std::string redact_key_values(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (i < text.size()) {
    // Blanks, then a keyword up to '=' or a blank.
    std::size_t key_start = i;
    while (i < text.size() && is_space(text[i])) ++i;
    std::size_t name_start = i;
    while (i < text.size() && text[i] != '=' && !is_space(text[i])) ++i;
    std::string_view key = text.substr(name_start, i - name_start);
    while (i < text.size() && is_space(text[i])) ++i;
    if (i >= text.size() || text[i] != '=') {
      // Not key=value (libpq would reject it): keep it as it is.
      out += text.substr(key_start, i - key_start);
      continue;
    }
    ++i;  // '='
    while (i < text.size() && is_space(text[i])) ++i;
    out += text.substr(key_start, i - key_start);
    // The value: quoted with backslash escapes, or up to the next blank.
    std::size_t value_start = i;
    if (i < text.size() && text[i] == '\'') {
      ++i;
      while (i < text.size() && text[i] != '\'') i += text[i] == '\\' ? 2 : 1;
      i = std::min(i + 1, text.size());
    } else {
      while (i < text.size() && !is_space(text[i])) i += text[i] == '\\' ? 2 : 1;
      i = std::min(i, text.size());
    }
    std::string_view value = text.substr(value_start, i - value_start);
    // libpq's keywords are lower case, but a mistyped PASSWORD= still holds a secret.
    if (key.size() == 8 && strncasecmp(std::string(key).c_str(), "password", 8) == 0) {
      out += "***";
    } else if (key == "dbname" && is_uri(value)) {
      // libpq expands a URI given as dbname.
      out += redact_uri(value);
    } else {
      out += value;
    }
  }
  return out;
}

}  // namespace

fs::path LocalDatabase::default_data_dir() {
  std::string xdg = env_or_empty("XDG_DATA_HOME");
  // The XDG spec says to ignore relative values.
  if (!xdg.empty() && xdg.front() == '/') return fs::path(xdg) / "skype-etl" / "pg";
  std::string home = env_or_empty("HOME");
  if (home.empty()) {
    if (struct passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_dir) home = pw->pw_dir;
  }
  fs::path in_home = fs::path(home.empty() ? "/" : home) / ".local" / "share" / "skype-etl" / "pg";
  if (running_as_root()) {
    // The server runs as postgres, which cannot enter a private home such as /root.
    auto account = postgres_account();
    if (account && first_blocking_dir(in_home.parent_path(), *account)) {
      return "/var/lib/skype-etl/pg";
    }
  }
  return in_home;
}

LocalDatabase::LocalDatabase(fs::path data_dir)
    : m_data_dir(fs::absolute(data_dir).lexically_normal()) {
  // "dir/" normalises to "dir/" with an empty file name: drop the trailing separator.
  if (!m_data_dir.has_filename() && m_data_dir.has_parent_path() &&
      m_data_dir != m_data_dir.root_path()) {
    m_data_dir = m_data_dir.parent_path();
  }
}

namespace {

/// Bytes as a PostgreSQL memory setting, in whole MB.
std::string megabytes(std::uint64_t bytes) {
  return std::to_string(bytes >> 20) + "MB";
}

std::uint64_t clamp_bytes(std::uint64_t value, std::uint64_t low, std::uint64_t high) {
  return std::min(std::max(value, low), high);
}

/// The text of skype-etl.conf for this machine: what a cluster that only ever loads and
/// reads chat exports, and that nothing replicates, wants. Durability stays as PostgreSQL
/// ships it (fsync, full_page_writes, synchronous_commit on): a committed export survives
/// a crash or a power cut.
std::string load_settings_text(const fs::path& data_dir) {
  constexpr std::uint64_t mb = 1ULL << 20;
  constexpr std::uint64_t gb = 1ULL << 30;
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  const std::uint64_t ram = pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) *
                                                             static_cast<std::uint64_t>(page_size)
                                                       : 2 * gb;
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  const std::uint64_t cores = online > 0 ? static_cast<std::uint64_t>(online) : 1;
  // WAL may grow to max_wal_size between checkpoints: a tenth of the free space, at most.
  std::uint64_t free_bytes = 10 * gb;
  struct statvfs disk {};
  if (::statvfs(data_dir.c_str(), &disk) == 0)
    free_bytes = static_cast<std::uint64_t>(disk.f_bavail) * disk.f_frsize;

  // A desktop's database, beside other programs: an eighth of RAM, not PostgreSQL's
  // dedicated-server quarter.
  const std::uint64_t shared_buffers = clamp_bytes(ram / 8, 128 * mb, 4 * gb);
  // VACUUM and index builds outside a load; a load's connections set their own.
  const std::uint64_t maintenance_work_mem = clamp_bytes(ram / 32, 64 * mb, 1 * gb);
  // No checkpoint inside a load: a 5M-message export writes a few GB of WAL.
  const std::uint64_t max_wal_size = clamp_bytes(free_bytes / 10, 1 * gb, 16 * gb);
  const std::uint64_t parallel_workers = std::min<std::uint64_t>(4, cores / 2);

  std::string text =
      "# Written by skype-etl at every start of its local database (`skype-etl db start`,\n"
      "# `skype-etl run`); edits here are overwritten. Chosen for this machine: " +
      std::to_string(ram / mb) + " MB RAM,\n# " + std::to_string(cores) +
      " cores. Durability is PostgreSQL's default: fsync, full_page_writes and\n"
      "# synchronous_commit stay on.\n"
      "#\n"
      "# To change one setting, use ALTER SYSTEM (postgresql.auto.conf is read after this\n"
      "# file). To opt out of them all, comment out the include_if_exists line for this file\n"
      "# in postgresql.conf: skype-etl then leaves both files alone. Either takes effect at the\n"
      "# server's next start (skype-etl db stop; skype-etl db start).\n";
  auto line = [&](const char* name, const std::string& value, const char* why) {
    text += std::string(name) + " = '" + value + "'\t# " + why + "\n";
  };
  line("shared_buffers", megabytes(shared_buffers), "an eighth of RAM, 128MB..4GB");
  line("maintenance_work_mem", megabytes(maintenance_work_mem),
       "VACUUM, index builds; a 32nd of RAM, 64MB..1GB");
  line("max_parallel_maintenance_workers", std::to_string(parallel_workers),
       "half the cores, at most 4");
  line("max_wal_size", megabytes(max_wal_size),
       "no checkpoint inside a load; a tenth of the free disk, 1GB..16GB");
  line("checkpoint_timeout", "30min", "nor a timed one");
  line("wal_level", "minimal",
       "nothing replicates this cluster; tables and indexes made in a load's transaction "
       "skip WAL");
  line("max_wal_senders", "0", "required by wal_level minimal");
  line("wal_compression", "on", "smaller full-page images");
  return text;
}

constexpr const char* k_settings_file = "skype-etl.conf";

/// Whether postgresql.conf includes skype-etl.conf: yes, no (a commented-out include: the
/// user's opt-out), or absent (a new cluster, or one made before skype-etl wrote settings).
enum class SettingsInclude { active, commented_out, absent };

SettingsInclude settings_include(const fs::path& data_dir) {
  static const std::regex include_line(
      R"(^\s*(#)?\s*include(_if_exists)?\s*=?\s*'skype-etl\.conf'.*$)");
  std::ifstream in(data_dir / "postgresql.conf");
  SettingsInclude found = SettingsInclude::absent;
  std::smatch match;
  for (std::string text; std::getline(in, text);) {
    if (!std::regex_match(text, match, include_line)) continue;
    if (!match[1].matched) return SettingsInclude::active;
    found = SettingsInclude::commented_out;
  }
  return found;
}

/// For `db status`: where the cluster's settings come from.
std::string settings_state(const fs::path& data_dir) {
  if (!fs::exists(data_dir / "PG_VERSION")) return "none (no cluster yet)";
  switch (settings_include(data_dir)) {
    case SettingsInclude::active:
      return (data_dir / k_settings_file).native();
    case SettingsInclude::commented_out:
      return "PostgreSQL's defaults: the include of skype-etl.conf is commented out in "
             "postgresql.conf (the opt-out)";
    case SettingsInclude::absent:
      break;
  }
  return "PostgreSQL's defaults until the next start, which adds skype-etl.conf";
}

/// Writes skype-etl.conf for this machine and, where postgresql.conf has no line for it
/// (a new cluster, or an existing one's first start by this version), appends the include.
/// A commented-out include is the user's opt-out: nothing is written then.
void write_load_settings(const fs::path& data_dir, const std::optional<ServerAccount>& account) {
  const SettingsInclude include = settings_include(data_dir);
  if (include == SettingsInclude::commented_out) {
    spdlog::debug(
        "local database: the include of {} is commented out in postgresql.conf: "
        "PostgreSQL's own settings apply",
        k_settings_file);
    return;
  }
  auto give_to_server = [&](const fs::path& file) {
    if (account) {
      // As root the files must stay the postgres user's; failing leaves them readable to
      // root only, which pg_ctl reports when it starts.
      [[maybe_unused]] int ignored = ::chown(file.c_str(), account->uid, account->gid);
    }
  };
  const fs::path settings = data_dir / k_settings_file;
  const fs::path temporary = data_dir / (std::string(k_settings_file) + ".new");
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << load_settings_text(data_dir);
    if (!out.flush()) {
      throw DatabaseError("cannot write '" + temporary.native() +
                          "' (the local database's settings): check the free space and "
                          "permissions of its directory");
    }
  }
  give_to_server(temporary);
  if (::rename(temporary.c_str(), settings.c_str()) != 0) {
    throw DatabaseError("cannot replace '" + settings.native() + "': " + std::strerror(errno));
  }
  if (include == SettingsInclude::absent) {
    const fs::path config = data_dir / "postgresql.conf";
    std::ofstream out(config, std::ios::app);
    out << "\n# skype-etl's settings for loading chat exports, chosen for this machine and\n"
           "# rewritten at every start. Comment out the next line to opt out of them all\n"
           "# (skype-etl leaves it so); ALTER SYSTEM overrides any one of them.\n"
           "include_if_exists = '"
        << k_settings_file << "'\n";
    if (!out.flush()) {
      throw DatabaseError("cannot append the include of " + std::string(k_settings_file) + " to '" +
                          config.native() +
                          "': check the permissions of the local database's directory, or "
                          "add the line yourself");
    }
  }
}

/// initdb when `initialised` is false, then start the server if it is not running, and
/// create the database `skype`. Called with the data directory's lock held.
void start_cluster(const fs::path& data_dir, bool initialised,
                   const std::optional<ServerAccount>& account) {
  const bool as_postgres = account.has_value();
  if (account && !initialised) {
    // initdb (run as postgres) fixes the mode but cannot take ownership. An existing
    // cluster keeps its owner: if that is not postgres, pg_ctl says so.
    struct stat st {};
    if (::stat(data_dir.c_str(), &st) == 0 && st.st_uid != account->uid &&
        ::chown(data_dir.c_str(), account->uid, account->gid) != 0) {
      throw DatabaseError("cannot give '" + data_dir.native() +
                          "' to the postgres user: " + std::strerror(errno));
    }
  }
  const fs::path bindir = find_bindir(data_dir);

  if (!initialised) {
    CommandResult init =
        run_command({(bindir / "initdb").native(), "-D", data_dir.native(), "-U", user_name(),
                     "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                     std::string("--locale=") + cluster_locale()},
                    as_postgres);
    if (init.exit_code != 0) {
      throw DatabaseError("initdb failed to create the local database in '" + data_dir.native() +
                          "': " + trimmed(init.output));
    }
    const fs::path port_file = data_dir / k_port_file;
    {
      std::ofstream out(port_file);
      out << k_default_port << "\n";
      if (!out) {
        throw DatabaseError("cannot write '" + port_file.native() + "'");
      }
    }
    if (account) {
      // Tidy ownership; failing here changes nothing for the server.
      [[maybe_unused]] int ignored = ::chown(port_file.c_str(), account->uid, account->gid);
    }
  }

  if (!postmaster_pid(data_dir)) {
    write_load_settings(data_dir, account);
    const SocketPlace socket = socket_place(data_dir);
    if (!socket.in_data_dir) {
      // A predictable name in /tmp: make sure it is ours, not someone else's trap.
      if (::mkdir(socket.dir.c_str(), 0700) == 0 && account) {
        if (::chown(socket.dir.c_str(), account->uid, account->gid) != 0) {
          throw DatabaseError("cannot give '" + socket.dir.native() +
                              "' to the postgres user: " + std::strerror(errno));
        }
      }
      struct stat st {};
      uid_t expected = account ? account->uid : ::geteuid();
      if (::lstat(socket.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != expected ||
          (st.st_mode & 077) != 0) {
        throw DatabaseError("the socket directory '" + socket.dir.native() +
                            "' of the local database is not a private directory of ours: "
                            "remove it, or use a shorter --data-dir");
      }
    }
    const int port = read_port(data_dir);
    const fs::path log_file = data_dir / "server.log";
    CommandResult start = run_command({(bindir / "pg_ctl").native(), "start", "-w", "-t", "60",
                                       "-D", data_dir.native(), "-l", log_file.native(), "-o",
                                       "-k " + shell_quote(socket.dir.native()) +
                                           " -c listen_addresses='' -p " + std::to_string(port)},
                                      as_postgres);
    if (start.exit_code != 0) {
      std::string log = last_lines(log_file, 5);
      throw DatabaseError("cannot start the local database in '" + data_dir.native() +
                          "': " + trimmed(start.output) +
                          (log.empty() ? std::string() : "\nserver.log:\n" + log));
    }
  }

  try {
    pqxx::connection connection(
        connect_string(socket_place(data_dir).dir, read_port(data_dir), "postgres"));
    pqxx::nontransaction tx(connection);
    pqxx::result found =
        tx.exec("SELECT 1 FROM pg_database WHERE datname = " + tx.quote(k_database));
    if (found.empty()) {
      try {
        tx.exec0(std::string("CREATE DATABASE ") + k_database);
      } catch (const pqxx::sql_error& error) {
        // Another process created it in between.
        if (error.sqlstate() != "42P04") throw;
      }
    }
  } catch (const pqxx::sql_error& error) {
    throw DatabaseError(std::string("cannot create database '") + k_database +
                            "' in the local database: " + trimmed(error.what()),
                        error.sqlstate());
  } catch (const pqxx::failure& error) {
    throw DatabaseError("cannot connect to the local database in '" + data_dir.native() +
                        "': " + trimmed(error.what()));
  }
}

}  // namespace

std::string LocalDatabase::ensure_running(bool may_create) {
  check_path_for_pg_ctl(m_data_dir);
  const bool as_postgres = running_as_root();
  std::optional<ServerAccount> account;
  if (as_postgres) account = require_postgres_account();
  if (!may_create && !is_initialized()) {
    throw DatabaseError("there is no local database in '" + m_data_dir.native() +
                        "' (no PostgreSQL cluster there)");
  }

  std::vector<fs::path> parents_created;
  create_parents(m_data_dir.parent_path(), parents_created);
  bool data_dir_created = true;
  if (::mkdir(m_data_dir.c_str(), 0700) != 0) {
    if (errno != EEXIST) {
      const int error = errno;
      remove_failed_first_start(m_data_dir, false, false, parents_created);
      throw DatabaseError("cannot create the local database directory '" + m_data_dir.native() +
                          "': " + std::strerror(error));
    }
    data_dir_created = false;
  }
  if (!fs::is_directory(m_data_dir)) {
    throw DatabaseError("the local database path '" + m_data_dir.native() +
                        "' is not a directory: choose another (--data-dir or XDG_DATA_HOME)");
  }
  if (account) {
    if (auto blocking = first_blocking_dir(m_data_dir.parent_path(), *account)) {
      remove_failed_first_start(m_data_dir, data_dir_created, false, parents_created);
      throw DatabaseError(
          "the local database in '" + m_data_dir.native() +
          "' must be reachable by the 'postgres' user that runs it, but '" + blocking->native() +
          "' is private: pass --data-dir or set XDG_DATA_HOME to a directory postgres can "
          "reach (e.g. under /var/lib or /srv), or pass --db with a server of your own");
    }
  }
  DirectoryLock lock(m_data_dir);
  const bool initialised = fs::exists(m_data_dir / "PG_VERSION");
  if (!initialised && !directory_is_empty(m_data_dir)) {
    throw DatabaseError("'" + m_data_dir.native() +
                        "' is not empty and holds no PostgreSQL cluster: choose another "
                        "directory for the local database (--data-dir or XDG_DATA_HOME)");
  }
  if (!initialised && !may_create) {
    // Removed meanwhile by a failed first start elsewhere: leave it as we found it.
    remove_failed_first_start(m_data_dir, data_dir_created, false, parents_created);
    throw DatabaseError("there is no local database in '" + m_data_dir.native() +
                        "' (no PostgreSQL cluster there)");
  }
  try {
    start_cluster(m_data_dir, initialised, account);
  } catch (...) {
    if (!initialised) {
      // A server that did start (the database could not be created, pg_ctl gave up
      // waiting) stops before its directory goes.
      try {
        stop();
      } catch (const std::exception& error) {
        spdlog::debug("local database: stopping after a failed first start: {}", error.what());
      }
      remove_failed_first_start(m_data_dir, data_dir_created, true, parents_created);
    }
    throw;
  }
  return conninfo();
}

bool LocalDatabase::is_running() const {
  return postmaster_pid(m_data_dir).has_value();
}

bool LocalDatabase::is_initialized() const {
  return fs::exists(m_data_dir / "PG_VERSION");
}

void LocalDatabase::stop() {
  if (!is_running()) return;
  check_path_for_pg_ctl(m_data_dir);
  const bool as_postgres = running_as_root();
  if (as_postgres) require_postgres_account();
  CommandResult result = run_command({(find_bindir(m_data_dir) / "pg_ctl").native(), "stop", "-w",
                                      "-t", "60", "-m", "fast", "-D", m_data_dir.native()},
                                     as_postgres);
  if (result.exit_code != 0) {
    throw DatabaseError("cannot stop the local database in '" + m_data_dir.native() +
                        "': " + trimmed(result.output));
  }
}

std::string LocalDatabase::conninfo() const {
  return connect_string(socket_place(m_data_dir).dir, read_port(m_data_dir), k_database);
}

nlohmann::json LocalDatabase::status() const {
  const SocketPlace socket = socket_place(m_data_dir);
  auto pid = postmaster_pid(m_data_dir);
  nlohmann::json status = {
      {"data_dir", m_data_dir.native()},
      {"running", pid.has_value()},
      {"conninfo", conninfo()},
      {"pid", pid ? nlohmann::json(*pid) : nlohmann::json(nullptr)},
      {"initialized", fs::exists(m_data_dir / "PG_VERSION")},
      {"socket_dir", socket.dir.native()},
      {"log_file", (m_data_dir / "server.log").native()},
      {"settings", settings_state(m_data_dir)},
  };
  if (!socket.in_data_dir) {
    status["note"] = "the socket is in " + socket.dir.native() +
                     " because the data directory's path is too long (or unusual) for a Unix "
                     "socket";
  }
  return status;
}

std::optional<std::string> configured_conninfo(const std::string& db_option) {
  if (!db_option.empty()) return db_option;
  std::string url = env_or_empty("DATABASE_URL");
  if (!url.empty()) return url;
  for (const char* name : {"PGHOST", "PGDATABASE", "PGSERVICE"}) {
    if (!env_or_empty(name).empty()) return std::string();
  }
  return std::nullopt;
}

std::string redact_conninfo(std::string_view conninfo) {
  std::size_t first = 0;
  while (first < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[first])))
    ++first;
  if (is_uri(conninfo.substr(first))) {
    return std::string(conninfo.substr(0, first)) + redact_uri(conninfo.substr(first));
  }
  return redact_key_values(conninfo);
}

std::optional<std::string> conninfo_parse_error(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options) PQconninfoFree(options);
  if (!options && !error) return std::string("out of memory");
  if (!error) return std::nullopt;
  std::string message = error;
  PQfreemem(error);
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back())))
    message.pop_back();
  // libpq may quote the whole string (a URI with spaces): never its password.
  if (const std::string redacted = redact_conninfo(conninfo); redacted != conninfo) {
    for (std::size_t at = message.find(conninfo); at != std::string::npos;
         at = message.find(conninfo, at + redacted.size()))
      message.replace(at, conninfo.size(), redacted);
  }
  return message;
}

}  // namespace skype_etl::detail
