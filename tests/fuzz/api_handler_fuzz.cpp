// Fuzz target: the trigger API's request handler (adapters/http/api/api_handler.h)
// against a real Engine on a temporary SQLite file with in-process handlers,
// without a socket. The input is a request in the shape of HTTP/1.1:
//
//   POST /v1/workflows/booking/sagas?wait=10ms
//   Authorization: Bearer fuzz-token
//   Idempotency-Key: k1
//
//   {"seat": "A1", "amount": 10}
//
// The first line is the method and the target, then header lines up to an
// empty line, then the body. Bytes Beast's parser would never hand the
// handler (controls in a target, a CR in a header value, a method that is not
// a token) are dropped, so every input becomes a request the server could
// really pass on. The handler must answer each exactly once, with a status
// it documents, and never crash.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "http/api/api_handler.h"
#include "support/api_workflows.h"
#include "usher/engine.h"

namespace {

namespace http = boost::beast::http;

constexpr const char* kToken = "fuzz-token";

// One engine and handler for the whole run: opening SQLite per input would
// make the fuzzer measure file creation. Sagas from earlier inputs stay in
// the log, so later inputs also meet existing ids and idempotency keys.
struct Fixture {
  std::filesystem::path dir;
  std::unique_ptr<usher::Engine> engine;
  std::unique_ptr<usher::api::ApiHandler> handler;

  Fixture() {
    std::random_device rd;
    dir = std::filesystem::temp_directory_path() /
          ("usher-fuzz-api-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
    usher::EngineOptions options;
    options.db_path = (dir / "usher.db").string();
    // NORMAL: a fuzzer does not need power-loss safety, and an fsync per start
    // would make it a disk benchmark.
    options.durability = usher::Durability::kNormal;
    options.seed = 1;
    auto opened = usher::Engine::open(options);
    if (!opened.is_ok()) fail(opened.status().to_string());
    engine = std::move(opened.value());
    for (const char* yaml : {usher::test::kApiBookingYaml.c_str(), usher::test::kApiSlowYaml, usher::test::kApiFragileYaml}) {
      auto loaded = usher::load_definition(yaml, "fuzz.yaml");
      if (!loaded.ok()) fail(loaded.diagnostics.front().to_string());
      if (auto s = engine->load(loaded.definition); !s.is_ok()) fail(s.to_string());
    }
    // Fragile's compensation always jams, so stuck sagas keep turning up to retry.
    usher::test::register_api_handlers(*engine, usher::test::Jammed::kAlways);
    if (auto s = engine->resume(); !s.is_ok()) fail(s.to_string());
    usher::api::ApiHandlerOptions ho;
    ho.token = kToken;
    // Short, so a ?wait on a saga that keeps running costs milliseconds.
    ho.max_wait = usher::Millis{20};
    ho.worker_threads = 1;
    handler = std::make_unique<usher::api::ApiHandler>(*engine, nullptr, ho);
  }

  ~Fixture() {
    handler->shutdown();
    engine->shutdown();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  [[noreturn]] static void fail(const std::string& why) {
    std::fprintf(stderr, "api_handler_fuzz: setup failed: %s\n", why.c_str());
    std::abort();
  }
};

Fixture* fixture = nullptr;

void tear_down() {
  delete fixture;
  fixture = nullptr;
}

Fixture& the_fixture() {
  if (!fixture) {
    // Quiet (a fuzzer makes sagas fail on purpose) and created before the
    // fixture, so spdlog outlives the engine's last log line at exit.
    spdlog::set_level(spdlog::level::off);
    fixture = new Fixture();
    // atexit rather than a static: it runs before the destructors of statics
    // created earlier (spdlog's registry), which the engine's shutdown uses.
    std::atexit(tear_down);
  }
  return *fixture;
}

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string keep_if(std::string_view s, bool (*ok)(unsigned char), size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() == max) break;
    if (ok(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

// What Beast's parser lets through in a request target and a field value.
bool is_target_char(unsigned char c) { return c > 0x20 && c != 0x7f; }
bool is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

// Cuts the next line (without its '\n' or "\r\n") off the front of `rest`.
std::string_view next_line(std::string_view& rest) {
  size_t nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

usher::api::ApiRequest request_of(std::string_view input) {
  std::string_view rest = input;
  std::string_view first = next_line(rest);
  size_t space = first.find(' ');
  std::string method = keep_if(first.substr(0, space), is_tchar, 32);
  std::string target =
      keep_if(space == std::string_view::npos ? std::string_view("/") : first.substr(space + 1), is_target_char, 8192);
  if (method.empty()) method = "GET";
  if (target.empty()) target = "/";

  usher::api::ApiRequest req;
  req.version(11);
  req.method_string(method);
  req.target(target);
  while (!rest.empty()) {
    std::string_view line = next_line(rest);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = keep_if(line.substr(0, colon), is_tchar, 64);
    if (name.empty()) continue;
    std::string value = keep_if(line.substr(colon + 1), is_value_char, 4096);
    // Beast's parser strips the whitespace around a value.
    size_t begin = value.find_first_not_of(" \t");
    size_t end = value.find_last_not_of(" \t");
    value = begin == std::string::npos ? std::string() : value.substr(begin, end - begin + 1);
    req.insert(name, value);
  }
  req.body() = std::string(rest);
  // The parser guarantees Content-Length matches the body it read.
  if (!req.body().empty() || req.count(http::field::content_length)) req.content_length(req.body().size());
  req.erase(http::field::transfer_encoding);
  return req;
}

// The statuses docs/api.md and schemas/openapi.yaml give (302: `/` and `/ui`
// redirect to the web console).
bool documented(unsigned status) {
  switch (status) {
    case 200: case 201: case 202: case 302: case 400: case 401: case 404: case 405:
    case 409: case 413: case 422: case 431: case 500: case 503:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = the_fixture();
  auto req = request_of(std::string_view(reinterpret_cast<const char*>(data), size));
  auto answered = std::make_shared<std::promise<usher::api::ApiResponse>>();
  auto response = answered->get_future();
  f.handler->handle(std::move(req), [answered](usher::api::ApiResponse r) { answered->set_value(std::move(r)); });
  // A request that never gets an answer hangs its connection until the
  // server's deadline: as much a bug here as a crash. set_value twice would
  // throw, so "exactly once" is checked too.
  if (response.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    std::fprintf(stderr, "api_handler_fuzz: no response within 30 s\n");
    std::abort();
  }
  usher::api::ApiResponse r = response.get();
  // USHER_FUZZ_TRACE=1 shows what each input was answered, to check that the
  // seeds reach the routes they are meant for.
  static const bool trace = std::getenv("USHER_FUZZ_TRACE") != nullptr;
  if (trace) std::fprintf(stderr, "  -> %u %.200s\n", r.result_int(), r.body().c_str());
  if (!documented(r.result_int())) {
    std::fprintf(stderr, "api_handler_fuzz: undocumented status %u\n", r.result_int());
    std::abort();
  }
  // A 500 is how the handler reports its own bugs; the fuzzer should hear of it.
  if (r.result_int() == 500) {
    std::fprintf(stderr, "api_handler_fuzz: 500: %s\n", r.body().c_str());
    std::abort();
  }
  return 0;
}
