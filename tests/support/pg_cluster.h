// A throwaway PostgreSQL cluster for one test process: initdb into a fresh temp
// dir, a server on a free port of 127.0.0.1 with trust auth for the superuser
// `usher`, and a database `usher`. The server is stopped and the dir removed
// when the object goes; kill_hard() and start() let a test crash the "machine"
// and bring it back through PostgreSQL's own crash recovery.
//
// initdb and pg_ctl refuse to run as root, so as root the dir is given to the
// `postgres` user and both run through `runuser -u postgres --`.
//
// A test process that dies without running destructors (SIGKILL, ctest's
// timeout, abort) would leave the server and the dir behind for good, so each
// cluster has a watchdog: a shell outside the test's process tree and session
// that waits for EOF on a pipe only the test process holds the write end of,
// then stops the server and removes the dir.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace usher::test {

namespace pg_detail {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The last few lines of a log: enough to see why the server did not come up.
inline std::string tail(const fs::path& path, size_t max_lines = 30) {
  std::string text = slurp(path);
  size_t pos = text.size();
  for (size_t lines = 0; pos > 0 && lines <= max_lines;) {
    if (text[--pos] == '\n') ++lines;
  }
  return text.substr(pos == 0 ? 0 : pos + 1);
}

// Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<major>/bin;
// USHER_PG_BINDIR overrides, and PATH is the last resort.
inline std::string pg_bin(const std::string& name) {
  if (const char* dir = std::getenv("USHER_PG_BINDIR"); dir != nullptr && *dir != '\0') {
    return (fs::path(dir) / name).string();
  }
  int best_major = -1;
  fs::path best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string major = entry.path().filename().string();
    if (major.empty() || !std::all_of(major.begin(), major.end(), ::isdigit)) continue;
    const fs::path candidate = entry.path() / "bin" / name;
    if (std::stoi(major) > best_major && ::access(candidate.c_str(), X_OK) == 0) {
      best_major = std::stoi(major);
      best = candidate;
    }
  }
  return best_major >= 0 ? best.string() : name;
}

// Bound once to learn a free port, then let go for the server to take.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::system_error(err, std::generic_category(), "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Runs argv with cwd `cwd`, stdin from /dev/null and stdout+stderr into
// `output`; returns the exit status (-1 if it did not exit normally). No shell,
// so paths need no quoting.
inline int run(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& output) {
  // Everything the child touches is prepared before fork: only
  // async-signal-safe calls are allowed between fork and exec.
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) throw std::system_error(errno, std::generic_category(), "open " + output.string());
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(out);
    throw std::system_error(err, std::generic_category(), "fork");
  }
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0 || ::chdir(cwd.c_str()) != 0) {
      ::_exit(127);
    }
    // The postmaster outlives pg_ctl: it must not inherit the test's sockets and files.
    ::close_range(3, ~0U, 0);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// What /proc/<pid>/stat says about a process; exists is false once it is gone.
struct ProcStat {
  bool exists = false;
  char state = '?';
  pid_t ppid = 0;
  unsigned long long start_time = 0;  // tells a process from a later one given the same pid
};

inline ProcStat proc_stat(pid_t pid) {
  ProcStat s;
  const std::string text = slurp("/proc/" + std::to_string(pid) + "/stat");
  // The command name is in parentheses and may itself hold spaces and ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  std::vector<std::string> f;  // f[0] is field 3 (state) of proc(5)
  while (fields >> field) f.push_back(field);
  if (f.size() < 20) return s;
  s.exists = true;
  s.state = f[0].empty() ? '?' : f[0][0];
  s.ppid = static_cast<pid_t>(std::stol(f[1]));
  s.start_time = std::stoull(f[19]);
  return s;
}

// Killed but not yet reaped counts as dead: a zombie holds no memory, socket or file.
inline bool dead(pid_t pid, unsigned long long start_time) {
  const ProcStat s = proc_stat(pid);
  return !s.exists || s.state == 'Z' || s.state == 'X' || s.start_time != start_time;
}

inline std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (proc_stat(pid).ppid == parent) out.push_back(pid);
  }
  return out;
}

// A word for sh: single-quoted, with each ' as '\''.
inline std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};

}  // namespace pg_detail

