// What a saga's input or a step's output can do to the requests usher sends
// (docs/semantics.md: "a value interpolated into `path` is percent-encoded
// as path-segment text … so no input or output can change the request line"),
// through the real `usher serve` and a real HTTP service.
#include <doctest/doctest.h>

#include "e2e_harness.h"
#include "scripted_service.h"

using namespace usher::e2e;

namespace {

// `reserve` holds a seat at a path built from the input; `confirm` reads the
// hold's id from its output into another path.
const char* const kPathWorkflow = R"(saga: paths
version: 1
services:
  shop: { http: { url: "URL" } }
defaults:
  timeout: 2s
  retry: { attempts: 1 }
steps:
  - name: reserve
    call: shop.hold
    http: { method: PUT, path: "/holds/${input.seat}" }
    with: { seat: "${input.seat}" }
  - name: confirm
    call: shop.confirm
    http: { method: POST, path: "/holds/${steps.reserve.output.holdId}/confirm" }
    with: {}
)";

}  // namespace

TEST_CASE("request smuggling through http.path is impossible: an input with CRLF and a second request reaches the "
          "service as one encoded path segment") {
  TempDir dir;
  ScriptedService shop;
  write_yaml(dir, "paths", kPathWorkflow, shop.url());
  const std::string attack = " HTTP/1.1\r\nHost: a\r\n\r\n{}POST /hold";
  const std::string encoded = "%20HTTP%2F1.1%0D%0AHost%3A%20a%0D%0A%0D%0A%7B%7DPOST%20%2Fhold";
  // The service's own output tries the same against the next step.
  shop.script("/holds/" + encoded, {Behaviour::reply(200, R"({"holdId":"../../admin?x=1#"})")});
  Server server(dir);

  auto r = server.start({{"seat", attack}}, "", "", "paths");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  json saga = server.settled(id, 10s);
  CHECK(saga["status"] == "completed");

  std::vector<Received> seen;
  for (const Received& q : shop.requests())
    if (q.saga_id == id) seen.push_back(q);
  REQUIRE(seen.size() == 2);  // one request per step: nothing smuggled in between
  CHECK(seen[0].method == "PUT");
  CHECK(seen[0].path == "/holds/" + encoded);
  CHECK(seen[1].path == "/holds/..%2F..%2Fadmin%3Fx%3D1%23/confirm");
  CHECK(shop.requests().size() == 2);  // and no request without a saga
}
