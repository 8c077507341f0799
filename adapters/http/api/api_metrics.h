// Prometheus metrics of a running engine, served as text by GET /metrics.
//
// Fed from three places:
//   - observe(), from EngineOptions::on_transition: one call per saga
//     transition, on the engine thread. It takes one short mutex to find the
//     series' counter (a hash lookup on a short key built before locking) and
//     bumps it; it never does I/O, so the engine thread is not held up.
//   - observe_request(), from the API handler as it answers (request_observer.h).
//   - render(), from a worker thread on each scrape: the same mutex while it
//     formats, plus what the caller read from the engine: Engine::stats() and
//     the counts by status from the log (Engine::saga_counts()), which is why
//     usher_sagas is right after a restart while the _total counters start at 0.
//
// Series (counters end in _total; counters count since this process started):
//   usher_sagas{status}                              gauge from the log: running|compensating|completed|
//                                                    compensated|stuck|terminated (alert on status="stuck")
//   usher_oldest_unfinished_saga_age_seconds         gauge from the log: age of the oldest running or
//                                                    compensating saga, 0 when there is none
//   usher_sagas_started_total{workflow}
//   usher_sagas_finished_total{workflow,status}      status: completed|compensated|terminated
//   usher_saga_transitions_total{workflow,status}    times a saga entered a status (an operator's retry
//                                                    counts running again; stuck counts each time)
//   usher_sagas_in_memory                            gauge, unfinished sagas this engine holds in memory
//   usher_step_attempts_total{workflow,step,service,operation,kind,outcome}
//                                                    kind: action|compensation; outcome: ok|failed|transient|timeout
//   usher_step_duration_seconds{workflow,step,service,operation,kind}
//                                                    histogram, from sending an attempt to its result
//   usher_api_requests_total{method,route,code}      route templated: /v1/sagas/{id}, never an id
//   usher_api_request_duration_seconds{method,route} histogram, from the request to its response
//   usher_log_commits_total, usher_log_events_total  group commits and the events in them
//   usher_log_batch_events                           gauge, events per commit since start (events/commits)
//   usher_log_commit_seconds_total                   time in COMMIT, when the engine reports it
//   usher_node_id                                    gauge, this node's id on a shared PostgreSQL log, 0 when
//                                                    the engine is not a node
//   usher_build_info{version}                        gauge, always 1
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "usher/engine.h"

namespace usher::api {

class ApiMetrics {
 public:
  // Upper bounds (seconds) of the duration histograms' buckets; +Inf is implied.
  static constexpr std::array<double, 14> kDurationBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                              0.25,  0.5,    1,     2.5,  5,     10,   30};

  // Records one transition. Thread-safe; cheap (see above).
  void observe(const TransitionInfo& t);

  // Records one answered API request. `route` is a template (route_template()).
  void observe_request(std::string_view method, std::string_view route, unsigned code, double seconds);

  // The Prometheus text exposition (version 0.0.4) of every series. `counts`
  // is Engine::saga_counts()'s answer, or null when it could not be read (the
  // gauges from the log are then left out); `now_us` dates the oldest saga.
  // `publication` (may be null: the feed is not published) adds the
  // usher_publication_* series.
  std::string render(const EngineStats& stats, const Json* counts, int64_t now_us,
                     const PublicationStats* publication = nullptr) const;

  // render() with what `engine` answers now (blocks on a read of the log).
  std::string render(Engine& engine) const;

 private:
  struct Histogram {
    std::array<uint64_t, kDurationBuckets.size()> buckets{};  // non-cumulative counts
    uint64_t count = 0;
    double sum = 0;
    void add(double seconds);
  };
  // Keys join label values with '\x1f' (a byte that cannot appear in a
  // workflow or step name the loader accepts), so one map lookup finds a series.
  mutable std::mutex mu_;
  std::unordered_map<std::string, uint64_t> started_;      // workflow
  std::unordered_map<std::string, uint64_t> finished_;     // workflow \x1f status
  std::unordered_map<std::string, uint64_t> transitions_;  // workflow \x1f status
  std::unordered_map<std::string, uint64_t> attempts_;     // workflow step service operation kind outcome
  std::unordered_map<std::string, Histogram> durations_;   // workflow step service operation kind
  std::unordered_map<std::string, uint64_t> requests_;     // method route code
  std::unordered_map<std::string, Histogram> request_durations_;  // method route
};

// Writes the log line of a transition (log_line.h for the format; every line
// has saga_id, workflow, correlation_id, event, status and, when there is one,
// step and detail):
//   info   a saga's outcome (completed, compensated with the error that made it
//          compensate, terminated with who did it) and operator actions (with
//          the acting token);
//   error  a saga that became stuck, with the reason;
//   debug  every other transition (starts, steps, attempts that failed).
void log_transition(const TransitionInfo& t);

}  // namespace usher::api