class PgCluster {
 public:
  PgCluster() {
    namespace fs = std::filesystem;
    static std::atomic<int> counter{0};
    std::random_device rd;
    // Short: the socket path <dir>/.s.PGSQL.<port> must fit in 107 bytes.
    dir_ = fs::temp_directory_path() /
           ("usher-pg-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + std::to_string(rd()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    try {
      // First, so a death during initdb or start is cleaned up too.
      start_watchdog();
      if (::geteuid() == 0) give_to_postgres();
      const int rc = run_as_owner({pg_detail::pg_bin("initdb"), "-D", data().string(), "-U", "usher", "--auth=trust",
                                   "-E", "UTF8", "--locale=C", "--no-sync"});
      if (rc != 0) fail("initdb exited with " + std::to_string(rc), dir_ / "cmd.out");
      // A port found free can be taken before the server binds it: try another.
      for (int attempt = 1;; ++attempt) {
        port_ = pg_detail::free_port();
        if (try_start()) break;
        if (attempt == 5) fail("pg_ctl start failed 5 times", dir_ / "log");
      }
      create_database("usher");
    } catch (...) {
      stop_and_remove();
      throw;
    }
  }

  ~PgCluster() { stop_and_remove(); }

  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // One cluster per test process, started on first use and stopped at exit.
  static PgCluster& shared() {
    static PgCluster cluster;
    return cluster;
  }

