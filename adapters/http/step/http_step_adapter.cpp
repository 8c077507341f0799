// How one attempt travels (all of it on its pool's strand):
//
//   dispatch ──post──▶ run_call: build the request once (step_request.h)
//                        └─ acquire a connection from the host:port's pool
//                           (connection_pool.h): an idle one that is still
//                           alive, else a new one if under the bound, else wait
//                           in the pool's queue until one is released
//                        ══ the attempt starts: deadline = now + StepCall::timeout,
//                           StepCall::on_sending() is called
//                        └─ connect if new (resolving the host once per pool);
//                           for https://, the TLS handshake (tls_client.h)
//                        └─ StepCall::may_send() asked: no longer allowed → not sent
//                        └─ write, read the reply (body and header limits)
//                        └─ release: back to the pool (or straight to the first
//                           waiter) when the reply allowed keep-alive, else close
//                        └─ classify_reply (step_reply.h) → done(result)
//
// Waiting for a pooled connection is not part of the attempt (docs/semantics.md:
// waiting is not an attempt). A waiter has no deadline of its own:
// every connection it waits for belongs to an attempt that has one, so the
// pool frees connections as those attempts end, and shutdown wakes it. Only
// once it holds a connection does the attempt's one deadline, now +
// StepCall::timeout, start; it covers resolving, connecting, writing and
// reading (tcp_stream::expires_at), and StepCall::on_sending() tells the
// engine, whose own timer for the attempt starts there too
// (reports_sending() is true). What an expiry, or any error, means depends on
// where:
//   - before the request is written (the queue is full, the name does not
//     resolve, the connection is refused or not made in time, the TLS
//     handshake breaks off or does not end in time): nothing left, so the
//     result is StepResult::not_sent — the attempt did not happen;
//   - a TLS handshake that fails verification (unknown CA, expired, wrong
//     host name) or whose server refuses our client certificate: nothing
//     left either, but no retry will change it, so it is kFailed with
//     sent=false, `TLS handshake with seats (127.0.0.1:7443) failed:
//     certificate verify failed (certificate has expired)`. With TLS 1.3 a
//     server refuses a client certificate only after our handshake is done,
//     so that refusal is read where the reply should be, on a new
//     connection, as an alert in place of any reply byte: the server's TLS
//     layer dropped the request unread, and it is the same definite failure;
//   - once a connection is established and writing has begun: the service
//     may be acting on it. No answer by the deadline is kTimeout
//     `step "pay": no answer within 5s`; a connection that breaks (reset, EOF,
//     a write error, closed before the reply ended) or a reply that is not
//     HTTP is kTimeout too (`connection to host:port lost after the request
//     was sent: …`): the outcome is unknown. The connection is closed, since
//     a late reply would otherwise be read as the answer to the next request;
//   - once the status line and headers are read: the status decides, even if
//     the body is then cut off, too large or late (classify_partial_reply; a
//     2xx is a success with output {} and a note).
//
// The stale-connection retry. A server may close an idle keep-alive
// connection just as we reuse it. Before reuse we poll the socket (a FIN or
// unexpected bytes mean it is dead) which catches most of these. The rest show
// up as reset/broken pipe on write, or eof/reset on read before any byte of a
// reply: that attempt is sent once more on a fresh connection, which takes the
// dead one's place in the pool (so it never waits in the queue), within the
// same deadline and without counting as an attempt. Why this is safe enough: a
// server that closes a connection it has read a request from without answering
// has crashed or is shutting down, and even then the repeat carries the same
// Idempotency-Key, which every usher step service must honour (delivery is at
// least once anyway, docs/semantics.md). Since the first copy may have
// arrived, a re-send that cannot even connect is kTimeout, not "never sent".
// Only reused connections qualify: a fresh connection that dies before the
// reply is the service failing, and is kTimeout (unknown) for the retry policy
// and the compensations to handle. A reused TLS connection's peer close reads
// as eof (after close_notify) or stream_truncated (without).
//
// Every error and note handed to `done` is valid UTF-8 of at most
// kMaxServiceTextBytes (model/utf8_text.h): services, URLs and methods are
// quoted through valid_utf8().
#include "http/step/http_step_adapter.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "http/step/connection_pool.h"
#include "http/step/service_url.h"
#include "http/step/step_reply.h"
#include "http/step/step_request.h"
#include "http/step/tls_client.h"
#include "usher/duration.h"
#include "usher/service_text.h"

