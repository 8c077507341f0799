// A reader of the event feed (GET /v1/events, docs/api.md) while several
// nodes write the log: a long poll continued from `next`, each request sent
// to the next live node in turn, so cursors given by one node are continued
// on another. A request cut off by a kill is asked again. stop() reads to
// the end of the feed; check() then holds what it got against the log: every
// event of every saga once, each saga's in seq order, in position order.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cluster/cluster_checks.h"

namespace usher::cluster {

class FeedFollower {
 public:
  explicit FeedFollower(Cluster& cluster) : cluster_(cluster), thread_([this] { run(); }) {}
  ~FeedFollower() { stop(); }

  // Reads to the end of the feed (every node must have settled), then stops.
  void stop() {
    catch_up_ = true;
    if (thread_.joinable()) thread_.join();
  }

  size_t events() const { return fed_.size(); }

  // Adds what does not hold to `f` under "feed: …" kinds.
  void check(const Log& log, Findings& f) const {
    std::map<std::string, std::vector<const json*>> by_saga;
    int64_t last = 0;
    for (const json& e : fed_) {
      const int64_t cursor = std::stoll(e["cursor"].get<std::string>());
      if (cursor <= last) f.add("feed: cursor out of order", std::to_string(cursor) + " after " + std::to_string(last));
      last = cursor;
      by_saga[e["saga_id"].get<std::string>()].push_back(&e);
    }
    for (const auto& [id, saga] : log) {
      const auto& seen = by_saga[id];
      std::vector<int64_t> seqs;
      for (const json* e : seen) seqs.push_back((*e)["seq"].get<int64_t>());
      std::vector<int64_t> logged;
      for (const LoggedEvent& e : saga.events) logged.push_back(e.seq);
      if (seqs != logged) {
        std::string got;
        for (int64_t s : seqs) got += " " + std::to_string(s);
        f.add("feed: events missing, repeated or out of seq order", id + ": the feed gave seq" + got + " of " +
                                                                        std::to_string(logged.size()) + " events");
      }
      for (size_t i = 0; i < std::min(seen.size(), saga.events.size()); ++i)
        if (std::stoll((*seen[i])["cursor"].get<std::string>()) != saga.events[i].position)
          f.add("feed: cursor is not the event's position", id + " seq " + std::to_string(saga.events[i].seq));
    }
    for (const auto& [id, list] : by_saga)
      if (!log.contains(id)) f.add("feed: events of a saga not in the log", id);
    if (!error_.empty()) f.add("feed: the reader could not finish", error_);
  }

  static std::vector<std::string> kinds() {
    return {"feed: cursor out of order", "feed: events missing, repeated or out of seq order",
            "feed: cursor is not the event's position", "feed: events of a saga not in the log",
            "feed: the reader could not finish"};
  }

 private:
  void run() {
    std::string after;
    size_t turn = 0;
    int failures_at_end = 0;
    for (;;) {
      const bool last = catch_up_.load();
      auto ports = cluster_.live_ports();
      if (ports.empty()) {
        std::this_thread::sleep_for(20ms);
        continue;
      }
      std::string target = "/v1/events?limit=1000";
      if (!after.empty()) target += "&after=" + after;
      if (!last) target += "&wait=1s";
      auto reply = usher::test::request(ports[turn++ % ports.size()], http::verb::get, target, "", {}, 10s);
      json page = reply.json();
      if (reply.status != 200 || !page.is_object()) {
        if (last && ++failures_at_end > 100) {
          error_ = "GET " + target + " failed at the end: " + std::to_string(reply.status) + " " + reply.error;
          return;
        }
        std::this_thread::sleep_for(20ms);
        continue;
      }
      for (json& e : page["events"]) fed_.push_back(std::move(e));
      after = page["next"].get<std::string>();
      if (last && page["events"].empty()) return;
    }
  }

  Cluster& cluster_;
  std::atomic<bool> catch_up_{false};
  std::vector<json> fed_;  // the thread's until it is joined
  std::string error_;
  std::thread thread_;
};

}  // namespace usher::cluster
