// The two runners that drive HTTP themselves: `baseline` (the driver makes
// each saga's step calls, no engine: the ceiling of this machine for this
// step service) and `server` (each saga is one start through `usher serve`'s
// API with ?wait=, which answers once the saga has finished).
//
// Both keep C sagas in flight as C coroutines on one io_context, each with its
// own keep-alive connection, taking seats 1..N from a shared counter.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "bench_run.h"
#include "postgres.h"
#include "ticketing_rules.h"
#include "usher/url.h"

namespace usher::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

// One keep-alive connection, opened on first use and reopened after an error.
class Connection {
 public:
  Connection(asio::any_io_executor ex, tcp::endpoint at, const HttpUrl& url)
      : stream_(ex), at_(at), host_(url.host_header()), base_path_(url.base_path) {}

  // POSTs `body` to `target`; the reply's status and body, or status 0 on a transport error.
  asio::awaitable<std::pair<int, std::string>> post(const std::string& target, std::string body) {
    if (!stream_.socket().is_open()) {
      stream_.expires_after(std::chrono::seconds(10));
      auto [ec] = co_await stream_.async_connect(at_, kAwait);
      if (ec) co_return std::make_pair(0, "connect: " + ec.message());
      stream_.socket().set_option(tcp::no_delay(true));
    }
    http::request<http::string_body> req{http::verb::post, base_path_ + target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = std::move(body);
    req.prepare_payload();
    stream_.expires_after(std::chrono::seconds(120));
    auto [wec, wn] = co_await http::async_write(stream_, req, kAwait);
    if (wec) co_return fail("write: " + wec.message());
    http::response<http::string_body> res;
    auto [rec, rn] = co_await http::async_read(stream_, buffer_, res, kAwait);
    if (rec) co_return fail("read: " + rec.message());
    if (!res.keep_alive()) close();
    co_return std::make_pair(static_cast<int>(res.result_int()), std::move(res.body()));
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    buffer_.clear();
  }

 private:
  std::pair<int, std::string> fail(std::string why) {
    close();
    return {0, std::move(why)};
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  tcp::endpoint at_;
  std::string host_;
  std::string base_path_;
};

enum class Ending { kCompleted, kCompensated, kOther };

// One saga's work, given a connection and a seat.
using SagaFn = std::function<asio::awaitable<Ending>(Connection&, uint64_t seat)>;

struct Load {
  std::atomic<uint64_t> next{1};
  std::vector<float> latencies;
  std::atomic<uint64_t> completed{0}, compensated{0}, other{0};
  std::mutex error_mu;
  std::string first_error;
};

asio::awaitable<void> worker(Load& load, uint64_t n, tcp::endpoint at, HttpUrl url, const SagaFn& saga) {
  Connection conn(co_await asio::this_coro::executor, at, url);
  for (;;) {
    uint64_t seat = load.next.fetch_add(1);
    if (seat > n) break;
    auto t0 = SteadyClock::now();
    Ending e = co_await saga(conn, seat);
    load.latencies[seat - 1] = std::chrono::duration<float, std::milli>(SteadyClock::now() - t0).count();
    (e == Ending::kCompleted ? load.completed : e == Ending::kCompensated ? load.compensated : load.other)++;
  }
  conn.close();
}

// Runs C workers over N seats on `threads` threads, worker k on
// urls[k % urls.size()]; fills timing and endings.
void drive(const RunSpec& spec, const std::vector<std::string>& urls, const SagaFn& saga, RunResult& out,
           unsigned threads = 1) {
  Load load;
  load.latencies.assign(spec.sagas, 0.0f);
  std::vector<std::pair<tcp::endpoint, HttpUrl>> targets;
  for (const std::string& url : urls) {
    auto parsed = parse_http_url(url);
    if (!parsed) {
      out.ok = false;
      out.error = parsed.status().message();
      return;
    }
    // An IP literal: the driver connects to 127.0.0.1 and resolves nothing.
    const HttpUrl& target = parsed.value();
    targets.emplace_back(tcp::endpoint(asio::ip::make_address(target.host),
                                       static_cast<unsigned short>(std::stoi(target.port))),
                         target);
  }
  asio::io_context io;
  for (unsigned i = 0; i < spec.concurrency; ++i) {
    const auto& [at, target] = targets[i % targets.size()];
    asio::co_spawn(io, worker(load, spec.sagas, at, target, saga), asio::detached);
  }
  auto t0 = SteadyClock::now();
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& th : pool) th.join();
  out.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  out.latencies_ms = std::move(load.latencies);
  out.completed = load.completed;
  out.compensated = load.compensated;
  out.other = load.other;
}

std::string step_body(uint64_t seat) {
  return "{\"sagaId\":\"b-" + std::to_string(seat) + "\",\"seat\":" + std::to_string(seat) + "}";
}

// The saga without an engine: the same calls the engine would make.
asio::awaitable<Ending> baseline_saga(Connection& c, uint64_t seat) {
  auto ok = [](const std::pair<int, std::string>& r) { return r.first == 200; };
  if (!ok(co_await c.post("/reserve", step_body(seat)))) co_return Ending::kOther;
  auto pay = co_await c.post("/pay", step_body(seat));
  if (pay.first == 422) {
    if (!ok(co_await c.post("/reserve/cancel", step_body(seat)))) co_return Ending::kOther;
    co_return Ending::kCompensated;
  }
  if (!ok(pay)) co_return Ending::kOther;
  if (!ok(co_await c.post("/confirm", step_body(seat)))) co_return Ending::kOther;
  if (!ok(co_await c.post("/notify", step_body(seat)))) co_return Ending::kOther;
  co_return Ending::kCompleted;
}

}  // namespace

