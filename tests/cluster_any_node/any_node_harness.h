// Two `usher serve` nodes, A and B, on one PostgreSQL database, for the tests
// of "any node answers" (docs/cluster.md, docs/cluster.md): a request
// for a saga A runs is sent to B. Built on the cluster fault tests' harness
// (tests/cluster/): its Node and Cluster run the real binary, its read_log()
// reads who wrote each event under which fence.
//
// The step service is a SwitchService, so a test can hold a call in flight
// or refuse a compensation (and get a saga `stuck`) at the moment it needs.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "cluster/cluster_checks.h"
#include "cluster_any_node/switch_service.h"

namespace usher::any_node {

using namespace usher::cluster;  // Cluster, Node, read_log, query_*, eventually, json…

// The booking of these tests, every call to `service`:
//   reserve  svc.hold    (compensate: svc.release)
//   pay      svc.charge  (compensate: svc.refund)
//   confirm  svc.issue   pivot
//   notify   svc.send    retriable
// A call waits up to 10 s for its answer, so a call the service holds a few
// seconds is still in flight; a refusal (422) is final, so a refused release
// makes the saga `stuck` at once.
inline void write_switch_workflow(const TempDir& dir, const SwitchService& service) {
  std::string y;
  y += "saga: any-booking\nversion: 1\ndescription: any node answers\n";
  y += "services:\n  svc: { http: { url: \"URL\" } }\n";
  y += "timeout: 10m\n";
  y += "defaults:\n  timeout: 10s\n";
  y += "  retry: { attempts: 3, backoff: 50ms, multiplier: 2, max_backoff: 200ms }\n";
  y += "  compensation_retry: { attempts: 3, backoff: 50ms, multiplier: 2, max_backoff: 200ms }\n";
  y += "steps:\n";
  y += "  - name: reserve\n    call: svc.hold\n    with: { saga: \"${saga.id}\", seat: \"${input.seat}\" }\n";
  y += "    compensate: { call: svc.release, with: { saga: \"${saga.id}\" } }\n";
  y += "  - name: pay\n    call: svc.charge\n    with: { saga: \"${saga.id}\" }\n";
  y += "    compensate: { call: svc.refund, with: { saga: \"${saga.id}\" } }\n";
  y += "  - name: confirm\n    type: pivot\n    call: svc.issue\n    with: { saga: \"${saga.id}\" }\n";
  y += "  - name: notify\n    type: retriable\n    call: svc.send\n    with: { saga: \"${saga.id}\" }\n";
  write_yaml(dir, "any-booking", y, service.url());
}

inline json seat(int n) { return {{"seat", "B" + std::to_string(n)}}; }

// POST a start of `workflow` to the node on `port`.
inline HttpReply start_on(uint16_t port, const json& input, const std::string& key = "", const std::string& wait = "",
                          const std::string& workflow = "any-booking") {
  std::string target = "/v1/workflows/" + workflow + "/sagas";
  if (!wait.empty()) target += "?wait=" + wait;
  std::map<std::string, std::string> headers;
  if (!key.empty()) headers["Idempotency-Key"] = key;
  return usher::test::request(port, http::verb::post, target, input.dump(), headers, 30s);
}

// POST /v1/sagas/{id}/{action} to the node on `port`.
inline HttpReply act_on(uint16_t port, const std::string& id, const std::string& action, const json& body = nullptr) {
  return usher::test::request(port, http::verb::post, "/v1/sagas/" + id + "/" + action,
                              body.is_null() ? std::string() : body.dump(), {}, 15s);
}

// The saga id an answer carries, "" when it carries none.
inline std::string id_of(const HttpReply& r) {
  const json doc = r.json();
  return doc.is_object() && doc.contains("id") && doc["id"].is_string() ? doc["id"].get<std::string>() : "";
}

inline std::string status_of(const std::string& database, const std::string& id) {
  return PgCluster::shared().query(database, "SELECT status FROM sagas WHERE id = '" + id + "'");
}

// Waits until the saga's row says `status`; false after `limit`.
inline bool reaches(const std::string& database, const std::string& id, const std::string& status,
                    std::chrono::milliseconds limit = 20s) {
  return eventually([&] { return status_of(database, id) == status; }, limit);
}

// The saga was moved from node `from` to node `to` once: it is owned by `to`
// under fence 2; `from` wrote fence 1 only, `to` fence 2 only, and no event
// of `from` comes after the first of `to` along seq.
inline void check_moved(const LoggedSaga& saga, int64_t from, int64_t to) {
  CHECK_MESSAGE(saga.owner == to, "owner " << saga.owner << ", wanted node " << to << "\n" << describe(saga));
  CHECK_MESSAGE(saga.fence == 2, "fence " << saga.fence << ", wanted 2\n" << describe(saga));
  bool to_wrote = false;
  for (const LoggedEvent& e : saga.events) {
    if (e.node == to) {
      to_wrote = true;
      CHECK_MESSAGE(e.fence == 2, "node " << to << " wrote under fence " << e.fence << ": " << describe(e) << "\n"
                                          << describe(saga));
    } else if (e.node == from) {
      CHECK_MESSAGE(e.fence == 1, "node " << from << " wrote under fence " << e.fence << ": " << describe(e) << "\n"
                                          << describe(saga));
      CHECK_MESSAGE(!to_wrote, "node " << from << " wrote after node " << to << "'s claim: " << describe(e) << "\n"
                                       << describe(saga));
    } else {
      FAIL_CHECK("an event by neither node: " << describe(e) << "\n" << describe(saga));
    }
  }
  CHECK_MESSAGE(to_wrote, "node " << to << " wrote nothing\n" << describe(saga));
}

// The calls for saga `id` that node `node` sent after `since` (wall ms).
inline std::vector<SwitchService::Call> calls_after(const SwitchService& service, const std::string& id, int64_t node,
                                                    double since) {
  std::vector<SwitchService::Call> out;
  for (const auto& c : service.calls())
    if (c.saga == id && c.node == std::to_string(node) && wall_ms(c.at) > since) out.push_back(c);
  return out;
}

inline std::string describe(const std::vector<SwitchService::Call>& calls) {
  std::string out;
  for (const auto& c : calls)
    out += "\n  " + c.operation + " " + c.key + " attempt " + std::to_string(c.attempt) + " from node '" + c.node +
           "' → " + std::to_string(c.status);
  return out;
}

}  // namespace usher::any_node
