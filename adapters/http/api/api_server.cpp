#include "http/api/api_server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace usher::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds kStreamPieceDeadline{60};

int64_t steady_ticks() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

// One connection. Everything in it is touched only on its strand (the
// stream's executor), except that stop() and an eviction post closures onto
// that strand, and that the acceptor reads `busy` and `waiting_since` and
// sets `evicted` (under the server's mutex) to choose whom to close when the
// table is full (api_server.h, Fairness).
struct Conn {
  Conn(tcp::socket socket, std::string address)
      : stream(std::move(socket)), response_ready(stream.get_executor()), address(std::move(address)) {}
  beast::tcp_stream stream;
  // Wakes the session when the handler's answer has been posted back.
  asio::steady_timer response_ready;
  std::optional<ApiResponse> response;
  uint64_t request_seq = 0;  // answers for an older request (after its deadline) are dropped
  // A request is being handled or answered (or a stream served): stop() lets
  // it finish and an eviction never chooses it.
  std::atomic<bool> busy{false};
  // When its current wait began (steady_ticks): accepted, a request's first
  // byte came, or a response was written. The longest waiting goes first.
  std::atomic<int64_t> waiting_since{steady_ticks()};
  const std::string address;  // the client's, for max_connections_per_address
  bool evicted = false;       // chosen to be closed for a newcomer; under the server's mutex
  // A streaming response (ApiHandler::Stream): where its body comes from,
  // and the piece asked for last (nullopt inside: the stream ended).
  std::function<void(ApiHandler::Deliver)> stream_next;
  std::optional<std::optional<std::string>> piece;
  uint64_t piece_seq = 0;  // a piece that comes after the stream ended is dropped
  bool streaming = false;  // stop() ends a stream at once rather than waiting for it
};

// Whether the server's io_context still exists, for the handler's answers,
// which may arrive from another thread after stop().
struct Lifeline {
  std::mutex mu;
  bool open = true;
};

// A request the parser refused as malformed (worth a 400), as opposed to the
// client going away or the deadline passing (nothing to answer).
bool is_malformed(const boost::system::error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_method).category() && ec != http::error::end_of_stream &&
         ec != http::error::partial_message && ec != http::error::need_more && ec != http::error::buffer_overflow;
}

// How a request's body is framed, checked before it is read (RFC 9112 6):
// the only transfer coding usher reads is chunked, alone; any other (or a
// list, or one Beast would not recognise such as "xchunked") would leave the
// body unread and the rest served as a second request, so it is refused and
// the connection closed. So is a request with both Transfer-Encoding and
// Content-Length, the classic request-smuggling shape. Empty when fine.
std::string framing_problem(const http::request_header<>& header) {
  auto te = header.find(http::field::transfer_encoding);
  if (te == header.end()) return {};
  std::string_view codings = te->value();
  while (!codings.empty() && (codings.front() == ' ' || codings.front() == '\t')) codings.remove_prefix(1);
  while (!codings.empty() && (codings.back() == ' ' || codings.back() == '\t')) codings.remove_suffix(1);
  if (!beast::iequals(codings, "chunked") || header.count(http::field::transfer_encoding) > 1)
    return "unsupported Transfer-Encoding \"" + std::string(te->value()) + "\": usher reads only \"chunked\"";
  if (header.find(http::field::content_length) != header.end())
    return "a request must not carry both Transfer-Encoding and Content-Length";
  return {};
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    spdlog::error("api server: {}", x.what());
  }
}

}  // namespace

class ApiServer::Impl {
 public:
  Impl(ApiHandler& handler, ApiServerOptions options)
      : handler_(handler),
        options_(std::move(options)),
        ioc_(static_cast<int>(std::max(1u, options_.io_threads))),
        work_(asio::make_work_guard(ioc_)),
        acceptor_(asio::make_strand(ioc_)) {}