RunResult run_baseline(const RunSpec& spec) {
  RunResult r;
  r.spec = spec;
  if (!reset_counts(spec.service_url, r.error)) {
    r.ok = false;
    return r;
  }
  double cpu0 = process_cpu_seconds(0);
  drive(spec, {spec.service_url}, baseline_saga, r);
  r.cpu_seconds = process_cpu_seconds(0) - cpu0;
  r.count_check = check_counts(spec.service_url, spec.sagas, r.count_detail);
  return r;
}

namespace {

// The `usher_log_..._total` counters of /metrics.
std::optional<double> metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

// What sync_counter_preload.cpp counted in the file at `path`.
std::optional<double> counted_syncs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  if (!in.read(reinterpret_cast<char*>(&n), sizeof n)) return std::nullopt;
  return static_cast<double>(n);
}

// One saga through the API: a start that answers once the saga has settled.
asio::awaitable<Ending> server_saga(Connection& c, uint64_t seat) {
  auto res = co_await c.post("/v1/workflows/bench-ticketing/sagas?wait=120s", "{\"seat\":" + std::to_string(seat) + "}");
  if (res.first != 201) {
    static std::atomic<bool> told{false};
    if (!told.exchange(true))
      std::fprintf(stderr, "usher-bench: a start answered %d: %s\n", res.first, res.second.substr(0, 300).c_str());
    co_return Ending::kOther;
  }
  // The status is near the front of the saga; no need to parse the rest.
  if (res.second.find("\"status\":\"completed\"") != std::string::npos) co_return Ending::kCompleted;
  if (res.second.find("\"status\":\"compensated\"") != std::string::npos) co_return Ending::kCompensated;
  co_return Ending::kOther;
}

}  // namespace