namespace usher {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using http_step::ConnectionPool;
using http_step::ConnectionPtr;
using http_step::SteadyClock;
using boost::system::error_code;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
const char* const kShutDown = "adapter shut down";

// Errors meaning "the peer closed this connection before answering".
bool is_peer_close(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == asio::ssl::error::stream_truncated;
}

std::string step_prefix(const StepCall& call) { return "step \"" + call.step + "\": "; }

// What `done` receives: every text in it valid UTF-8 and bounded, whatever
// a service, a URL or the system put in it.
StepResult stored_as_text(StepResult r) {
  r.error = valid_utf8(r.error);
  r.note = valid_utf8(r.note);
  return r;
}

// A configuration error no retry can fix, found before anything was sent.
StepResult failed_unsent(std::string error) {
  StepResult r = StepResult::failed(std::move(error));
  r.sent = false;
  return r;
}

using PoolPtr = std::shared_ptr<ConnectionPool>;

}  // namespace

class HttpStepAdapter::Impl {
 public:
  explicit Impl(HttpStepAdapterOptions options)
      : options_(std::move(options)), work_(asio::make_work_guard(io_)) {
    if (options_.io_threads == 0) options_.io_threads = 1;
    if (options_.max_connections_per_endpoint == 0) options_.max_connections_per_endpoint = 1;
    pool_limits_ = {options_.max_connections_per_endpoint, options_.max_waiting_per_endpoint, options_.max_idle};
    for (unsigned i = 0; i < options_.io_threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  ~Impl() { shutdown(); }

  void dispatch(StepCall call, StepCallback done) {
    PoolPtr pool;
    std::string base_path;
    std::string route_error;
    {
      std::unique_lock lock(mu_);
      if (stopping_) {
        lock.unlock();
        done(StepResult::not_sent(kShutDown));
        return;
      }
      Route& route = route_for(call.service);
      pool = route.pool;
      base_path = route.base_path;
      route_error = route.error;
    }
    if (!pool) {
      std::string error = step_prefix(call) + "service \"" + call.service.name + "\": " + route_error;
      asio::post(io_, [done = std::move(done), error = std::move(error)]() mutable {
        done(stored_as_text(failed_unsent(std::move(error))));
      });
      return;
    }
    asio::co_spawn(pool->strand(),
                   run_call(pool, std::move(base_path), std::move(call), std::move(done)),
                   [](std::exception_ptr e) {
                     // run_call catches what it can; only `done` itself can throw here.
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::error("http step adapter: step callback threw: {}", ex.what());
                     }
                   });
  }

  void shutdown() {
    std::lock_guard once(shutdown_mu_);  // a second caller waits for the first to finish
    std::vector<PoolPtr> pools;
    {
      std::lock_guard lock(mu_);
      if (threads_.empty()) return;  // already shut down
      stopping_ = true;
      stopping_flag_.store(true, std::memory_order_release);
      for (auto& [key, pool] : pools_) pools.push_back(pool);
    }
    // Each pool is closed on its own strand, where its state lives. The calls
    // in progress see operation_aborted and answer "adapter shut down".
    for (auto& pool : pools) asio::post(pool->strand(), [pool] { pool->close(); });
    work_.reset();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

  Stats stats() const {
    return {connections_opened_.load(), requests_sent_.load(), stale_retries_.load(), tls_handshakes_.load()};
  }

 private:
  struct Route {
    PoolPtr pool;  // null when the URL is bad
    std::string base_path;
    std::string error;
  };

  // Under mu_. Routes are keyed by the whole URL and, for https://, the
  // service's tls settings (cheap lookup per call). Routes with the same
  // host:port share one ConnectionPool — for https://, those with the same
  // tls settings, whose pool's connections are made from one client context.
  Route& route_for(const Service& service) {
    const bool tls = service.url.starts_with("https://");
    const std::string key = tls ? service.url + '\0' + http_step::tls_key(service.tls) : service.url;
    auto it = routes_.find(key);
    if (it != routes_.end()) return it->second;
    Route route;
    auto parsed = http_step::parse_service_url(service.url);
    if (!parsed) {
      route.error = parsed.status().message();
    } else if (auto context = tls_context(parsed.value(), service.tls); !context) {
      route.error = context.status().message();
    } else {
      route.base_path = parsed.value().base_path;
      std::string pool_key = parsed.value().endpoint();
      if (parsed.value().tls) pool_key = "https://" + pool_key + '\0' + http_step::tls_key(service.tls);
      auto& pool = pools_[pool_key];
      if (!pool)
        pool = std::make_shared<ConnectionPool>(asio::make_strand(io_), std::move(parsed.value()), pool_limits_,
                                                std::move(context.value()));
      route.pool = pool;
    }
    return routes_.emplace(key, std::move(route)).first->second;
  }

  // Under mu_. The client context for https:// with these settings, made once
  // (reading its files); null for http://.
  Result<std::shared_ptr<asio::ssl::context>> tls_context(const http_step::ServiceUrl& url, const ServiceTls& tls) {
    if (!url.tls) return std::shared_ptr<asio::ssl::context>();
    auto& context = contexts_[http_step::tls_key(tls)];
    if (!context) {
      auto made = http_step::make_tls_context(tls);
      if (!made) return made.status();
      context = std::move(made.value());
    }
    return context;
  }

  bool stopping() const { return stopping_flag_.load(std::memory_order_acquire); }

  // ---- one call -----------------------------------------------------------------
  asio::awaitable<void> run_call(PoolPtr pool, std::string base_path, StepCall call,
                                 StepCallback done) {
    StepResult result;
    try {
      result = co_await attempt(*pool, base_path, call);
    } catch (const std::exception& e) {
      result = StepResult::transient(step_prefix(call) + "internal error in the HTTP adapter: " + e.what());
    }
    done(stored_as_text(std::move(result)));
  }

  asio::awaitable<StepResult> attempt(ConnectionPool& pool, const std::string& base_path, const StepCall& call) {
    const std::string prefix = step_prefix(call);
    const std::string where = pool.url().endpoint();
    const std::string tls_peer = call.service.name + " (" + where + ")";

    auto req = http_step::build_step_request(call, base_path, pool.host_header(), options_.user_agent);
    if (!req) co_return failed_unsent(prefix + req.status().message());

    // Wait for a connection: not part of the attempt, no deadline.
    if (stopping()) co_return StepResult::not_sent(kShutDown);
    ConnectionPtr conn;
    switch (co_await pool.acquire(conn)) {
      case ConnectionPool::Acquire::kGot: break;
      case ConnectionPool::Acquire::kStopped: co_return StepResult::not_sent(kShutDown);
      case ConnectionPool::Acquire::kQueueFull:
        co_return StepResult::not_sent(prefix + "too many calls waiting for a connection to " + where);
    }

    // The attempt starts now: its deadline, and the engine's timer with it.
    const auto deadline = SteadyClock::now() + call.timeout;
    if (call.on_sending) call.on_sending();

    // Whatever happens below, the connection goes back through release():
    // kept only when `reusable` was set after a complete keep-alive reply.
    bool reusable = false;
    struct Lease {
      ConnectionPool& pool;
      ConnectionPtr& conn;
      bool& reusable;
      ~Lease() { pool.release(std::move(conn), reusable); }
    } lease{pool, conn, reusable};

    // Set when the request was lost on a reused connection and is being sent
    // again: the first copy may have arrived, so from then on nothing fails
    // as "never sent".
    std::string lost;
    auto unsent = [&](std::string error) {
      if (lost.empty()) return StepResult::not_sent(prefix + error);
      return StepResult::timeout(prefix + lost + "; sending it again failed: " + error);
    };
    auto shut_down = [&] { return lost.empty() ? StepResult::not_sent(kShutDown) : StepResult::transient(kShutDown); };
    auto lost_after_sending = [&](const error_code& ec) {
      return StepResult::timeout(prefix + "connection to " + where + " lost after the request was sent: " +
                                 ec.message());
    };
    // Replaces a reused connection that turned out dead by a fresh one in the
    // same slot of the pool, for the one re-send.
    auto renew = [&](const error_code& ec) {
      stale_retries_.fetch_add(1, std::memory_order_relaxed);
      lost = "connection to " + where + " lost after the request was sent: " + ec.message();
      pool.replace(conn);
    };

    for (;;) {
      http_step::Connection& c = *conn;
      if (!c.tcp().socket().is_open()) {
        if (pool.addresses().empty()) {
          std::string error = co_await pool.resolve(deadline);
          if (stopping()) co_return shut_down();
          if (!error.empty()) co_return unsent(std::move(error));
        }
        c.tcp().expires_at(deadline);
        auto [ec, connected] = co_await c.tcp().async_connect(pool.addresses(), kAwait);
        if (stopping()) co_return shut_down();
        if (ec == beast::error::timeout)
          co_return unsent("could not connect to " + where + " within " + format_duration(call.timeout));
        if (ec) co_return unsent("cannot connect to " + where + ": " + ec.message());
        c.tcp().socket().set_option(tcp::no_delay(true), ec);  // small requests: do not wait for Nagle
        connections_opened_.fetch_add(1, std::memory_order_relaxed);
        if (http_step::TlsStream* tls = c.tls()) {
          const auto& url = pool.url();
          if (std::string error = http_step::prepare_connection(tls->native_handle(), url.host, url.host_is_ip);
              !error.empty())
            co_return failed_unsent(prefix + "TLS with " + tls_peer + ": " + error);
          // Still within the attempt's deadline (the TCP stream's expiry).
          auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, kAwait);
          if (stopping()) co_return shut_down();
          if (hec == beast::error::timeout)
            co_return unsent("TLS handshake with " + tls_peer + " not done within " + format_duration(call.timeout));
          if (hec) {
            std::string error = "TLS handshake with " + tls_peer + " failed: ";
            auto refusal = http_step::tls_refusal(tls->native_handle(), hec);
            if (refusal && lost.empty()) co_return failed_unsent(prefix + error + *refusal);
            co_return unsent(error + (refusal ? *refusal : hec.message()));
          }
          tls_handshakes_.fetch_add(1, std::memory_order_relaxed);
        }
      }
      const bool stale_retry_allowed = c.used && lost.empty();
      c.used = true;

      // Last moment to hold the request back: the call may have waited here
      // (for a connection, through a pause of the process) while this
      // cluster node's lease ran out.
      if (call.may_send && !call.may_send())
        co_return unsent("node " + std::to_string(call.node) + " is not sure it still holds its lease");

      // From the first byte written on, the service may act on the request.
      c.tcp().expires_at(deadline);
      requests_sent_.fetch_add(1, std::memory_order_relaxed);
      auto [wec, written] =
          co_await std::visit([&](auto& stream) { return http::async_write(stream, *req, kAwait); }, c.stream);
      if (wec) {
        if (stopping()) co_return StepResult::transient(kShutDown);
        if (wec == beast::error::timeout) co_return no_answer(call);
        if (stale_retry_allowed && is_peer_close(wec)) {
          renew(wec);
          continue;
        }
        co_return lost_after_sending(wec);
      }

      http::response_parser<http::string_body> parser;
      parser.body_limit(options_.max_response_bytes);
      parser.header_limit(static_cast<std::uint32_t>(options_.max_response_header_bytes));
      auto [rec, read] = co_await std::visit(
          [&](auto& stream) { return http::async_read(stream, c.buffer, parser, kAwait); }, c.stream);
      if (!rec) {
        auto& res = parser.get();
        // Bytes after a complete reply belong to no request of ours: a
        // connection holding them would answer the next call with them.
        // Over TLS they may also sit decrypted or not in the TLS stream.
        reusable = parser.keep_alive() && c.buffer.size() == 0 &&
                   !(c.tls() && http_step::has_unread_bytes(c.tls()->native_handle()));
        co_return http_step::classify_reply(call, res.result_int(), res.reason(), res.body(),
                                            res[http::field::retry_after], std::chrono::system_clock::now());
      }
      if (stopping()) co_return StepResult::transient(kShutDown);
      if (stale_retry_allowed && !parser.got_some() && is_peer_close(rec)) {
        renew(rec);
        continue;
      }
      // A TLS 1.3 server refusing our client certificate, on a new
      // connection, before any byte of a reply: its TLS layer never passed
      // the request on (see the top of this file).
      if (c.tls() && !stale_retry_allowed && lost.empty() && !parser.got_some()) {
        if (auto refusal = http_step::tls_refusal(c.tls()->native_handle(), rec))
          co_return failed_unsent(prefix + "TLS handshake with " + tls_peer + " failed: " + *refusal);
      }
      if (parser.is_header_done()) {  // the status was read: it decides
        auto& res = parser.get();
        std::string problem = rec == http::error::body_limit
                                  ? "the reply is larger than " + size_text(options_.max_response_bytes)
                              : rec == beast::error::timeout
                                  ? "the reply was cut off: it did not end within " +
                                        format_duration(call.timeout)
                                  : "the reply was cut off: " + rec.message();
        co_return http_step::classify_partial_reply(call, res.result_int(), res.reason(), res.body(), problem,
                                                    res[http::field::retry_after],
                                                    std::chrono::system_clock::now());
      }
      if (rec == beast::error::timeout) co_return no_answer(call);
      if (rec == http::error::header_limit)
        co_return StepResult::timeout(prefix + "reply headers from " + where + " larger than " +
                                      size_text(options_.max_response_header_bytes));
      if (is_peer_close(rec) || rec == http::error::partial_message) co_return lost_after_sending(rec);
      co_return StepResult::timeout(prefix + "bad reply from " + where + ": " + rec.message());
    }
  }

  static StepResult no_answer(const StepCall& call) {
    return StepResult::timeout(step_prefix(call) + "no answer within " + format_duration(call.timeout));
  }

  static std::string size_text(size_t bytes) {
    if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
    if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
    return std::to_string(bytes) + " bytes";
  }

  HttpStepAdapterOptions options_;
  http_step::PoolLimits pool_limits_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;

  std::mutex shutdown_mu_;
  std::mutex mu_;  // guards routes_, pools_, stopping_ (dispatch vs shutdown)
  bool stopping_ = false;
  std::unordered_map<std::string, Route> routes_;
  std::unordered_map<std::string, PoolPtr> pools_;  // by host:port (https: scheme, host:port and tls settings)
  std::unordered_map<std::string, std::shared_ptr<asio::ssl::context>> contexts_;  // by tls_key()

  std::atomic<bool> stopping_flag_{false};  // read on the strands without the mutex
  std::atomic<uint64_t> connections_opened_{0};
  std::atomic<uint64_t> requests_sent_{0};
  std::atomic<uint64_t> stale_retries_{0};
  std::atomic<uint64_t> tls_handshakes_{0};
};

HttpStepAdapter::HttpStepAdapter(HttpStepAdapterOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpStepAdapter::~HttpStepAdapter() = default;

void HttpStepAdapter::dispatch(StepCall call, StepCallback done) {
  impl_->dispatch(std::move(call), std::move(done));
}

void HttpStepAdapter::shutdown() { impl_->shutdown(); }

HttpStepAdapter::Stats HttpStepAdapter::stats() const { return impl_->stats(); }

Status HttpStepAdapter::check_service(const Service& service) {
  if (service.transport != Transport::kHttp) return Status::ok();
  auto parsed = http_step::parse_service_url(service.url);
  if (!parsed) return Status::invalid_argument("service \"" + service.name + "\": " + parsed.status().message());
  if (!parsed->tls) {
    if (service.tls != ServiceTls{})
      return Status::invalid_argument("service \"" + service.name + "\": tls settings are for an https:// url");
    return Status::ok();
  }
  // Reads the files as each connection will, so a file that is not PEM or a
  // key that does not match its certificate stops `serve` before it starts.
  if (auto context = http_step::make_tls_context(service.tls); !context)
    return Status::invalid_argument("service \"" + service.name + "\": " + context.status().message());
  return Status::ok();
}

}  // namespace usher
