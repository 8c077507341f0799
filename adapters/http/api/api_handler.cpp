#include "http/api/api_handler.h"
#include "http/api/console_assets.h"
#include "http/api/feed_query.h"
#include "http/api/list_query.h"
#include "http/api/operator_action.h"
#include "http/api/request_observer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/field.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "usher/duration.h"
#include "usher/service_text.h"
#include "usher/inspect.h"

namespace usher::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;

// ---- small parsers ----------------------------------------------------------

std::optional<Millis> parse_wait(std::string_view text) { return parse_duration(text); }

bool token_matches(std::string_view presented, std::string_view expected) {
  // Both sides are hashed first, so the comparison below is always over 32
  // equal-length bytes, and CRYPTO_memcmp's time does not depend on where
  // they differ. Only the hashing time depends on the presented length.
  auto digest = [](std::string_view s, unsigned char* out) {
    unsigned int len = 0;
    return EVP_Digest(s.data(), s.size(), out, &len, EVP_sha256(), nullptr) == 1 && len == 32;
  };
  unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
  if (!digest(presented, a) || !digest(expected, b)) return false;
  return CRYPTO_memcmp(a, b, 32) == 0;
}

namespace {

// W3C Trace Context, level 1: "vv-<32 hex trace id>-<16 hex parent id>-ff",
// lowercase hex, ids not all zeros, version not ff; a later version may add
// fields after a further '-'.
bool is_w3c_traceparent(std::string_view v) {
  auto hex = [&](size_t from, size_t n) {
    for (size_t i = from; i < from + n; ++i)
      if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'))) return false;
    return true;
  };
  auto zeros = [&](size_t from, size_t n) { return v.substr(from, n).find_first_not_of('0') == std::string_view::npos; };
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  if (!hex(0, 2) || !hex(3, 32) || !hex(36, 16) || !hex(53, 2)) return false;
  if (v.substr(0, 2) == "ff" || zeros(3, 32) || zeros(36, 16)) return false;
  if (v.substr(0, 2) == "00") return v.size() == 55;
  return v.size() == 55 || v[55] == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding. '+' stays '+': query values are not form-encoded
// here, so "?at=2026-01-01T10:00:00+01:00" means what it says.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

struct Target {
  std::string path;                    // undecoded, without the query
  std::vector<std::string> segments;   // decoded, between '/'
  std::map<std::string, std::string> query;  // decoded; the last of repeated keys wins
};

std::optional<Target> parse_target(std::string_view target) {
  Target t;
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (path.empty() || path[0] != '/') return std::nullopt;
  t.path = std::string(path);
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view seg = path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    auto decoded = percent_decode(seg);
    if (!decoded) return std::nullopt;
    t.segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      if (!pair.empty()) {
        size_t eq = pair.find('=');
        auto k = percent_decode(pair.substr(0, eq));
        auto v = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
        if (!k || !v) return std::nullopt;
        t.query[*k] = std::move(*v);
      }
      if (amp == std::string_view::npos) break;
      query = query.substr(amp + 1);
    }
  }
  return t;
}

// Deepest nesting of arrays and objects in a JSON text (strings skipped).
// Checked before parsing: a body of a million '[' would otherwise become a
// value that later recursive code (dump, schema checks) walks off the stack.
size_t json_depth(std::string_view s) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      deepest = std::max(deepest, ++depth);
    else if ((c == ']' || c == '}') && depth > 0)
      --depth;
  }
  return deepest;
}

constexpr size_t kMaxJsonDepth = 64;

std::string header_value(const ApiRequest& req, http::field f) {
  auto it = req.find(f);
  return it == req.end() ? std::string() : std::string(it->value());
}

