// What must hold of a saga log that several nodes wrote through kills,
// pauses, partitions and stalled commits (docs/cluster.md and docs/reliability.md),
// checked against the log's tables and the step service's record of calls:
//   1. every acknowledged start reached completed or compensated, as its
//      input says, and no saga is left running;
//   2. each saga's events have seq 1..n, no gap, and commit in seq order
//      (feed positions grow along seq);
//   3. every event names its writer; exactly one node wrote under each
//      (saga, fence); fences never go down along seq;
//   4. compensations run in exact reverse order, each after the previous
//      one succeeded, and exactly the plan's steps are compensated;
//   5. no action reached its service after its success was committed;
//   6. one saga per idempotency key: every acknowledged start's key names
//      the saga it was answered with, and a key sent to two nodes at once got
//      one saga id.
// A failed check names the sagas, events, nodes and times involved.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/cluster_harness.h"

namespace usher::cluster {

struct LoggedEvent {
  int64_t seq = 0;
  std::string type, step, kind;  // kind: "action" / "compensate" / ""
  int64_t node = 0;              // 0: NULL, no writer recorded
  int64_t fence = 0;
  int64_t position = 0;
  double committed_ms = 0;  // pg_xact_commit_timestamp of the event's row
  json data;                // CompensationStarted only
};

struct LoggedSaga {
  std::string id, status, key;
  int64_t owner = 0, fence = 0;
  std::vector<LoggedEvent> events;  // in seq order
};

using Log = std::map<std::string, LoggedSaga>;

inline Log read_log(const std::string& database) {
  Log log;
  json sagas = query_json(database,
                          "SELECT json_agg(json_build_object('id', id, 'status', status, 'key', idempotency_key, "
                          "'owner', owner, 'fence', fence)) FROM sagas");
  if (sagas.is_array()) {
    for (const json& s : sagas) {
      LoggedSaga& l = log[s["id"].get<std::string>()];
      l.id = s["id"];
      l.status = s["status"];
      l.key = s["key"].is_string() ? s["key"].get<std::string>() : "";
      l.owner = s["owner"].is_number() ? s["owner"].get<int64_t>() : 0;
      l.fence = s["fence"].get<int64_t>();
    }
  }
  json events = query_json(
      database,
      "SELECT json_agg(json_build_object('s', saga_id, 'q', seq, 't', type, 'st', step, 'k', data->>'kind', "
      "'n', node, 'f', fence, 'p', position, "
      "'c', extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000, "
      "'d', CASE WHEN type = 'CompensationStarted' THEN data END) ORDER BY saga_id, seq) FROM saga_events");
  if (events.is_array()) {
    for (const json& e : events) {
      LoggedEvent l;
      l.seq = e["q"];
      l.type = e["t"];
      l.step = e["st"].is_string() ? e["st"].get<std::string>() : "";
      l.kind = e["k"].is_string() ? e["k"].get<std::string>() : "";
      l.node = e["n"].is_number() ? e["n"].get<int64_t>() : 0;
      l.fence = e["f"];
      l.position = e["p"].is_number() ? e["p"].get<int64_t>() : 0;
      l.committed_ms = e["c"].is_number() ? e["c"].get<double>() : 0;
      l.data = e["d"];
      log[e["s"].get<std::string>()].events.push_back(std::move(l));
    }
  }
  return log;
}

inline std::string describe(const LoggedEvent& e) {
  std::ostringstream out;
  out << "seq " << e.seq << " " << e.type;
  if (!e.step.empty()) out << " " << e.step << (e.kind.empty() ? "" : ":" + e.kind);
  out << " node " << e.node << " fence " << e.fence << " position " << e.position << " committed "
      << static_cast<int64_t>(e.committed_ms);
  return out.str();
}

inline std::string describe(const LoggedSaga& s) {
  std::string out = "saga " + s.id + " (" + s.status + ", owner " + std::to_string(s.owner) + ", fence " +
                    std::to_string(s.fence) + "):";
  for (const LoggedEvent& e : s.events) out += "\n    " + describe(e);
  return out;
}

// Violations by kind, each reported once with its first examples.
class Findings {
 public:
  void add(const std::string& kind, const std::string& what) {
    auto& list = found_[kind];
    if (list.size() < 8) list.push_back(what);
    ++counts_[kind];
  }
  size_t count(const std::string& kind) const {
    auto it = counts_.find(kind);
    return it == counts_.end() ? 0 : it->second;
  }
  // One CHECK per kind of rule, so a report lists every rule that failed.
  void check(const std::vector<std::string>& kinds) const {
    for (const std::string& kind : kinds) {
      std::string examples;
      if (auto it = found_.find(kind); it != found_.end())
        for (const std::string& w : it->second) examples += "\n  " + w;
      CHECK_MESSAGE(count(kind) == 0, count(kind) << " × " << kind << ":" << examples);
    }
  }