  Status bind() {
    boost::system::error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(options_.address, std::to_string(options_.port),
                                    tcp::resolver::numeric_service, ec);
    if (ec || results.empty())
      return Status::invalid_argument("cannot resolve listen address \"" + options_.address + "\": " + ec.message());
    tcp::endpoint ep = results.begin()->endpoint();
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Status::unavailable("cannot listen on " + options_.address + ":" + std::to_string(options_.port) + ": " +
                                 ec.message());
    endpoint_ = acceptor_.local_endpoint(ec);
    return Status::ok();
  }

  void run() {
    asio::co_spawn(acceptor_.get_executor(), listen(), log_exception);
    for (unsigned i = 0; i < std::max(1u, options_.io_threads); ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  void stop(Millis grace) {
    if (stopped_.exchange(true)) return;
    stopping_ = true;
    asio::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
    });
    // Idle connections close now; busy ones after their response (they see
    // stopping_); streams end at once, as they never would by themselves.
    for_each_conn([](const std::shared_ptr<Conn>& c) {
      if (!c->busy) c->stream.socket().close();
      if (c->streaming) c->response_ready.cancel();
    });
    wait_drained(grace);
    // A request still waiting for the engine (a ?wait) is answered 503 "the
    // server is shutting down" and its connection closed after the write.
    for_each_conn([](const std::shared_ptr<Conn>& c) {
      if (c->busy) c->response_ready.cancel();
    });
    wait_drained(Millis{500});
    // Whatever is left (a slow client, a write that does not drain) is dropped.
    for_each_conn([](const std::shared_ptr<Conn>& c) {
      boost::system::error_code ec;
      c->stream.socket().close(ec);
      c->response_ready.cancel();
    });
    wait_drained(Millis{500});
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    // From here on a late answer from the handler is dropped, not posted to
    // an io_context about to be destroyed.
    std::lock_guard lock(lifeline_->mu);
    lifeline_->open = false;
  }

  size_t connections() const {
    std::lock_guard lock(mu_);
    return conns_.size();
  }

  uint64_t evictions() const { return evictions_.load(); }

  tcp::endpoint endpoint_;

 private:
  template <typename F>
  void for_each_conn(F f) {
    std::vector<std::shared_ptr<Conn>> all;
    {
      std::lock_guard lock(mu_);
      all.assign(conns_.begin(), conns_.end());
    }
    for (auto& c : all) asio::post(c->stream.get_executor(), [c, f] {
      try {
        f(c);
      } catch (const std::exception&) {
        // a socket already closed: nothing to do
      }
    });
  }