std::string header_value(const ApiRequest& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The versions of def's workflow worth showing: the loaded one (def) always,
// and every other definition that unfinished sagas are still pinned to, since
// they run it to the end. Newest version first; on a tie (an edit that kept
// the version) the loaded one first. `pinned` is as
// Engine::unfinished_by_definition() gives it.
Json versions_json(const Definition& def, const Json& pinned) {
  Json versions = Json::array();
  int64_t loaded_unfinished = 0;
  for (const Json& p : pinned.at("definitions")) {
    if (p.at("workflow") != def.name) continue;
    if (p.at("hash") == def.hash) {
      loaded_unfinished = p.at("unfinished").get<int64_t>();
      continue;
    }
    versions.push_back({{"version", p.at("version")}, {"hash", p.at("hash")}, {"loaded", false},
                        {"unfinished", p.at("unfinished")}});
  }
  versions.push_back({{"version", def.version}, {"hash", def.hash}, {"loaded", true}, {"unfinished", loaded_unfinished}});
  std::stable_sort(versions.begin(), versions.end(), [](const Json& a, const Json& b) {
    const int64_t va = a.at("version").get<int64_t>(), vb = b.at("version").get<int64_t>();
    if (va != vb) return va > vb;
    return a.at("loaded").get<bool>() && !b.at("loaded").get<bool>();
  });
  return versions;
}

Json workflow_json(const Definition& def, const Json& pinned) {
  Json steps = Json::array();
  for (const Step& s : def.steps) {
    Json comp = nullptr;
    if (s.compensate) comp = s.compensate->service + "." + s.compensate->operation;
    steps.push_back({{"name", s.name},
                     {"type", step_type_name(s.type)},
                     {"call", s.action.service + "." + s.action.operation},
                     {"compensate", std::move(comp)}});
  }
  Json redact = Json::array();
  for (const Redaction& r : def.redact) redact.push_back(r.pointer);
  return {{"name", def.name},
          {"version", def.version},
          {"description", def.description},
          {"hash", def.hash},
          {"pivot", def.pivot ? Json(def.steps[*def.pivot].name) : Json(nullptr)},
          {"steps", std::move(steps)},
          {"input", def.input_schema ? *def.input_schema : Json(nullptr)},
          {"redact", redact},
          {"versions", versions_json(def, pinned)}};
}

// The 422 of a start whose input breaks the workflow's schema: the detail
// names every violation ("/amount: must be >= 1", the root as "/"), and
// `errors` lists them with their JSON pointers, as the engine found them.
std::pair<std::string, std::vector<ProblemError>> schema_problem(const std::string& workflow, const Status& st) {
  std::string detail = "the input does not match the schema of \"" + workflow + "\": ";
  std::vector<ProblemError> errors;
  for (const Violation& v : st.violations()) {
    if (!errors.empty()) detail += "; ";
    detail += (v.pointer.empty() ? "/" : v.pointer) + ": " + v.message;
    errors.push_back({v.pointer, v.message});
  }
  if (errors.empty()) detail = st.message();
  return {std::move(detail), std::move(errors)};
}

}  // namespace

// ---- the handler ------------------------------------------------------------

struct ApiHandler::Impl : std::enable_shared_from_this<ApiHandler::Impl> {
  Impl(Engine& e, ApiMetrics* m, const ApiHandlerOptions& o)
      : engine(e), metrics(m), options(o), pool(std::max(1u, o.worker_threads)) {}

  Engine& engine;
  ApiMetrics* metrics;
  const ApiHandlerOptions options;

  // Set by drain(); shared with start callbacks, which may outlive the handler.
  std::shared_ptr<std::atomic<bool>> draining = std::make_shared<std::atomic<bool>>(false);

  // Guards `stopped` so that no job is posted once shutdown() joins the pool.
  std::mutex pool_mu;
  bool stopped = false;
  asio::thread_pool pool;

  // One request in progress.
  struct Ctx {
    Respond respond;
    OpenStream open_stream;  // empty: the caller cannot stream
    std::string instance;  // the path, for problem details
    std::string actor;     // who acts (operator_action.h), recorded by an action
    bool read_only = false;  // authenticated with the read-only token
    void ok(unsigned status, const Json& body) const { respond(json_response(status, body)); }
    void fail(ProblemKind kind, std::string_view detail, const std::vector<ProblemError>& errors = {}) const {
      if (problem_status(kind) >= 500) spdlog::error("api: {}: {}", instance, detail);
      respond(problem_response(kind, detail, instance, errors));
    }
    void fail(const Status& st, ProblemKind not_found) const { fail(problem_kind_of(st, not_found), st.message()); }
  };