  std::string uri(const std::string& database = "usher") const {
    return "postgresql://usher@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }

  int port() const { return port_; }
  std::string dir() const { return dir_.string(); }

  // The first line of data/postmaster.pid; after kill_hard() the pid of the dead one.
  pid_t postmaster_pid() const {
    std::ifstream in(data() / "postmaster.pid");
    long pid = 0;
    if (!(in >> pid) || pid <= 0) throw std::runtime_error("no postmaster.pid in " + data().string());
    return static_cast<pid_t>(pid);
  }

  // Idempotent; asks pg_database first so a second call sends no CREATE.
  void create_database(const std::string& name) {
    auto conn = connect("postgres");
    const char* params[] = {name.c_str()};
    auto exists = exec(conn.get(), "select 1 from pg_database where datname = $1", 1, params);
    if (PQntuples(exists.get()) > 0) return;
    std::unique_ptr<char, decltype(&PQfreemem)> quoted(PQescapeIdentifier(conn.get(), name.c_str(), name.size()),
                                                        &PQfreemem);
    if (!quoted) throw std::runtime_error("PQescapeIdentifier: " + std::string(PQerrorMessage(conn.get())));
    exec(conn.get(), "create database " + std::string(quoted.get()));
  }

  // The first column of the first row as text; "" when there is no row or it is NULL.
  std::string query(const std::string& database, const std::string& sql) {
    auto conn = connect(database);
    auto res = exec(conn.get(), sql);
    if (PQntuples(res.get()) == 0 || PQnfields(res.get()) == 0 || PQgetisnull(res.get(), 0, 0)) return "";
    return PQgetvalue(res.get(), 0, 0);
  }

  // A machine crash: SIGKILL for the postmaster and all its children, nothing
  // flushed or shut down. Returns once every one of them is dead.
  void kill_hard() {
    const pid_t pm = running_postmaster();
    if (pm <= 0) return;
    // Stopped, the postmaster cannot fork a child we would miss.
    ::kill(pm, SIGSTOP);
    std::vector<std::pair<pid_t, unsigned long long>> victims;
    for (pid_t child : pg_detail::children_of(pm)) victims.emplace_back(child, pg_detail::proc_stat(child).start_time);
    victims.emplace_back(pm, pg_detail::proc_stat(pm).start_time);
    for (const auto& [pid, start] : victims) {
      if (!pg_detail::dead(pid, start)) ::kill(pid, SIGKILL);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (const auto& [pid, start] : victims) {
      while (!pg_detail::dead(pid, start)) {
        if (std::chrono::steady_clock::now() > deadline) {
          throw std::runtime_error("kill_hard: pid " + std::to_string(pid) + " still alive after 10 s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }

  // Starts the server on the same port and data dir; after kill_hard() the
  // server runs crash recovery first, and pg_ctl -w waits for it.
  void start() {
    if (!try_start()) fail("pg_ctl start failed", dir_ / "log");
  }

  // The same data dir on another port, where clients of the usual port do
  // not find it: a test reads what was durable at a crash before letting its
  // clients back (stop(), then start_on_port(the usual port)).
  void start_on_port(int port) {
    port_ = port;
    start();
  }

  // A clean shutdown (pg_ctl -m fast), waiting for it.
  void stop() {
    if (running_postmaster() > 0) {
      run_as_owner({pg_detail::pg_bin("pg_ctl"), "-D", data().string(), "-m", "fast", "-w", "stop"});
    }
  }

 private:
  std::filesystem::path data() const { return dir_ / "data"; }

  // chown -R to postgres, who runs initdb and the server when we are root.
  void give_to_postgres() {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("running as root, but there is no `postgres` user to run initdb as");
    std::vector<std::filesystem::path> paths{dir_};
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_)) paths.push_back(entry.path());
    for (const auto& p : paths) {
      if (::lchown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::system_error(errno, std::generic_category(), "chown " + p.string());
      }
    }
  }

  // Output goes to dir/cmd.out, opened by us, so it works for either user.
  int run_as_owner(std::vector<std::string> args) const {
    if (::geteuid() == 0) args.insert(args.begin(), {"runuser", "-u", "postgres", "--"});
    return pg_detail::run(args, dir_, dir_ / "cmd.out");
  }

  bool try_start() {
    clear_zombie_locks();
    const std::string options = "-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) +
                                " -c unix_socket_directories=" + dir_.string() +
                                " -c max_connections=200 -c fsync=on -c synchronous_commit=on";
    const int rc = run_as_owner({pg_detail::pg_bin("pg_ctl"), "-D", data().string(), "-l", (dir_ / "log").string(),
                                 "-w", "-t", "60", "start", "-o", options});
    if (rc == 0) return true;
    // A server still starting after the timeout must not outlive the attempt.
    stop_immediately();
    return false;
  }

  // A server refuses to start while the pid in its lock files answers kill(0),
  // which an unreaped zombie does; this init may reap late or never.
  void clear_zombie_locks() {
    std::error_code ec;
    std::ifstream in(data() / "postmaster.pid");
    long pid = 0;
    if (in >> pid && pid > 0) {
      const pg_detail::ProcStat s = pg_detail::proc_stat(static_cast<pid_t>(pid));
      if (s.exists && s.state == 'Z') std::filesystem::remove(data() / "postmaster.pid", ec);
    }
    // Socket lock files name their postmaster on the first line; one whose
    // postmaster is a zombie or gone (killed by kill_hard, on this or an
    // earlier port) would stop a server from starting on that port.
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with(".s.PGSQL.") || !name.ends_with(".lock")) continue;
      std::ifstream lock(entry.path());
      long owner = 0;
      if (!(lock >> owner) || owner <= 0) continue;
      const pg_detail::ProcStat s = pg_detail::proc_stat(static_cast<pid_t>(owner));
      if (!s.exists || s.state == 'Z') std::filesystem::remove(entry.path(), ec);
    }
  }

  // The postmaster's pid if it is alive and serves this cluster's data dir,
  // so a stale postmaster.pid can never make us kill someone else.
  pid_t running_postmaster() const {
    pid_t pm = 0;
    try {
      pm = postmaster_pid();
    } catch (const std::runtime_error&) {
      return 0;
    }
    const pg_detail::ProcStat s = pg_detail::proc_stat(pm);
    if (!s.exists || s.state == 'Z') return 0;
    std::string cmdline = pg_detail::slurp("/proc/" + std::to_string(pm) + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    return cmdline.find(" " + data().string() + " ") != std::string::npos ? pm : 0;
  }

  // pg_ctl signals whatever pid postmaster.pid names, so only while it is ours.
  void stop_immediately() {
    if (running_postmaster() > 0) {
      run_as_owner({pg_detail::pg_bin("pg_ctl"), "-D", data().string(), "-m", "immediate", "stop"});
    }
  }

  // In a child forked without exec that exits normally the object is a copy:
  // the cluster is its parent's, who still uses it.
  void stop_and_remove() noexcept {
    if (::getpid() != owner_) {
      close_fd(life_fd_);
      close_fd(done_fd_);
      return;
    }
    try {
      stop_immediately();
    } catch (...) {
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    release_watchdog();
  }

  // The watchdog is /bin/sh with the read end of the "life" pipe as stdin; we
  // keep the write end, close-on-exec so no exec'd child holds it (a child
  // forked without exec holds it while it lives, which only delays cleanup
  // until it dies too). Its `cat` returns at EOF, when every write end is gone:
  // we closed it or we died. It then stops the server if postmaster.pid names a
  // live postmaster of this data dir (as stop_immediately; SIGCONT first in
  // case we died inside kill_hard with it stopped) and removes the dir.
  //
  // It is double-forked: a grandchild in a session of its own, handed to init
  // at once, so neither a Ctrl-C or kill of our process group nor ctest's
  // timeout (SIGKILL for the test and every process whose parent pid leads to
  // it) reaches it. Not being its parent, we learn it is done from EOF on the
  // "done" pipe, whose write end it holds as fd 3.
  void start_watchdog() {
    const std::string data_q = pg_detail::sh_quote(data().string());
    std::string stop = pg_detail::sh_quote(pg_detail::pg_bin("pg_ctl")) + " -D " + data_q + " -m immediate stop";
    if (::geteuid() == 0) stop = "runuser -u postgres -- " + stop;
    const std::string script =
        "cat >/dev/null\n"
        "pid=$(head -n 1 " + pg_detail::sh_quote((data() / "postmaster.pid").string()) + " 2>/dev/null)\n"
        "case $pid in\n"
        "  ''|*[!0-9]*) ;;\n"
        "  *) if tr '\\000' '\\n' </proc/$pid/cmdline 2>/dev/null | grep -qxF -e " + data_q + "; then\n"
        "       kill -CONT $pid 2>/dev/null\n"
        "       " + stop + "\n"
        "     fi ;;\n"
        "esac\n"
        "rm -rf -- " + pg_detail::sh_quote(dir_.string()) + "\n";
    // Everything the children touch is prepared before fork: only
    // async-signal-safe calls between fork and exec.
    const char* const argv[] = {"/bin/sh", "-c", script.c_str(), "usher-pg-watchdog", nullptr};
    int life[2] = {-1, -1};
    int done[2] = {-1, -1};
    const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0 || ::pipe2(life, O_CLOEXEC) != 0 || ::pipe2(done, O_CLOEXEC) != 0) {
      const int err = errno;
      for (int fd : {null_fd, life[0], life[1], done[0], done[1]}) close_fd(fd);
      throw std::system_error(err, std::generic_category(), "watchdog pipes");
    }
    const pid_t middle = ::fork();
    if (middle == 0) {
      if (::setsid() < 0) ::_exit(1);
      const pid_t watchdog = ::_Fork();
      if (watchdog != 0) ::_exit(watchdog < 0 ? 1 : 0);
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      // Copies above 3 first, so no dup2 below has its target as its source
      // (which would leave close-on-exec set).
      const int in = ::fcntl(life[0], F_DUPFD, 10);
      const int out = ::fcntl(null_fd, F_DUPFD, 10);
      const int fin = ::fcntl(done[1], F_DUPFD, 10);
      if (in < 0 || out < 0 || fin < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0 ||
          ::dup2(fin, 3) < 0 || ::chdir("/") != 0) {
        ::_exit(127);
      }
      // Above all the write end of the life pipe: held here, it would never see EOF.
      ::close_range(4, ~0U, 0);
      ::execv(argv[0], const_cast<char* const*>(argv));
      ::_exit(127);
    }
    const int fork_err = errno;
    for (int fd : {null_fd, life[0], done[1]}) close_fd(fd);
    int status = 0;
    while (middle > 0 && ::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
    }
    if (middle < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      close_fd(life[1]);
      close_fd(done[0]);
      throw std::system_error(middle < 0 ? fork_err : ECHILD, std::generic_category(), "fork watchdog");
    }
    life_fd_ = life[1];
    done_fd_ = done[0];
  }

  // After the server is stopped and the dir removed: the watchdog's stop and
  // rm then find nothing. Waits (bounded) for it to finish.
  void release_watchdog() noexcept {
    if (life_fd_ < 0) return;
    close_fd(life_fd_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      using std::chrono::milliseconds;
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{done_fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      char buf[64];
      const ssize_t n = ::read(done_fd_, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
    }
    close_fd(done_fd_);
  }

  static void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  [[noreturn]] void fail(const std::string& what, const std::filesystem::path& log) const {
    throw std::runtime_error("PgCluster in " + dir_.string() + ": " + what + "\n--- " + log.string() + " ---\n" +
                             pg_detail::tail(log));
  }

  std::unique_ptr<PGconn, pg_detail::PgConnDeleter> connect(const std::string& database) const {
    std::unique_ptr<PGconn, pg_detail::PgConnDeleter> conn(PQconnectdb(uri(database).c_str()));
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
      throw std::runtime_error("connect to " + uri(database) + ": " +
                               (conn ? PQerrorMessage(conn.get()) : "out of memory"));
    }
    return conn;
  }

  static std::unique_ptr<PGresult, pg_detail::PgResultDeleter> exec(PGconn* conn, const std::string& sql,
                                                                     int n_params = 0,
                                                                     const char* const* params = nullptr) {
    std::unique_ptr<PGresult, pg_detail::PgResultDeleter> res(
        n_params == 0 ? PQexec(conn, sql.c_str())
                      : PQexecParams(conn, sql.c_str(), n_params, nullptr, params, nullptr, nullptr, 0));
    const ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      throw std::runtime_error(sql + ": " + PQerrorMessage(conn));
    }
    return res;
  }

  std::filesystem::path dir_;
  int port_ = 0;
  pid_t owner_ = ::getpid();
  int life_fd_ = -1;  // write end of the watchdog's stdin
  int done_fd_ = -1;  // read end of the pipe the watchdog holds until it exits
};

}  // namespace usher::test