  void wait_drained(Millis limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (connections() > 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  asio::awaitable<void> listen() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_), kTuple);
      if (stopping_ || !acceptor_.is_open()) co_return;
      if (ec) {
        // Out of file descriptors and the like: wait a little rather than spin.
        spdlog::warn("api server: accept: {}", ec.message());
        asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(50));
        co_await pause.async_wait(kTuple);
        continue;
      }
      boost::system::error_code aec;
      std::string address = socket.remote_endpoint(aec).address().to_string();
      auto conn = std::make_shared<Conn>(std::move(socket), std::move(address));
      std::shared_ptr<Conn> victim;
      if (admit(conn, victim)) {
        if (victim) asio::post(victim->stream.get_executor(), [this, victim] { evict(victim); });
        asio::co_spawn(conn->stream.get_executor(), session(conn), log_exception);
      } else {
        asio::co_spawn(conn->stream.get_executor(), refuse(conn), log_exception);
      }
    }
  }

  // Registers a new connection, choosing in `victim` a waiting connection to
  // close when the table or the newcomer's address is full (api_server.h,
  // Fairness). False when there is no room and nobody to close: every
  // connection that counts is busy.
  bool admit(const std::shared_ptr<Conn>& conn, std::shared_ptr<Conn>& victim) {
    std::lock_guard lock(mu_);
    size_t& from_address = per_address_[conn->address];
    const bool address_full = from_address >= options_.max_connections_per_address;
    const bool table_full = conns_.size() - evicting_ >= options_.max_connections;
    if (address_full || table_full) {
      victim = longest_waiting(address_full ? &conn->address : nullptr);
      if (!victim) {
        if (from_address == 0) per_address_.erase(conn->address);
        return false;
      }
      victim->evicted = true;
      ++evicting_;
      ++evictions_;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_eviction_log_ >= std::chrono::seconds(10)) {
        last_eviction_log_ = now;
        spdlog::warn("api server: {} to admit a connection from {}, closed a waiting one from {} ({} so far)",
                     address_full ? "too many connections from one address" : "the connection table is full",
                     conn->address, victim->address, evictions_.load());
      }
    }
    conns_.insert(conn);
    ++from_address;
    return true;
  }

  // The registered connection that has waited longest, not busy and not
  // already chosen; from `address` only, when given. Under mu_; a linear scan,
  // made only when the table is full.
  std::shared_ptr<Conn> longest_waiting(const std::string* address) const {
    std::shared_ptr<Conn> best;
    int64_t best_since = 0;
    for (const auto& c : conns_) {
      if (c->evicted || c->busy || (address && c->address != *address)) continue;
      const int64_t since = c->waiting_since.load();
      if (!best || since < best_since) {
        best = c;
        best_since = since;
      }
    }
    return best;
  }

  // On the victim's strand: closes it, unless a request of it began to be
  // handled since it was chosen, which is then answered (the table is one
  // over until a connection ends).
  void evict(const std::shared_ptr<Conn>& c) {
    if (c->busy) {
      std::lock_guard lock(mu_);
      if (c->evicted) {
        c->evicted = false;
        --evicting_;
      }
      return;
    }
    boost::system::error_code ec;
    c->stream.socket().close(ec);
  }

  // No room and every connection busy: one 503, then close, reading nothing.
  asio::awaitable<void> refuse(std::shared_ptr<Conn> c) {
    ApiResponse res = problem_response(ProblemKind::kUnavailable, "too many connections; try again later");
    res.keep_alive(false);
    res.set(http::field::retry_after, "1");
    c->stream.expires_after(std::chrono::seconds(1));
    co_await http::async_write(c->stream, res, kTuple);
    boost::system::error_code ec;
    c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    c->stream.socket().close(ec);
  }

  // Sends a response the server makes itself (413, 431, 400 before the
  // handler), then closes the connection gracefully.
  asio::awaitable<void> answer_and_close(std::shared_ptr<Conn> c, ApiResponse res, unsigned version) {
    res.version(version);
    res.keep_alive(false);
    c->stream.expires_after(options_.write_timeout);
    auto [ec, n] = co_await http::async_write(c->stream, res, kTuple);
    (void)n;
    if (!ec) co_await linger(c);
  }

  // After refusing a request whose body is still arriving: stop sending and
  // discard what comes in for a second (never keeping it), so the client
  // finishes writing and reads our answer instead of a connection reset.
  asio::awaitable<void> linger(std::shared_ptr<Conn> c) {
    boost::system::error_code ec;
    c->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    c->stream.expires_after(std::chrono::seconds(1));
    std::array<char, 16 << 10> sink;
    for (;;) {
      auto [rec, n] = co_await c->stream.async_read_some(asio::buffer(sink), kTuple);
      if (rec) break;
      (void)n;
    }
  }

  // Runs `f` on the connection's strand, if the connection and the server's
  // io_context still exist: what the handler's answers do, from any thread.
  template <typename F>
  static void post_to(const std::shared_ptr<Lifeline>& lifeline, const std::weak_ptr<Conn>& weak, F f) {
    std::lock_guard lock(lifeline->mu);
    if (!lifeline->open) return;
    auto conn = weak.lock();
    if (!conn) return;
    asio::post(conn->stream.get_executor(), [weak, f = std::move(f)]() mutable {
      if (auto c = weak.lock()) f(*c);
    });
  }

  // Writes a streaming response: its head (chunked), then each piece the
  // handler gives as a chunk, until the stream ends, the client goes away,
  // a write does not drain in write_timeout or the server stops. The
  // connection is not kept after it.
  asio::awaitable<void> stream_response(std::shared_ptr<Conn> c, ApiResponse head, unsigned version, bool head_only) {
    head.version(version);
    head.keep_alive(false);
    head.chunked(true);
    head.body().clear();
    c->streaming = true;
    http::response_serializer<http::string_body> header{head};
    c->stream.expires_after(options_.write_timeout);
    auto [hec, hn] = co_await http::async_write_header(c->stream, header, kTuple);
    (void)hn;
    if (hec || head_only) co_return;
    while (!stopping_) {
      const uint64_t seq = ++c->piece_seq;
      c->piece.reset();
      // A handler answers every piece well within this (a heartbeat at the
      // latest); past it the stream is taken as wedged and ended.
      c->response_ready.expires_after(kStreamPieceDeadline);
      c->stream_next([lifeline = lifeline_, weak = std::weak_ptr<Conn>(c), seq](std::optional<std::string> p) {
        post_to(lifeline, weak, [seq, p = std::move(p)](Conn& c) mutable {
          if (c.piece_seq != seq) return;
          c.piece = std::move(p);
          c.response_ready.cancel();
        });
      });
      while (!c->piece && !stopping_) {
        auto [ec] = co_await c->response_ready.async_wait(kTuple);
        if (!ec) break;  // no piece in time
      }
      if (!c->piece || !*c->piece) break;
      std::string text = std::move(**c->piece);
      c->stream.expires_after(options_.write_timeout);
      auto [wec, wn] = co_await asio::async_write(c->stream, http::make_chunk(asio::buffer(text)), kTuple);
      (void)wn;
      if (wec) co_return;  // the client went away
    }
    ++c->piece_seq;  // a piece still coming is dropped
    c->stream.expires_after(options_.write_timeout);
    co_await asio::async_write(c->stream, http::make_chunk_last(), kTuple);
  }

  asio::awaitable<ApiResponse> call_handler(std::shared_ptr<Conn> c, ApiRequest req) {
    uint64_t seq = ++c->request_seq;
    c->response.reset();
    c->response_ready.expires_after(handler_.response_deadline());
    // Called exactly once from any thread (see ApiHandler::handle), perhaps
    // after this server is gone: the engine may hold the callback past
    // stop(). So it keeps no asio object alive (the connection only weakly,
    // no executor) and posts only while the lifeline says the io_context
    // exists. Always posted, so it runs after this coroutine is suspended.
    auto respond = [lifeline = lifeline_, weak = std::weak_ptr<Conn>(c), seq](ApiResponse r) {
      post_to(lifeline, weak, [seq, r = std::move(r)](Conn& c) mutable {
        if (c.request_seq != seq) return;
        c.response = std::move(r);
        c.response_ready.cancel();
      });
    };
    auto open_stream = [lifeline = lifeline_, weak = std::weak_ptr<Conn>(c), seq](ApiHandler::Stream s) {
      post_to(lifeline, weak, [seq, s = std::move(s)](Conn& c) mutable {
        if (c.request_seq != seq) return;
        c.stream_next = std::move(s.next);
        c.response = std::move(s.head);
        c.response_ready.cancel();
      });
    };
    handler_.handle(std::move(req), std::move(respond), std::move(open_stream));
    while (!c->response) {
      auto [ec] = co_await c->response_ready.async_wait(kTuple);
      if (c->response) break;
      if (!ec || stopping_) {
        c->request_seq++;  // a late answer must not land in the next request's slot
        co_return problem_response(ProblemKind::kUnavailable,
                                   stopping_ ? "the server is shutting down" : "no answer in time");
      }
    }
    co_return std::move(*c->response);
  }

  asio::awaitable<void> session(std::shared_ptr<Conn> c) {
    struct Unregister {
      Impl* self;
      std::shared_ptr<Conn> c;
      ~Unregister() {
        std::lock_guard lock(self->mu_);
        self->conns_.erase(c);
        if (c->evicted) {
          c->evicted = false;
          --self->evicting_;
        }
        if (auto it = self->per_address_.find(c->address); it != self->per_address_.end() && --it->second == 0)
          self->per_address_.erase(it);
      }
    } unregister{this, c};

    beast::flat_buffer buffer;
    // A new connection's first request line and header must be in by this
    // time (first_request_timeout), however it dribbles them.
    const auto first_request_deadline = std::chrono::steady_clock::now() + options_.first_request_timeout;
    bool first_request = true;
    for (;;) {
      if (stopping_) break;
      // Between requests the connection may stay idle for idle_timeout; once
      // a request's first byte is here, the whole request has read_timeout.
      if (buffer.size() == 0) {
        // A new connection may wait no longer than a kept-alive one would.
        auto idle_deadline = std::chrono::steady_clock::now() + options_.idle_timeout;
        if (first_request) idle_deadline = std::min(idle_deadline, first_request_deadline);
        c->stream.expires_at(idle_deadline);
        auto [ec, n] = co_await c->stream.async_read_some(buffer.prepare(4096), kTuple);
        if (ec) break;
        buffer.commit(n);
      }
      if (stopping_) break;
      c->waiting_since = steady_ticks();
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(std::min<size_t>(options_.max_header_bytes, UINT32_MAX)));
      parser.body_limit(options_.max_body_bytes);
      // The header has read_timeout from its first byte; a first request's,
      // no later than first_request_deadline either.
      auto header_deadline = std::chrono::steady_clock::now() + options_.read_timeout;
      if (first_request) header_deadline = std::min(header_deadline, first_request_deadline);
      c->stream.expires_at(header_deadline);
      auto [hec, hn] = co_await http::async_read_header(c->stream, buffer, parser, kTuple);
      (void)hn;
      if (hec == http::error::header_limit) {
        {
          // Built outside the co_await expression: GCC 12 mishandles temporaries there.
          ApiResponse refusal = problem_response(ProblemKind::kHeaderTooLarge,
                             "the request's header is larger than " + std::to_string(options_.max_header_bytes) +
                                 " bytes");
          co_await answer_and_close(c, std::move(refusal), 11);
        }
        break;
      }
      if (hec == http::error::body_limit) {
        // Beast checks a declared Content-Length against the limit as soon as
        // the header is complete: the body has not been read.
        std::string length = std::string(parser.get()[http::field::content_length]);
        {
          // Built outside the co_await expression: GCC 12 mishandles temporaries there.
          ApiResponse refusal = problem_response(ProblemKind::kBodyTooLarge,
                                                   "the request body (" + (length.empty() ? "?" : length) +
                                                       " bytes) is larger than the limit of " +
                                                       std::to_string(options_.max_body_bytes) + " bytes",
                                                   parser.get().target());
          co_await answer_and_close(c, std::move(refusal), parser.get().version());
        }
        break;
      }
      if (hec) {
        if (is_malformed(hec))
          {
            // Built outside the co_await expression: GCC 12 mishandles temporaries there.
            ApiResponse refusal = problem_response(ProblemKind::kBadRequest, "malformed HTTP request: " + hec.message());
            co_await answer_and_close(c, std::move(refusal), 11);
          }
        break;
      }
      const unsigned version = parser.get().version();
      if (first_request) {
        first_request = false;
        c->stream.expires_after(options_.read_timeout);  // for the body
      }
      if (auto len = parser.content_length(); len && *len > options_.max_body_bytes) {
        {
          // Built outside the co_await expression: GCC 12 mishandles temporaries there.
          ApiResponse refusal = problem_response(ProblemKind::kBodyTooLarge,
                                                   "the request body (" + std::to_string(*len) +
                                                       " bytes) is larger than the limit of " +
                                                       std::to_string(options_.max_body_bytes) + " bytes",
                                                   parser.get().target());
          co_await answer_and_close(c, std::move(refusal), version);
        }
        break;
      }
      if (std::string why = framing_problem(parser.get()); !why.empty()) {
        {
          // Built outside the co_await expression: GCC 12 mishandles temporaries there.
          ApiResponse refusal = problem_response(ProblemKind::kBadRequest, why, parser.get().target());
          co_await answer_and_close(c, std::move(refusal), version);
        }
        break;
      }
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, version};
        c->stream.expires_after(options_.write_timeout);
        auto [cec, cn] = co_await http::async_write(c->stream, cont, kTuple);
        (void)cn;
        if (cec) break;
        c->stream.expires_after(options_.read_timeout);
      }
      auto [bec, bn] = co_await http::async_read(c->stream, buffer, parser, kTuple);
      (void)bn;
      if (bec == http::error::body_limit) {
        {
          // Built outside the co_await expression: GCC 12 mishandles temporaries there.
          ApiResponse refusal = problem_response(ProblemKind::kBodyTooLarge,
                                                   "the request body is larger than the limit of " +
                                                       std::to_string(options_.max_body_bytes) + " bytes",
                                                   parser.get().target());
          co_await answer_and_close(c, std::move(refusal), version);
        }
        break;
      }
      if (bec) {
        if (is_malformed(bec))
          {
            // Built outside the co_await expression: GCC 12 mishandles temporaries there.
            ApiResponse refusal = problem_response(ProblemKind::kBadRequest, "malformed HTTP request: " + bec.message());
            co_await answer_and_close(c, std::move(refusal), version);
          }
        break;
      }

      ApiRequest req = parser.release();
      // HEAD is GET without the content (RFC 9110 9.3.2): routed as GET, and
      // only the response's header is written.
      const bool head = req.method() == http::verb::head;
      if (head) req.method(http::verb::get);
      bool keep_alive = req.keep_alive();
      c->busy = true;
      ApiResponse res = co_await call_handler(c, std::move(req));
      if (c->stream_next) {
        co_await stream_response(c, std::move(res), version, head);
        break;
      }
      if (stopping_) keep_alive = false;
      // A client without the token keeps no connection between requests.
      if (res.result() == http::status::unauthorized) keep_alive = false;
      res.version(version);
      res.keep_alive(keep_alive);
      res.prepare_payload();
      c->stream.expires_after(options_.write_timeout);
      boost::system::error_code wec;
      if (head) {
        http::response_serializer<http::string_body> header_only{res};
        auto [hwec, hwn] = co_await http::async_write_header(c->stream, header_only, kTuple);
        (void)hwn;
        wec = hwec;
      } else {
        auto [bwec, bwn] = co_await http::async_write(c->stream, res, kTuple);
        (void)bwn;
        wec = bwec;
      }
      c->busy = false;
      c->waiting_since = steady_ticks();
      if (wec || !keep_alive) break;
    }
    boost::system::error_code ec;
    c->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    c->stream.socket().close(ec);
  }

  // Member order matters: destroying ioc_ destroys the coroutine frames
  // still suspended in it, which touch mu_, conns_ and stopping_ (declared
  // before it, so they outlive it); the acceptor and the work guard use ioc_
  // (declared after it, so they go first).
  ApiHandler& handler_;
  ApiServerOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  mutable std::mutex mu_;
  std::unordered_set<std::shared_ptr<Conn>> conns_;
  // Under mu_: open connections per client address, and how many of conns_
  // are chosen to be closed (no longer counted against max_connections).
  std::unordered_map<std::string, size_t> per_address_;
  size_t evicting_ = 0;
  std::atomic<uint64_t> evictions_{0};
  std::chrono::steady_clock::time_point last_eviction_log_{};
  std::shared_ptr<Lifeline> lifeline_ = std::make_shared<Lifeline>();
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
};

Result<std::unique_ptr<ApiServer>> ApiServer::start(ApiHandler& handler, ApiServerOptions options) {
  auto impl = std::make_unique<Impl>(handler, std::move(options));
  Status st = impl->bind();
  if (!st.is_ok()) return st;
  impl->run();
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ApiServer::~ApiServer() { stop(Millis{0}); }

tcp::endpoint ApiServer::local_endpoint() const { return impl_->endpoint_; }

void ApiServer::stop(Millis grace) { impl_->stop(grace); }

size_t ApiServer::connections() const { return impl_->connections(); }

uint64_t ApiServer::evictions() const { return impl_->evictions(); }

}  // namespace usher::api
