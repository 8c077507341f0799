// Prometheus metrics of a running engine, served as text by GET /metrics.
//
// Fed from two places:
//   - observe(), from EngineOptions::on_transition: one call per saga
//     transition, on the engine thread. It takes one short mutex to find the
//     series' counter (a hash lookup on a short key built before locking) and
//     bumps it; it never does I/O, so the engine thread is not held up.
//   - render(), from a server thread on each scrape: the same mutex while it
//     formats, plus Engine::stats() for the log counters, the in-flight gauge
//     and this node's id.
//
// Series (counters end in _total):
//   usher_sagas_started_total{workflow}
//   usher_sagas_finished_total{workflow,status}     status: completed|compensated
//   usher_sagas_stuck_total{workflow}               times a saga became stuck
//   usher_sagas_in_flight                           gauge, non-terminal sagas held by the engine
//   usher_step_attempts_total{workflow,step,outcome} outcome: ok|failed|transient|timeout
//   usher_step_duration_seconds{workflow,step}      histogram, from sending an attempt to its result
//   usher_log_commits_total, usher_log_events_total group commits and the events in them
//   usher_log_batch_events                          gauge, events per commit since start (events/commits)
//   usher_log_commit_seconds_total                  time in COMMIT, when the engine reports it
//   usher_node_id                                   gauge, this node's id on a shared PostgreSQL log, 0 when
//                                                   the engine is not a node
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "usher/engine.h"

namespace usher::api {

class ApiMetrics {
 public:
  // Upper bounds (seconds) of the step duration histogram buckets; +Inf is implied.
  static constexpr std::array<double, 14> kDurationBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                              0.25,  0.5,    1,     2.5,  5,     10,   30};

  // Records one transition. Thread-safe; cheap (see above).
  void observe(const TransitionInfo& t);

  // The Prometheus text exposition (version 0.0.4) of every series.
  std::string render(const EngineStats& stats) const;

 private:
  struct Histogram {
    std::array<uint64_t, kDurationBuckets.size()> buckets{};  // non-cumulative counts
    uint64_t count = 0;
    double sum = 0;
  };
  // Keys join label values with '\x1f' (a byte that cannot appear in a
  // workflow or step name the loader accepts), so one map lookup finds a series.
  mutable std::mutex mu_;
  std::unordered_map<std::string, uint64_t> started_;   // workflow
  std::unordered_map<std::string, uint64_t> finished_;  // workflow \x1f status
  std::unordered_map<std::string, uint64_t> stuck_;     // workflow
  std::unordered_map<std::string, uint64_t> attempts_;  // workflow \x1f step \x1f outcome
  std::unordered_map<std::string, Histogram> durations_;  // workflow \x1f step
};

// Writes one log line for a transition: info for progress, warn for a failed
// attempt, error when a saga becomes stuck. Saga id and step are always in it.
void log_transition(const TransitionInfo& t);

}  // namespace usher::api
