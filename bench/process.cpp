// Child processes, /proc readings and small blocking HTTP calls for the driver.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
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

}  // namespace

double process_cpu_seconds(int pid) {
  if (pid == 0) {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  std::ifstream in(proc_path(pid, "stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after ") ".
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stod(f);
    if (i == 15) {
      stime = std::stod(f);
      break;
    }
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

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
                           const std::string& log_path) {
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