// The whole event feed read back through GET /v1/events from the start, in
// pages of 1000 (docs/event-feed.md): how fast a read model catches up with
// what the run wrote. Events per second of wall time; nullopt if unread.
std::optional<double> feed_read_rate(const std::string& api) {
  const auto t0 = std::chrono::steady_clock::now();
  size_t events = 0;
  std::string after;
  for (;;) {
    auto page = http_request(api, "GET", "/v1/events?limit=1000" + (after.empty() ? "" : "&after=" + after));
    if (!page || page->first != 200) return std::nullopt;
    Json j = Json::parse(page->second, nullptr, false);
    if (!j.is_object() || !j["events"].is_array()) return std::nullopt;
    if (j["events"].empty()) break;
    events += j["events"].size();
    after = j["next"].get<std::string>();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (events == 0 || seconds <= 0) return std::nullopt;
  return static_cast<double>(events) / seconds;
}

// The publication as /healthz shows it, sampled every 100 ms while the run
// drives the server (its largest lag), then followed until it has every
// event of the log.
class PublicationWatch {
 public:
  explicit PublicationWatch(std::string api) : api_(std::move(api)), thread_([this] { sample(); }) {}
  ~PublicationWatch() { stop(); }

  // Ends sampling; then waits (up to a minute) until every event is published.
  void finish(RunResult& r, double run_seconds) {
    stop();
    r.publish_max_lag_events = max_events_;
    r.publish_max_lag_seconds = max_seconds_;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 6000; ++i) {
      if (auto p = publication(); p && (*p)["lag_events"] == 0) {
        auto rest = http_request(api_, "GET", "/v1/events?limit=1&after=" + std::to_string((*p)["position"].get<int64_t>()));
        Json page = rest ? Json::parse(rest->second, nullptr, false) : Json();
        if (page.is_object() && page["events"].empty()) {
          const double catch_up = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          r.publish_catch_up_seconds = catch_up;
          r.publish_events_per_second = static_cast<double>((*p)["position"].get<int64_t>()) / (run_seconds + catch_up);
          return;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  std::optional<Json> publication() {
    auto health = http_request(api_, "GET", "/healthz");
    if (!health || health->first != 200) return std::nullopt;
    Json j = Json::parse(health->second, nullptr, false);
    if (!j.is_object() || !j["publication"].is_object()) return std::nullopt;
    return j["publication"];
  }
  void sample() {
    while (!stopping_) {
      if (auto p = publication()) {
        max_events_ = std::max(max_events_, (*p)["lag_events"].get<double>());
        max_seconds_ = std::max(max_seconds_, (*p)["lag_seconds"].get<double>());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }

  std::string api_;
  std::atomic<bool> stopping_{false};
  double max_events_ = 0, max_seconds_ = 0;
  std::thread thread_;
};

void drive_server_starts(const RunSpec& spec, const std::vector<std::string>& apis, RunResult& out) {
  drive(spec, apis, server_saga, out);
}

RunResult run_server(const RunSpec& spec) {
  RunResult r;
  r.spec = spec;
  auto fail = [&](std::string why) {
    r.ok = false;
    r.error = std::move(why);
    return r;
  };
  if (access(spec.usher_binary.c_str(), X_OK) != 0) return fail("no usher binary at " + spec.usher_binary);
  if (!reset_counts(spec.service_url, r.error)) return fail(r.error);

  // The log: a fresh SQLite file, or the PostgreSQL database of --db emptied.
  const std::string files = spec.work_dir + "/server-" + std::to_string(spec.concurrency) + ".db";
  const std::string db = spec.db.empty() ? files : spec.db;
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(files + ext);
  if (!spec.db.empty() && !reset_postgres(spec.db, r.error)) return fail("cannot empty " + spec.db + ": " + r.error);
  const std::optional<double> wal0 = spec.db.empty() ? std::nullopt : wal_syncs(spec.db);
  // Syncs are counted by a preloaded library (sync_counter_preload.cpp), not a
  // tracer: it adds nothing to the process's cost.
  const std::string sync_counter = spec.work_dir + "/server-" + std::to_string(spec.concurrency) + ".syncs";
  std::filesystem::remove(sync_counter);
  std::vector<std::string> env = {"USHER_BENCH_SERVICE_URL=" + spec.service_url};
  const bool counted = access(spec.sync_counter_library.c_str(), R_OK) == 0;
  if (counted) {
    env.push_back("LD_PRELOAD=" + spec.sync_counter_library);
    env.push_back("USHER_BENCH_SYNC_COUNTER=" + sync_counter);
  }
  std::vector<std::string> argv = {spec.usher_binary, "serve", "--db", db, "--workflows", spec.workflows_dir,
                                   "--listen", "127.0.0.1:0", "--log-level", "warn", "--durability",
                                   spec.synchronous_full ? "full" : "normal"};
  // --publish: the feed to a Kafka mock cluster of its own (one broker, four partitions).
  Child sandbox;
  struct StopOnReturn {
    Child& child;
    ~StopOnReturn() {
      if (child.pid > 0) stop_child(child);
    }
  } stop_sandbox{sandbox};
  if (spec.publish) {
    auto started = spawn({spec.sandbox_binary, "--brokers", "1", "--topics", "usher.saga-events", "--partitions", "4"},
                         {}, spec.work_dir + "/publish-sandbox.log");
    auto brokers = started ? read_line_with(*started, "bootstrap.servers=", 20) : std::nullopt;
    if (!brokers) return fail("the Kafka mock cluster did not start (see " + spec.work_dir + "/publish-sandbox.log)");
    sandbox = *started;
    drain(sandbox, spec.work_dir + "/publish-sandbox.stdout.log");
    const std::string config = spec.work_dir + "/publish.yaml";
    std::ofstream(config) << "publish:\n  kafka:\n    brokers: \"" << *brokers << "\"\n    topic: usher.saga-events\n";
    argv.insert(argv.end(), {"--config", config});
  }
  auto child = spawn(argv, env, files + ".log");
  if (!child) return fail("cannot start " + spec.usher_binary);
  auto port = read_line_with(*child, "usher: listening on 127.0.0.1:", 30);
  if (!port) {
    stop_child(*child);
    return fail("usher serve did not report its port (see " + files + ".log)");
  }
  drain(*child, files + ".stdout.log");
  const std::string api = "http://127.0.0.1:" + *port;
  const int usher_pid = child->pid;

  const double cpu0 = process_cpu_seconds(usher_pid);
  std::optional<PublicationWatch> watch;
  if (spec.publish) watch.emplace(api);
  drive_server_starts(spec, {api}, r);
  r.cpu_seconds = process_cpu_seconds(usher_pid) - cpu0;
  if (watch) watch->finish(r, r.seconds);
  r.peak_rss_mb = peak_rss_mb(usher_pid);
  if (auto m = http_request(api, "GET", "/metrics"); m && m->first == 200) {
    auto commits = metric(m->second, "usher_log_commits_total");
    auto events = metric(m->second, "usher_log_events_total");
    if (commits && events && *commits > 0) r.events_per_commit = *events / *commits;
  }
  r.feed_events_per_second = feed_read_rate(api);
  kill(usher_pid, SIGTERM);
  wait_exit(*child, 10);
  if (counted) r.fsyncs = counted_syncs(sync_counter);
  if (wal0) {
    auto wal1 = wal_syncs(spec.db);
    r.fsyncs = wal1 ? std::optional<double>(*wal1 - *wal0) : std::nullopt;
  }
  r.count_check = check_counts(spec.service_url, spec.sagas, r.count_detail);
  return r;
}

}  // namespace usher::bench
