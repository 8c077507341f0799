// ApiFixture behind a real ApiServer on 127.0.0.1 (port 0), for the tests
// that need the socket: the server's limits, streams.
#pragma once

#include "api_fixture.h"
#include "http/api/api_server.h"

namespace usher::test {

struct ServerFixture : ApiFixture {
  explicit ServerFixture(api::ApiServerOptions o = {}) {
    o.port = 0;
    auto started = api::ApiServer::start(*handler, o);
    REQUIRE_MESSAGE(started.is_ok(), started.status().to_string());
    server = std::move(started.value());
    port = server->port();
    REQUIRE(port != 0);
  }
  ~ServerFixture() {
    if (server) server->stop(Millis{0});
  }
  std::unique_ptr<api::ApiServer> server;
  uint16_t port = 0;
};

}  // namespace usher::test