  // Runs `job` on the worker pool, or answers 503 once the handler is shut down.
  void on_worker(std::shared_ptr<Ctx> ctx, std::function<void(const Ctx&)> job) {
    std::lock_guard lock(pool_mu);
    if (stopped) return ctx->fail(ProblemKind::kUnavailable, "the server is shutting down");
    asio::post(pool, [ctx = std::move(ctx), job = std::move(job)] {
      try {
        job(*ctx);
      } catch (const std::exception& e) {
        ctx->fail(ProblemKind::kInternal, e.what());
      }
    });
  }

  // Runs `job` on the worker pool; false once the handler is shut down.
  bool post_job(std::function<void()> job) {
    std::lock_guard lock(pool_mu);
    if (stopped) return false;
    asio::post(pool, std::move(job));
    return true;
  }

  // The request body as a JSON object ({} when empty); answers 400 and
  // returns nullopt when it is not one. `what` names it in the message.
  static std::optional<Json> json_object_body(const ApiRequest& req, const Ctx& ctx, const char* what);

  void route(const ApiRequest& req, Target& t, std::shared_ptr<Ctx> ctx);
  void start(const ApiRequest& req, const Target& t, const std::string& workflow, std::shared_ptr<Ctx> ctx);
  void list(const Target& t, std::shared_ptr<Ctx> ctx);
  void get(const Target& t, const std::string& id, std::shared_ptr<Ctx> ctx);

  // ---- the event feed ----
  using Deadline = std::chrono::steady_clock::time_point;
  void feed(const Target& t, std::shared_ptr<Ctx> ctx);
  // Reads a page after q.after; answers it when it holds events, the
  // deadline passed or the server drains, else waits for the feed to move.
  void read_feed(std::shared_ptr<Ctx> ctx, FeedQuery q, Deadline deadline);
  void feed_stream(const ApiRequest& req, const Target& t, std::shared_ptr<Ctx> ctx);
  struct StreamState;
  // The next piece of a stream: its next events, or a comment when none
  // came for a while (so a dead client is found out), or the end.
  void next_piece(std::shared_ptr<StreamState> state, Deliver deliver, Deadline deadline);
  // Engine::on_feed_moved, holding this handler weakly: `again` runs on a
  // worker if the handler is still there, `gone` otherwise.
  void when_feed_moves(uint64_t mark, Deadline deadline, std::function<void()> again, std::function<void()> gone);
};

ApiHandler::ApiHandler(Engine& engine, ApiMetrics* metrics, ApiHandlerOptions options)
    : options_(std::move(options)) {
  impl_ = std::make_shared<Impl>(engine, metrics, options_);
}

ApiHandler::~ApiHandler() { shutdown(); }

void ApiHandler::drain() { impl_->draining->store(true); }

