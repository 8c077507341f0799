// A real Engine on a temp SQLite file with in-process step handlers, and a
// way to call ApiHandler synchronously, for the trigger API tests.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <map>
#include <string>
#include <thread>

#include "http/api/api_handler.h"
#include "support/api_workflows.h"
#include "support/temp_dir.h"
#include "usher/engine.h"

namespace usher::test {

namespace http = boost::beast::http;

inline DefinitionPtr must_load(const std::string& yaml, const std::string& name) {
  LoadResult r = load_definition(yaml, name);
  for (const auto& d : r.diagnostics) MESSAGE(d.to_string());
  REQUIRE(r.ok());
  return r.definition;
}

struct ApiFixture {
  explicit ApiFixture(std::string token = "", std::string read_token = "") {
    EngineOptions options;
    options.db_path = dir.file("usher.db");
    options.on_transition = [this](const TransitionInfo& t) { metrics.observe(t); };
    auto opened = Engine::open(options);
    REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
    engine = std::move(opened.value());
    REQUIRE(engine->load(must_load(kApiBookingYaml, "booking.yaml")).is_ok());
    REQUIRE(engine->load(must_load(kApiSlowYaml, "slow.yaml")).is_ok());
    REQUIRE(engine->load(must_load(kApiFragileYaml, "fragile.yaml")).is_ok());
    register_api_handlers(*engine, Jammed::kOnce);
    REQUIRE(engine->resume().is_ok());
    api::ApiHandlerOptions ho;
    ho.token = std::move(token);
    ho.read_token = std::move(read_token);
    handler = std::make_unique<api::ApiHandler>(*engine, &metrics, ho);
  }
  ~ApiFixture() {
    handler->shutdown();
    engine->shutdown();
  }

  struct Reply {
    unsigned status = 0;
    std::string body;
    Json json;
    api::ApiResponse raw;
    std::string header(http::field f) const { return std::string(raw[f]); }
  };

  Reply call(http::verb method, const std::string& target, const std::string& body = "",
             const std::map<std::string, std::string>& headers = {}) {
    api::ApiRequest req{method, target, 11};
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    auto promise = std::make_shared<std::promise<api::ApiResponse>>();
    auto future = promise->get_future();
    handler->handle(std::move(req), [promise](api::ApiResponse r) { promise->set_value(std::move(r)); });
    REQUIRE_MESSAGE(future.wait_for(std::chrono::seconds(20)) == std::future_status::ready,
                    "no response to " << target);
    Reply r;
    r.raw = future.get();
    r.status = r.raw.result_int();
    r.body = r.raw.body();
    r.json = Json::parse(r.body, nullptr, false);
    return r;
  }
  Reply get(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    return call(http::verb::get, target, "", headers);
  }
  Reply post(const std::string& target, const std::string& body = "",
             const std::map<std::string, std::string>& headers = {}) {
    return call(http::verb::post, target, body, headers);
  }

  TempDir dir;
  api::ApiMetrics metrics;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<api::ApiHandler> handler;
};

}  // namespace usher::test