 private:
  std::map<std::string, std::vector<std::string>> found_;
  std::map<std::string, size_t> counts_;
};

inline long step_index(const std::string& step) {
  static const std::vector<std::string> steps = {"reserve", "parking", "pay", "confirm", "notify"};
  auto it = std::find(steps.begin(), steps.end(), step);
  return it == steps.end() ? -1 : static_cast<long>(it - steps.begin());
}

struct Totals {
  size_t sagas = 0, completed = 0, compensated = 0, events = 0, changed_hands = 0, calls = 0, replays = 0,
         unattributed_calls = 0;
  int64_t max_fence = 0;
};

inline std::string to_string(const Totals& t) {
  std::ostringstream out;
  out << t.sagas << " sagas (" << t.completed << " completed, " << t.compensated << " compensated), " << t.events
      << " events, " << t.changed_hands << " sagas changed hands (highest fence " << t.max_fence << "), " << t.calls
      << " calls to the services (" << t.replays << " sent again and answered as replays, " << t.unattributed_calls
      << " without X-Usher-Node)";
  return out.str();
}

// Checks rules 1–6 on the whole log; returns the totals for the test's note.
inline Totals check_cluster_log(const Log& log, const std::vector<Load::Started>& acked,
                                const std::vector<std::string>& conflicts,
                                const std::vector<RecordingService::Call>& calls) {
  Findings f;
  Totals t;
  std::map<std::string, std::vector<const RecordingService::Call*>> calls_by_key;
  for (const auto& c : calls) {
    calls_by_key[c.key].push_back(&c);
    ++t.calls;
    t.replays += c.replayed;
    t.unattributed_calls += c.node.empty();
  }

  // 1 and 6: the acknowledged starts.
  for (const Load::Started& s : acked) {
    auto it = log.find(s.id);
    if (it == log.end()) {
      f.add("acknowledged start not in the log", s.key + " → " + s.id);
      continue;
    }
    const std::string want = s.declined ? "compensated" : "completed";
    if (it->second.status != want) f.add("acknowledged saga not finished as its input says", s.key + ": " + describe(it->second) + "\n    wanted " + want);
    if (it->second.key != s.key) f.add("saga under another idempotency key", s.key + " answered " + s.id + ", whose key is " + it->second.key);
  }
  for (const std::string& c : conflicts) f.add("one key, two sagas", c);

  for (const auto& [id, saga] : log) {
    ++t.sagas;
    t.completed += saga.status == "completed";
    t.compensated += saga.status == "compensated";
    t.events += saga.events.size();
    if (saga.status != "completed" && saga.status != "compensated") f.add("saga not finished", describe(saga));

    // 2 and 3.
    std::map<int64_t, int64_t> writer_of_fence;
    int64_t fence = 0, position = 0, max_fence = 0;
    for (size_t i = 0; i < saga.events.size(); ++i) {
      const LoggedEvent& e = saga.events[i];
      if (e.seq != static_cast<int64_t>(i) + 1) {
        f.add("gap in seq", "at " + std::to_string(i + 1) + ": " + describe(saga));
        break;
      }
      if (e.node == 0) f.add("event without its writer", id + " " + describe(e));
      auto [w, fresh] = writer_of_fence.emplace(e.fence, e.node);
      if (!fresh && w->second != e.node)
        f.add("two writers under one fence", id + " fence " + std::to_string(e.fence) + ": nodes " +
                                                 std::to_string(w->second) + " and " + std::to_string(e.node) + "\n  " + describe(saga));
      if (e.fence < fence) f.add("fence went down along seq", id + " " + describe(e) + "\n  " + describe(saga));
      if (e.position <= position) f.add("committed out of seq order", id + " " + describe(e));
      if (e.committed_ms == 0) f.add("event without a commit time", id + " " + describe(e));
      fence = std::max(fence, e.fence);
      position = std::max(position, e.position);
      max_fence = std::max(max_fence, e.fence);
    }
    t.max_fence = std::max(t.max_fence, max_fence);
    t.changed_hands += writer_of_fence.size() > 1;

    // 4. The plan in CompensationStarted, the order of the compensations.
    std::string plan, done_order;
    long last_step = 5;
    bool previous_done = true;
    for (const LoggedEvent& e : saga.events) {
      if (e.type == "CompensationStarted" && e.data.is_object())
        for (const json& s : e.data.value("steps", json::array())) plan += (plan.empty() ? "" : ",") + s.get<std::string>();
      if (e.kind != "compensate") continue;
      const long step = step_index(e.step);
      if (e.type == "StepScheduled" && step != last_step) {
        if (step > last_step) f.add("compensation out of order", id + " " + describe(e) + "\n  " + describe(saga));
        if (!previous_done) f.add("compensation began before the previous one succeeded", id + " " + describe(e) + "\n  " + describe(saga));
        last_step = step;
        previous_done = false;
      }
      if (e.type == "StepSucceeded") {
        previous_done = true;
        done_order += (done_order.empty() ? "" : ",") + e.step;
      }
    }
    if (saga.status == "compensated") {
      if (plan != "parking,reserve" && plan != "pay,parking,reserve") f.add("unexpected compensation plan", id + " plan '" + plan + "'");
      if (done_order != plan) f.add("compensated steps are not the plan", id + " plan '" + plan + "', compensated '" + done_order + "'");
    } else if (!done_order.empty()) {
      f.add("compensated a saga that completed", describe(saga));
    }

    // 5. No action sent again after its success was committed.
    for (const LoggedEvent& e : saga.events) {
      if (e.type != "StepSucceeded" || e.kind != "action") continue;
      auto it = calls_by_key.find(id + ":" + e.step + ":action");
      if (it == calls_by_key.end()) {
        f.add("action logged as done but never sent", id + " " + describe(e));
        continue;
      }
      for (const auto* c : it->second) {
        const double late = wall_ms(c->at) - e.committed_ms;
        if (late > 0)
          f.add("action sent after its success was committed",
                c->key + " attempt " + std::to_string(c->attempt) + " from node '" + c->node + "' arrived " +
                    std::to_string(static_cast<int64_t>(late)) + " ms after " + describe(e));
      }
    }
  }

  f.check({"acknowledged start not in the log", "acknowledged saga not finished as its input says",
           "saga under another idempotency key", "one key, two sagas", "saga not finished", "gap in seq",
           "event without its writer", "two writers under one fence", "fence went down along seq",
           "committed out of seq order", "event without a commit time", "compensation out of order",
           "compensation began before the previous one succeeded", "unexpected compensation plan",
           "compensated steps are not the plan", "compensated a saga that completed",
           "action logged as done but never sent", "action sent after its success was committed"});
  return t;
}

// The feed position of the last event committed so far: an event committed
// later has a higher one (positions are taken under one row lock, in
// commit order).
inline int64_t feed_position(const std::string& database) {
  return query_int(database, "SELECT last_position FROM usher_feed_position");
}

// Node `id` lost its sagas to others: by `taken_ms` none was its any more,
// and `position` was the feed's position then. From that moment it must not
// have written an event (by commit time or position) nor sent a call (by its
// X-Usher-Node); returns how many calls it sent before.
inline size_t check_quiet_after_takeover(const Log& log, const std::vector<RecordingService::Call>& calls, int64_t id,
                                         double taken_ms, int64_t position) {
  Findings f;
  for (const auto& [saga_id, saga] : log)
    for (const LoggedEvent& e : saga.events)
      if (e.node == id && (e.position > position || e.committed_ms > taken_ms))
        f.add("event written by the old node after the take-over",
              saga_id + " " + describe(e) + " (take-over done at " + std::to_string(static_cast<int64_t>(taken_ms)) +
                  ", feed position " + std::to_string(position) + ")\n  " + describe(saga));
  size_t before = 0;
  const std::string node = std::to_string(id);
  for (const auto& c : calls) {
    if (c.node != node) continue;
    if (wall_ms(c.at) > taken_ms)
      f.add("call sent by the old node after the take-over",
            c.key + " attempt " + std::to_string(c.attempt) + " arrived " +
                std::to_string(static_cast<int64_t>(wall_ms(c.at) - taken_ms)) + " ms after the take-over");
    else
      ++before;
  }
  f.check({"event written by the old node after the take-over", "call sent by the old node after the take-over"});
  return before;
}

// Waits until no saga runs any more (every acknowledged one then finished);
// fails with what is left, and the nodes' `cluster:` lines, after `limit`.
inline void wait_settled(Cluster& cluster, std::chrono::milliseconds limit) {
  const bool settled = eventually([&] { return cluster.unsettled() == 0; }, limit);
  if (!settled) {
    json left = query_json(cluster.database(),
                           "SELECT json_agg(json_build_object('id', id, 'status', status, 'owner', owner, "
                           "'fence', fence, 'last_seq', last_seq)) FROM (SELECT * FROM sagas WHERE status IN "
                           "('running', 'compensating') LIMIT 10) AS s");
    json nodes = query_json(cluster.database(),
                            "SELECT json_agg(json_build_object('id', id, 'name', name, 'lease_until', lease_until, "
                            "'stopped_at', stopped_at, 'live', lease_until > clock_timestamp()) ORDER BY id) "
                            "FROM usher_nodes");
    FAIL_CHECK(cluster.unsettled() << " sagas still running after " << limit.count() << " ms, e.g. " << left.dump()
                                   << "\nnodes: " << nodes.dump() << "\n" << cluster.cluster_lines());
  }
}

}  // namespace usher::cluster