void ApiHandler::shutdown() {
  {
    std::lock_guard lock(impl_->pool_mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->pool.join();
}

void ApiHandler::handle(ApiRequest request, Respond respond, OpenStream open_stream) {
  auto ctx = std::make_shared<Impl::Ctx>();
  if (open_stream) {
    // A stream is counted when it opens, with its head's status.
    auto count = observe_request(impl_->metrics, request, [](ApiResponse) {});
    ctx->open_stream = [count = std::move(count), open = std::move(open_stream)](Stream s) {
      count(s.head);
      open(std::move(s));
    };
  }
  ctx->respond = observe_request(impl_->metrics, request, std::move(respond));  // counted and, if refused, logged
  try {
    auto target = parse_target(request.target());
    if (!target) {
      return ctx->fail(ProblemKind::kBadRequest, "the request target \"" + std::string(request.target()) +
                                                     "\" is not a valid path (bad percent-encoding?)");
    }
    ctx->instance = target->path;
    // The console's files hold no data (the page asks the API, with the
    // token, for all it shows), so they answer without one, like /healthz.
    if (is_console_path(target->path)) return ctx->respond(console_response(request.method(), target->path));
    bool health = target->segments.size() == 1 && target->segments[0] == "healthz";
    ctx->actor = kAnonymousActor;
    if ((!options_.token.empty() || !options_.read_token.empty()) && !health) {
      std::string auth = header_value(request, http::field::authorization);
      std::string_view a = trim(auth);
      if (a.empty()) return ctx->fail(ProblemKind::kUnauthorized, "this server requires \"Authorization: Bearer <token>\"");
      std::string_view presented = a.size() >= 7 && iequals(a.substr(0, 7), "bearer ") ? trim(a.substr(7)) : "";
      // Both are compared, whichever matches, so the time taken does not say
      // which of the two tokens a guess was closer to.
      const bool full = !options_.token.empty() && token_matches(presented, options_.token);
      const bool read = !options_.read_token.empty() && token_matches(presented, options_.read_token);
      if (presented.empty() || (!full && !read))
        return ctx->fail(ProblemKind::kUnauthorized, "the bearer token is not valid");
      ctx->actor = token_actor(full ? options_.token : options_.read_token);
      ctx->read_only = !full;
      const http::verb m = request.method();
      if (ctx->read_only && m != http::verb::get && m != http::verb::head) {
        return ctx->fail(ProblemKind::kForbidden,
                         "the read-only token opens the GET routes and /metrics; actions need the API token");
      }
    }
    impl_->route(request, *target, ctx);
  } catch (const std::exception& e) {
    ctx->fail(ProblemKind::kInternal, e.what());
  }
}

void ApiHandler::Impl::route(const ApiRequest& req, Target& t, std::shared_ptr<Ctx> ctx) {
  const auto& seg = t.segments;
  const http::verb method = req.method();
  auto allow = [&](http::verb only) {
    if (method == only) return true;
    ApiResponse res = problem_response(ProblemKind::kMethodNotAllowed,
                                       std::string(req.method_string()) + " is not allowed on " + t.path + "; use " +
                                           std::string(http::to_string(only)),
                                       t.path);
    res.set(http::field::allow, http::to_string(only));
    ctx->respond(std::move(res));
    return false;
  };

  if (seg.size() == 1 && seg[0] == "healthz") {
    if (!allow(http::verb::get)) return;
    Json body = {{"status", "ok"}};
    // A stalled publication is reported, not failed: the sagas go on.
    if (auto p = engine.publication()) {
      body["publication"] = {{"name", p->name},
                             {"state", p->state},
                             {"position", p->position},
                             {"lag_events", p->lag_events},
                             {"lag_seconds", p->lag_seconds},
                             {"error", p->last_error.empty() ? Json(nullptr) : Json(p->last_error)}};
    }
    return ctx->ok(200, body);
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    if (!allow(http::verb::get)) return;
    return on_worker(std::move(ctx), [this](const Ctx& c) {
      std::string text = metrics ? metrics->render(engine) : ApiMetrics{}.render(engine);
      ApiResponse res{http::status::ok, 11};
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = std::move(text);
      res.prepare_payload();
      c.respond(std::move(res));
    });
  }
  if (seg.size() == 2 && seg[0] == "v1" && seg[1] == "stats") {
    if (!allow(http::verb::get)) return;
    return on_worker(std::move(ctx), [this](const Ctx& c) {
      auto r = engine.saga_counts();
      if (!r.is_ok()) return c.fail(r.status(), ProblemKind::kNotFound);
      c.ok(200, r.value());
    });
  }
  if (seg.size() == 2 && seg[0] == "v1" && seg[1] == "cluster") {
    if (!allow(http::verb::get)) return;
    return on_worker(std::move(ctx), [this](const Ctx& c) {
      auto r = engine.cluster();
      if (!r.is_ok()) return c.fail(r.status(), ProblemKind::kNotFound);
      c.ok(200, r.value());
    });
  }
  if (seg.size() == 2 && seg[0] == "v1" && seg[1] == "events") {
    if (!allow(http::verb::get)) return;
    return feed(t, std::move(ctx));
  }
  if (seg.size() == 3 && seg[0] == "v1" && seg[1] == "events" && seg[2] == "stream") {
    if (!allow(http::verb::get)) return;
    return feed_stream(req, t, std::move(ctx));
  }
  if (seg.size() >= 2 && seg[0] == "v1" && seg[1] == "workflows") {
    if (seg.size() == 2) {
      if (!allow(http::verb::get)) return;
      // The versions read the log, which may wait for the disk or the database.
      return on_worker(std::move(ctx), [this](const Ctx& c) {
        auto pinned = engine.unfinished_by_definition();
        if (!pinned.is_ok()) return c.fail(pinned.status(), ProblemKind::kNotFound);
        Json list = Json::array();
        for (const auto& def : engine.definitions()) list.push_back(workflow_json(*def, pinned.value()));
        c.ok(200, {{"workflows", std::move(list)}});
      });
    }
    if (seg.size() == 3 && !seg[2].empty()) {
      if (!allow(http::verb::get)) return;
      auto def = engine.definition(seg[2]);
      if (!def) return ctx->fail(ProblemKind::kWorkflowNotFound, "workflow \"" + seg[2] + "\" is not loaded");
      return on_worker(std::move(ctx), [this, def](const Ctx& c) {
        auto pinned = engine.unfinished_by_definition();
        if (!pinned.is_ok()) return c.fail(pinned.status(), ProblemKind::kNotFound);
        Json body = workflow_json(*def, pinned.value());
        body["source"] = def->source;
        c.ok(200, body);
      });
    }
    if (seg.size() == 4 && !seg[2].empty() && seg[3] == "sagas") {
      if (!allow(http::verb::post)) return;
      return start(req, t, seg[2], std::move(ctx));
    }
  }
  if (seg.size() >= 2 && seg[0] == "v1" && seg[1] == "sagas") {
    if (seg.size() == 2) {
      if (!allow(http::verb::get)) return;
      return list(t, std::move(ctx));
    }
    const std::string& id = seg[2];
    if (seg.size() == 3 && !id.empty()) {
      if (!allow(http::verb::get)) return;
      return get(t, id, std::move(ctx));
    }
    if (seg.size() == 4 && !id.empty() && seg[3] == "events") {
      if (!allow(http::verb::get)) return;
      return on_worker(std::move(ctx), [this, id](const Ctx& c) {
        auto r = engine.events(id);
        if (!r.is_ok()) return c.fail(r.status(), ProblemKind::kSagaNotFound);
        c.ok(200, r.value());
      });
    }
    if (seg.size() == 4 && !id.empty() && is_operator_action(seg[3])) {
      if (!allow(http::verb::post)) return;
      auto body = json_object_body(req, *ctx, "the action's note and arguments");
      if (!body) return;
      auto action = parse_operator_action(seg[3], *body, ctx->actor);
      if (!action.is_ok()) return ctx->fail(ProblemKind::kBadRequest, action.status().message());
      return on_worker(std::move(ctx), [this, id, action = std::move(action.value())](const Ctx& c) mutable {
        auto r = action.run(engine, id);
        if (!r.is_ok()) return c.fail(r.status(), ProblemKind::kSagaNotFound);
        c.ok(202, r.value());
      });
    }
  }
  ctx->fail(ProblemKind::kNotFound, "no route for " + t.path + " (see schemas/openapi.yaml)");
}

std::optional<Json> ApiHandler::Impl::json_object_body(const ApiRequest& req, const Ctx& ctx, const char* what) {
  const std::string& body = req.body();
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return Json::object();
  if (json_depth(body) > kMaxJsonDepth) {
    ctx.fail(ProblemKind::kBadJson, "the request body nests arrays/objects deeper than " + std::to_string(kMaxJsonDepth));
    return std::nullopt;
  }
  // The parser stops at a NUL as if the text ended there: JSON text holds no
  // raw NUL, so "{…}\0anything" is refused rather than read as "{…}".
  if (size_t nul = body.find('\0'); nul != std::string::npos) {
    ctx.fail(ProblemKind::kBadJson, "the request body is not valid JSON (at byte " + std::to_string(nul) +
                                        "): a NUL byte");
    return std::nullopt;
  }
  Json parsed;
  try {
    parsed = Json::parse(body);
  } catch (const Json::parse_error& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
    std::string text = e.what();
    if (size_t close = text.find("] "); close != std::string::npos) text = text.substr(close + 2);
    ctx.fail(ProblemKind::kBadJson, "the request body is not valid JSON (at byte " + std::to_string(e.byte) + "): " + text);
    return std::nullopt;
  } catch (const Json::exception& e) {
    // Valid syntax the parser still cannot hold, e.g. a number like 10e929
    // that overflows a double: the client's mistake, not a server error.
    std::string text = e.what();
    if (size_t close = text.find("] "); close != std::string::npos) text = text.substr(close + 2);
    ctx.fail(ProblemKind::kBadJson, "the request body cannot be read as JSON: " + text);
    return std::nullopt;
  }
  if (!parsed.is_object()) {
    ctx.fail(ProblemKind::kBadJson, std::string("the request body must be a JSON object (") + what + "), not " +
                                        parsed.type_name());
    return std::nullopt;
  }
  return parsed;
}

void ApiHandler::Impl::start(const ApiRequest& req, const Target& t, const std::string& workflow,
                             std::shared_ptr<Ctx> ctx) {
  if (!engine.definition(workflow))
    return ctx->fail(ProblemKind::kWorkflowNotFound, "workflow \"" + workflow + "\" is not loaded");

  Millis wait{0};
  if (auto it = t.query.find("wait"); it != t.query.end() && !it->second.empty()) {
    auto w = parse_wait(it->second);
    if (!w) {
      return ctx->fail(ProblemKind::kBadRequest,
                       "wait=\"" + it->second + "\" is not a duration; use e.g. 250ms, 10s or 1m (at most " +
                           std::to_string(options.max_wait.count() / 1000) + "s)");
    }
    wait = std::min(*w, options.max_wait);
  }

  // An empty body starts the saga with {}: a workflow without input needs none.
  auto input = Impl::json_object_body(req, *ctx, "the saga's input");
  if (!input) return;

  // Carried to every step and stored: text a service and an operator can
  // read, so one line of valid UTF-8 (docs/semantics.md).
  for (const char* name : {"Idempotency-Key", "X-Correlation-Id"}) {
    std::string value = header_value(req, name);
    bool control = std::any_of(value.begin(), value.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return u < 0x20 || u == 0x7F;
    });
    if (!is_valid_utf8(value) || control)
      return ctx->fail(ProblemKind::kBadRequest,
                       std::string("the ") + name + " header must be UTF-8 text without control characters");
  }

  StartRequest sr;
  sr.workflow = workflow;
  sr.input = std::move(*input);
  sr.idempotency_key = header_value(req, "Idempotency-Key");
  sr.correlation_id = header_value(req, "X-Correlation-Id");
  // Forwarded to every step: only a well-formed W3C trace context, else dropped.
  if (std::string tp = header_value(req, "traceparent"); is_w3c_traceparent(tp)) sr.traceparent = std::move(tp);
  // Runs on the engine thread. It captures the engine, not the handler: the
  // engine outlives its own callbacks, the handler may not.
  Engine& e = engine;
  engine.start_async(std::move(sr), [&e, ctx, wait, workflow, draining = draining](Result<StartResponse> r) {
    if (!r.is_ok()) {
      const Status& st = r.status();
      if (st.code() == StatusCode::kInvalidArgument) {
        auto [detail, errors] = schema_problem(workflow, st);
        return ctx->fail(ProblemKind::kSchemaViolation, detail, errors);
      }
      // The engine refuses starts before resume() with kFailedPrecondition:
      // to a client that is "not ready yet", not a conflict.
      if (st.code() == StatusCode::kFailedPrecondition) return ctx->fail(ProblemKind::kUnavailable, st.message());
      return ctx->fail(st, ProblemKind::kWorkflowNotFound);
    }
    unsigned status = r->created ? 201 : 200;
    std::string location = "/v1/sagas/" + r->id;
    auto reply = [ctx, status, location, draining](const Json& saga) {
      // A wait cut short by a shutdown: the saga is durable and goes on
      // when the server is back; the client gets its id either way.
      const std::string st = saga.is_object() ? saga.value("status", "") : "";
      const bool settled = st == "completed" || st == "compensated" || st == "stuck" || st == "terminated";
      ApiResponse res = json_response(draining->load() && !settled ? 202 : status, saga);
      res.set(http::field::location, location);
      ctx->respond(std::move(res));
    };
    if (wait.count() <= 0) return reply(r->saga);
    e.on_settled(r->id, wait, [reply, fallback = std::move(r->saga)](Json saga) {
      reply(saga.is_null() ? fallback : saga);
    });
  });
}

void ApiHandler::Impl::list(const Target& t, std::shared_ptr<Ctx> ctx) {
  auto filter = parse_list_query(t.query);  // list_query.h
  if (!filter.is_ok()) return ctx->fail(ProblemKind::kBadRequest, filter.status().message());
  on_worker(std::move(ctx), [this, filter = std::move(filter.value())](const Ctx& c) {
    auto r = engine.list(filter);
    if (!r.is_ok()) return c.fail(r.status(), ProblemKind::kNotFound);
    c.ok(200, r.value());
  });
}

void ApiHandler::Impl::get(const Target& t, const std::string& id, std::shared_ptr<Ctx> ctx) {
  auto at_it = t.query.find("at");
  if (at_it == t.query.end() || at_it->second.empty()) {
    return on_worker(std::move(ctx), [this, id](const Ctx& c) {
      auto r = engine.get(id);
      if (!r.is_ok()) return c.fail(r.status(), ProblemKind::kSagaNotFound);
      c.ok(200, r.value());
    });
  }
  auto at = parse_time(at_it->second);
  if (!at)
    return ctx->fail(ProblemKind::kBadRequest,
                     "at=\"" + at_it->second + "\" is not an RFC 3339 time, e.g. 2026-11-21T05:25:00Z");
  // Times are shown with milliseconds, and an event's own time has
  // microseconds: a time written to the millisecond (or coarser) means the
  // end of that millisecond, so the occurred_at of an event includes it.
  {
    const std::string& text = at_it->second;
    size_t dot = text.find('.');
    size_t digits = 0;
    while (dot != std::string::npos && dot + 1 + digits < text.size() && std::isdigit(static_cast<unsigned char>(text[dot + 1 + digits])))
      ++digits;
    if (digits <= 3) *at += 999;
  }
  on_worker(std::move(ctx), [this, id, at = *at](const Ctx& c) {
    auto r = engine.get_at(id, at);
    if (!r.is_ok()) return c.fail(r.status(), ProblemKind::kSagaNotFound);
    c.ok(200, r.value());
  });
}

// ---- the event feed ----------------------------------------------------------

void ApiHandler::Impl::when_feed_moves(uint64_t mark, Deadline deadline, std::function<void()> again,
                                       std::function<void()> gone) {
  const auto left = std::chrono::ceil<Millis>(deadline - std::chrono::steady_clock::now());
  engine.on_feed_moved(mark, std::max(left, Millis{0}),
                       [weak = weak_from_this(), again = std::move(again), gone = std::move(gone)]() mutable {
                         auto self = weak.lock();
                         if (!self || !self->post_job(std::move(again))) gone();
                       });
}

void ApiHandler::Impl::feed(const Target& t, std::shared_ptr<Ctx> ctx) {
  auto q = parse_feed_query(t.query, options.max_wait, /*stream=*/false);
  if (!q.is_ok()) return ctx->fail(ProblemKind::kBadRequest, q.status().message());
  const Deadline deadline = std::chrono::steady_clock::now() + q->wait;
  read_feed(std::move(ctx), std::move(q.value()), deadline);
}

void ApiHandler::Impl::read_feed(std::shared_ptr<Ctx> ctx, FeedQuery q, Deadline deadline) {
  auto job = [this, ctx, q = std::move(q), deadline]() mutable {
    try {
      const uint64_t mark = engine.feed_mark();  // before the read: nothing committed after it is missed
      auto page = engine.feed(q.after, q.limit);
      if (!page.is_ok()) return ctx->fail(page.status(), ProblemKind::kNotFound);
      if (!page.value()["events"].empty() || std::chrono::steady_clock::now() >= deadline || draining->load())
        return ctx->ok(200, page.value());
      when_feed_moves(
          mark, deadline, [this, ctx, q, deadline]() mutable { read_feed(ctx, std::move(q), deadline); },
          [ctx] { ctx->fail(ProblemKind::kUnavailable, "the server is shutting down"); });
    } catch (const std::exception& e) {
      ctx->fail(ProblemKind::kInternal, e.what());
    }
  };
  if (!post_job(std::move(job))) ctx->fail(ProblemKind::kUnavailable, "the server is shutting down");
}

namespace {

// How long a stream stays silent at most: then a comment line goes out, so a
// client (or a proxy) sees the stream alive and a client gone is found out.
constexpr Millis kStreamHeartbeat{15'000};
constexpr size_t kStreamPage = 100;

// One event as Server-Sent Events frame it: `id:` is its cursor, which a
// reconnecting EventSource sends back as Last-Event-ID. Event JSON is one
// line (strings escape their line breaks), so one `data:` line holds it.
void append_sse_event(std::string& out, const Json& event) {
  out += "id: ";
  out += event.value("cursor", "");
  out += "\ndata: ";
  out += dump_json(event);
  out += "\n\n";
}

}  // namespace

struct ApiHandler::Impl::StreamState {
  std::string after;  // the cursor of the last event sent
  std::string first;  // the first piece, read before the stream opened
};

void ApiHandler::Impl::feed_stream(const ApiRequest& req, const Target& t, std::shared_ptr<Ctx> ctx) {
  auto q = parse_feed_query(t.query, options.max_wait, /*stream=*/true);
  if (!q.is_ok()) return ctx->fail(ProblemKind::kBadRequest, q.status().message());
  if (std::string last = header_value(req, "Last-Event-ID"); !trim(last).empty()) q->after = std::string(trim(last));
  if (!ctx->open_stream)
    return ctx->fail(ProblemKind::kUnavailable, "this server cannot stream; read GET /v1/events instead");
  // The first page is read before the stream opens, so a bad cursor is a
  // 400 rather than a stream that ends at once.
  on_worker(ctx, [this, ctx, after = q->after](const Ctx&) {
    auto page = engine.feed(after, kStreamPage);
    if (!page.is_ok()) return ctx->fail(page.status(), ProblemKind::kNotFound);
    auto state = std::make_shared<StreamState>();
    state->after = page.value()["next"].get<std::string>();
    // A reconnecting client waits a second before it tries again.
    state->first = "retry: 1000\n\n";
    for (const Json& e : page.value()["events"]) append_sse_event(state->first, e);

    Stream stream{ApiResponse{http::status::ok, 11}, {}};
    stream.head.set(http::field::content_type, "text/event-stream; charset=utf-8");
    stream.head.set(http::field::cache_control, "no-cache");
    stream.head.set("X-Accel-Buffering", "no");  // nginx and the like: pass each event on at once
    std::weak_ptr<Impl> weak = weak_from_this();
    stream.next = [weak, state](Deliver deliver) {
      if (!state->first.empty()) return deliver(std::exchange(state->first, std::string()));
      auto self = weak.lock();
      if (!self) return deliver(std::nullopt);
      self->next_piece(state, std::move(deliver), std::chrono::steady_clock::now() + kStreamHeartbeat);
    };
    ctx->open_stream(std::move(stream));
  });
}

void ApiHandler::Impl::next_piece(std::shared_ptr<StreamState> state, Deliver deliver, Deadline deadline) {
  auto job = [this, state, deliver, deadline]() mutable {
    if (draining->load()) return deliver(std::nullopt);
    try {
      const uint64_t mark = engine.feed_mark();
      auto page = engine.feed(state->after, kStreamPage);
      if (!page.is_ok()) {
        spdlog::warn("api: event stream after {} ended: {}", state->after, page.status().message());
        return deliver(std::nullopt);
      }
      const Json& events = page.value()["events"];
      if (!events.empty()) {
        std::string text;
        for (const Json& e : events) append_sse_event(text, e);
        state->after = page.value()["next"].get<std::string>();
        return deliver(std::move(text));
      }
      if (std::chrono::steady_clock::now() >= deadline) return deliver(": keep-alive\n\n");
      when_feed_moves(
          mark, deadline, [this, state, deliver, deadline]() mutable { next_piece(state, std::move(deliver), deadline); },
          [deliver] { deliver(std::nullopt); });
    } catch (const std::exception& e) {
      spdlog::error("api: event stream: {}", e.what());
      deliver(std::nullopt);
    }
  };
  if (!post_job(std::move(job))) deliver(std::nullopt);
}

}  // namespace usher::api
