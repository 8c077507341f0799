// Child processes, /proc readings and small blocking HTTP calls for the driver.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "bench_run.h"
#include "ticketing_rules.h"
#include "usher/url.h"

extern char** environ;

namespace usher::bench {
namespace {

std::string proc_path(int pid, const char* file) {
  return "/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/" + file;
}

double status_kb(int pid, const char* field) {
  std::ifstream in(proc_path(pid, "status"));
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':')
      return std::stod(line.substr(n + 1)) / 1024.0;
  }
  return 0;
}

// The fields of /proc/<pid>/stat the driver reads, in clock ticks.
struct ProcStat {
  bool ok = false;
  int ppid = 0;
  double utime = 0, stime = 0;    // the process's own CPU
  double cutime = 0, cstime = 0;  // its children's, once it has reaped them
};

ProcStat read_proc_stat(int pid) {
  ProcStat s;
  std::ifstream in(proc_path(pid, "stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after ") ".
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return s;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  for (int i = 3; fields >> f && i <= 17; ++i) {  // field 3 is the state
    if (i == 4) s.ppid = std::stoi(f);
    if (i == 14) s.utime = std::stod(f);
    if (i == 15) s.stime = std::stod(f);
    if (i == 16) s.cutime = std::stod(f);
    if (i == 17) {
      s.cstime = std::stod(f);
      s.ok = true;
    }
  }
  return s;
}

double ticks_to_seconds(double ticks) { return ticks / static_cast<double>(sysconf(_SC_CLK_TCK)); }

}  // namespace

double process_cpu_seconds(int pid) {
  if (pid == 0) {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  ProcStat s = read_proc_stat(pid);
  return ticks_to_seconds(s.utime + s.stime);
}

std::vector<int> child_pids(int pid) {
  std::vector<int> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    ProcStat child = read_proc_stat(std::stoi(name));
    if (child.ok && child.ppid == pid) children.push_back(std::stoi(name));
  }
  return children;
}

std::optional<double> process_tree_cpu_seconds(int pid) {
  ProcStat root = read_proc_stat(pid);
  if (!root.ok) return std::nullopt;
  double ticks = root.utime + root.stime + root.cutime + root.cstime;
  for (int child : child_pids(pid)) {
    ProcStat c = read_proc_stat(child);
    ticks += c.utime + c.stime;
  }
  return ticks_to_seconds(ticks);
}

double run_queue_wait_seconds(int pid) {
  double ns = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(proc_path(pid, "task"), ec)) {
    // schedstat: time on the CPU, time runnable but waiting for one, timeslices (ns).
    std::ifstream in(task.path() / "schedstat");
    double on_cpu = 0, waiting = 0;
    if (in >> on_cpu >> waiting) ns += waiting;
  }
  return ns / 1e9;
}

double machine_busy_cpu_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq;
  return ticks_to_seconds(user + nice + system + irq + softirq);
}

double load_average_1m() {
  std::ifstream in("/proc/loadavg");
  double one = 0;
  in >> one;
  return one;
}

namespace {

// Formats `pid` into `buf` without the C library (spawn's child, between fork
// and exec, may only call async-signal-safe functions).
size_t format_pid(pid_t pid, char* buf, size_t size) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0 && n < sizeof digits);
  size_t len = 0;
  while (n > 0 && len < size) buf[len++] = digits[--n];
  return len;
}

}  // namespace

double peak_rss_mb(int pid) { return status_kb(pid, "VmHWM"); }
double current_rss_mb(int pid) { return status_kb(pid, "VmRSS"); }

std::optional<std::pair<int, std::string>> http_request(const std::string& url, const std::string& method,
                                                         const std::string& target, const std::string& body) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  auto parsed = parse_http_url(url);
  if (!parsed) return std::nullopt;
  const HttpUrl& to = parsed.value();
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    boost::asio::ip::tcp::resolver resolver(io);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(resolver.resolve(to.host, to.port));
    http::request<http::string_body> req{http::string_to_verb(method), to.base_path + target, 11};
    req.set(http::field::host, to.host_header());
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    beast::error_code ec;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    return std::make_pair(static_cast<int>(res.result_int()), res.body());
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool reset_counts(const std::string& service_url, std::string& error) {
  auto r = http_request(service_url, "POST", "/stats/reset", "{}");
  if (!r || r->first != 200) {
    error = "cannot reset the step service's counts at " + service_url;
    return false;
  }
  return true;
}

bool check_counts(const std::string& service_url, uint64_t sagas, std::string& detail,
                  const std::vector<uint64_t>& extra) {
  auto r = http_request(service_url, "GET", "/stats");
  if (!r || r->first != 200) {
    detail = "cannot read /stats";
    return false;
  }
  Json got = Json::parse(r->second, nullptr, false);
  auto want = expected_counts(sagas);
  bool ok = got.is_object();
  std::string wrong;
  for (size_t i = 0; ok && i < kPathCount; ++i) {
    uint64_t n = got.value(std::string(kPathNames[i]), uint64_t{0}) + (i < extra.size() ? extra[i] : 0);
    if (n != want[i]) {
      ok = false;
      wrong += std::string(kPathNames[i]) + " " + std::to_string(n) + " (want " + std::to_string(want[i]) + ") ";
    }
  }
  detail = ok ? "pass" : "fail: " + wrong;
  return ok;
}

std::optional<Child> spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                           const std::string& log_path, const std::string& cgroup_procs) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
  int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (const auto& e : env) envs.push_back(e);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : envs) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    dup2(out[1], 1);
    if (log >= 0) dup2(log, 2);
    if (!cgroup_procs.empty()) {
      // Join the cgroup before exec, so no thread of the program runs outside it.
      char pid[24];
      size_t len = format_pid(getpid(), pid, sizeof pid);
      int fd = open(cgroup_procs.c_str(), O_WRONLY);
      if (fd < 0 || write(fd, pid, len) != static_cast<ssize_t>(len)) {
        static const char kMsg[] = "usher-bench: the child could not join its cgroup\n";
        (void)!write(2, kMsg, sizeof kMsg - 1);
        _exit(126);
      }
      close(fd);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(out[1]);
  if (log >= 0) close(log);
  return Child{pid, out[0]};
}

std::optional<std::string> read_line_with(Child& child, const std::string& prefix, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::string line;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{child.stdout_fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char c;
    if (read(child.stdout_fd, &c, 1) != 1) return std::nullopt;  // the child closed stdout or died
    if (c != '\n') {
      line += c;
      continue;
    }
    if (auto at = line.find(prefix); at != std::string::npos) return line.substr(at + prefix.size());
    line.clear();
  }
}

void drain(Child& child, const std::string& path) {
  if (child.stdout_fd < 0) return;
  int fd = std::exchange(child.stdout_fd, -1);
  // Until the child closes its stdout (it exits): a full pipe would block it.
  std::thread([fd, path] {
    std::ofstream out(path, std::ios::app);
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.write(buf, n);
    close(fd);
  }).detach();
}

void stop_child(Child& child, double grace_s) {
  if (child.pid <= 0) return;
  kill(child.pid, SIGTERM);
  wait_exit(child, grace_s);
}

void wait_exit(Child& child, double grace_s) {
  if (child.pid <= 0) return;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  int status = 0;
  while (waitpid(child.pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(child.pid, SIGKILL);
      waitpid(child.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (child.stdout_fd >= 0) close(child.stdout_fd);
  child = Child{};
}

}  // namespace usher::bench
