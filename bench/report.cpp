// Summary figures of a run: the JSON a run prints and the table a suite prints.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "bench_run.h"

namespace usher::bench {
namespace {

double percentile(std::vector<float>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size()))) ;
  return sorted[std::min(sorted.size() - 1, i == 0 ? 0 : i - 1)];
}

template <typename T>
void put(Json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
  else j[key] = nullptr;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string opt(const char* f, const std::optional<double>& v) { return v ? fmt(f, *v) : "-"; }

}  // namespace

Json to_json(const RunResult& r) {
  std::vector<float> sorted = r.latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  const uint64_t finished = r.completed + r.compensated;
  Json j;
  j["mode"] = r.spec.mode;
  j["concurrency"] = r.spec.concurrency;
  j["sagas"] = r.spec.sagas;
  j["ok"] = r.ok;
  j["error"] = r.error;
  j["seconds"] = r.seconds;
  j["sagas_per_second"] = r.seconds > 0 ? static_cast<double>(finished) / r.seconds : 0.0;
  j["p50_ms"] = percentile(sorted, 50);
  j["p95_ms"] = percentile(sorted, 95);
  j["p99_ms"] = percentile(sorted, 99);
  j["max_ms"] = sorted.empty() ? 0.0 : sorted.back();
  j["completed"] = r.completed;
  j["compensated"] = r.compensated;
  j["other"] = r.other;
  put(j, "count_check", r.count_check);
  j["count_detail"] = r.count_detail;
  put(j, "cpu_seconds", r.cpu_seconds);
  j["cpu_ms_per_saga"] = r.cpu_seconds && finished ? Json(*r.cpu_seconds * 1000.0 / static_cast<double>(finished)) : Json(nullptr);
  put(j, "peak_rss_mb", r.peak_rss_mb);
  put(j, "events_per_commit", r.events_per_commit);
  put(j, "fsyncs", r.fsyncs);
  j["fsyncs_per_saga"] = r.fsyncs && finished ? Json(*r.fsyncs / static_cast<double>(finished)) : Json(nullptr);
  put(j, "resume_seconds", r.resume_seconds);
  put(j, "feed_events_per_second", r.feed_events_per_second);
  put(j, "publish_max_lag_events", r.publish_max_lag_events);
  put(j, "publish_max_lag_seconds", r.publish_max_lag_seconds);
  put(j, "publish_catch_up_seconds", r.publish_catch_up_seconds);
  put(j, "publish_events_per_second", r.publish_events_per_second);
  j["rss_samples_mb"] = r.rss_samples_mb;
  j["synchronous"] = r.spec.synchronous_full ? "FULL" : "NORMAL";
  j["store"] = r.spec.db.empty() ? "sqlite" : "postgresql";
  if (r.spec.mode == "cluster") {
    j["nodes"] = r.spec.nodes;
    j["node_cpus"] = r.spec.node_cpus;
    j["cgroups"] = r.cgroups;
    put(j, "pg_cpu_seconds", r.pg_cpu_seconds);
    j["pg_cpu_ms_per_saga"] =
        r.pg_cpu_seconds && finished ? Json(*r.pg_cpu_seconds * 1000.0 / static_cast<double>(finished)) : Json(nullptr);
    put(j, "service_cpu_seconds", r.service_cpu_seconds);
    put(j, "driver_cpu_seconds", r.driver_cpu_seconds);
    put(j, "machine_cpu_seconds", r.machine_cpu_seconds);
    put(j, "throttled_share", r.throttled_share);
    put(j, "node_wait_seconds", r.node_wait_seconds);
    put(j, "pg_wait_seconds", r.pg_wait_seconds);
    put(j, "load_average", r.load_average);
  }
  return j;
}

std::string format_table(const std::vector<Json>& runs) {
  std::map<unsigned, double> baseline;
  for (const Json& j : runs)
    if (j.value("mode", "") == "baseline") baseline[j.value("concurrency", 0u)] = j.value("sagas_per_second", 0.0);
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-9s %4s %7s %9s %6s %7s %7s %7s %8s %13s %6s %8s %7s %7s %9s %8s  %s\n", "mode", "C",
                "N", "sagas/s", "%base", "p50ms", "p95ms", "p99ms", "maxms", "done/comp", "count", "cpu_ms/s", "rss_MB",
                "ev/cmt", "fsync/sg", "resume_s", "note");
  out += line;
  for (const Json& j : runs) {
    const std::string mode = j.value("mode", "");
    const unsigned c = j.value("concurrency", 0u);
    const double rate = j.value("sagas_per_second", 0.0);
    std::string base = "-";
    if (mode != "baseline" && baseline.count(c) && baseline[c] > 0) base = fmt("%.0f%%", 100.0 * rate / baseline[c]);
    auto d = [&](const char* key) -> std::optional<double> {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) return std::nullopt;
      return it->get<double>();
    };
    std::string count = j["count_check"].is_null() ? "-" : j["count_check"].get<bool>() ? "pass" : "FAIL";
    std::string note;
    if (j.value("store", "") == "postgresql") note = "postgresql (fsync/sg: WAL syncs) ";
    if (!j.value("ok", false)) note += "ERROR: " + j.value("error", "");
    else if (count == "FAIL") note += j.value("count_detail", "");
    else if (j.value("other", uint64_t{0}) > 0) note += std::to_string(j.value("other", uint64_t{0})) + " other endings";
    if (auto feed = d("feed_events_per_second")) note += fmt("feed read %.0f ev/s ", *feed);
    if (auto rate = d("publish_events_per_second"))
      note += fmt("published %.0f ev/s", *rate) + fmt(", max lag %.0f ev", d("publish_max_lag_events").value_or(0)) +
              fmt(" / %.2f s", d("publish_max_lag_seconds").value_or(0)) +
              fmt(", caught up %.2f s after ", d("publish_catch_up_seconds").value_or(0));
    if (auto samples = j.value("rss_samples_mb", std::vector<double>{}); !samples.empty())
      note += fmt("rss %.1f MB at 10 s", samples.front()) + fmt(", %.1f MB at end", samples.back()) +
              fmt(", max %.1f", *std::max_element(samples.begin(), samples.end()));
    std::string done = std::to_string(j.value("completed", uint64_t{0})) + "/" + std::to_string(j.value("compensated", uint64_t{0}));
    const bool timed = mode != "recovery" && mode != "soak";
    std::snprintf(line, sizeof line, "%-9s %4u %7llu %9.0f %6s %7s %7s %7s %8s %13s %6s %8s %7s %7s %9s %8s  %s\n",
                  mode.c_str(), c, static_cast<unsigned long long>(j.value("sagas", uint64_t{0})), rate, base.c_str(),
                  timed ? fmt("%.2f", d("p50_ms").value_or(0)).c_str() : "-",
                  timed ? fmt("%.2f", d("p95_ms").value_or(0)).c_str() : "-",
                  timed ? fmt("%.2f", d("p99_ms").value_or(0)).c_str() : "-",
                  timed ? fmt("%.1f", d("max_ms").value_or(0)).c_str() : "-", done.c_str(), count.c_str(),
                  opt("%.3f", d("cpu_ms_per_saga")).c_str(), opt("%.1f", d("peak_rss_mb")).c_str(),
                  opt("%.1f", d("events_per_commit")).c_str(), opt("%.3f", d("fsyncs_per_saga")).c_str(),
                  opt("%.2f", d("resume_seconds")).c_str(), note.c_str());
    out += line;
  }
  return out;
}

std::string format_cluster_table(const std::vector<Json>& runs, double goal) {
  auto d = [](const Json& j, const char* key) -> std::optional<double> {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    return it->get<double>();
  };
  std::string out;
  char line[512];
  // One row per run. CPU columns are in cores (CPU seconds per second of the run).
  std::snprintf(line, sizeof line, "%5s %4s %6s %8s %7s %7s %5s %6s %6s %5s %6s %7s %6s %6s %7s %7s %6s %6s %6s %5s  %s\n",
                "nodes", "C", "N", "sagas/s", "p50ms", "p99ms", "count", "node_c", "quota%", "thr%", "node_w", "node_ms",
                "pg_c", "pg_w", "pg_ms", "WAL/sg", "ev/cmt", "s+d_c", "other", "load1", "note");
  out += line;
  std::map<unsigned, std::vector<const Json*>> by_nodes;
  for (const Json& j : runs) {
    if (j.value("mode", "") != "cluster") continue;
    const unsigned nodes = j.value("nodes", 0u);
    const double secs = j.value("seconds", 0.0);
    const double finished = static_cast<double>(j.value("completed", uint64_t{0}) + j.value("compensated", uint64_t{0}));
    auto cores = [&](std::optional<double> cpu) -> std::optional<double> {
      if (!cpu || secs <= 0) return std::nullopt;
      return *cpu / secs;
    };
    const auto node_c = cores(d(j, "cpu_seconds"));
    const auto pg_c = cores(d(j, "pg_cpu_seconds"));
    const auto svc_c = cores(d(j, "service_cpu_seconds"));
    const auto drv_c = cores(d(j, "driver_cpu_seconds"));
    const auto all_c = cores(d(j, "machine_cpu_seconds"));
    std::optional<double> quota, sd, other;
    if (node_c && j.value("node_cpus", 0.0) > 0) quota = 100.0 * *node_c / (j.value("node_cpus", 0.0) * nodes);
    if (svc_c || drv_c) sd = svc_c.value_or(0) + drv_c.value_or(0);
    if (all_c && node_c && pg_c && sd) other = *all_c - *node_c - *pg_c - *sd;
    std::optional<double> thr = d(j, "throttled_share");
    if (thr) *thr *= 100.0;
    std::optional<double> wal = finished > 0 && d(j, "fsyncs") ? std::optional<double>(*d(j, "fsyncs") / finished) : std::nullopt;
    std::optional<double> node_ms = d(j, "cpu_ms_per_saga");
    std::string count = j["count_check"].is_null() ? "-" : j["count_check"].get<bool>() ? "pass" : "FAIL";
    std::string note;
    if (!j.value("ok", false)) note = "ERROR: " + j.value("error", "");
    else if (count == "FAIL") note = j.value("count_detail", "");
    else if (j.value("other", uint64_t{0}) > 0) note = std::to_string(j.value("other", uint64_t{0})) + " other endings";
    std::snprintf(line, sizeof line, "%5u %4u %6llu %8.0f %7.2f %7.2f %5s %6s %6s %5s %6s %7s %6s %6s %7s %7s %6s %6s %6s %5s  %s\n",
                  nodes, j.value("concurrency", 0u), static_cast<unsigned long long>(j.value("sagas", uint64_t{0})),
                  j.value("sagas_per_second", 0.0), d(j, "p50_ms").value_or(0), d(j, "p99_ms").value_or(0), count.c_str(),
                  opt("%.2f", node_c).c_str(), opt("%.0f", quota).c_str(), opt("%.0f", thr).c_str(),
                  opt("%.2f", cores(d(j, "node_wait_seconds"))).c_str(), opt("%.3f", node_ms).c_str(),
                  opt("%.2f", pg_c).c_str(), opt("%.2f", cores(d(j, "pg_wait_seconds"))).c_str(),
                  opt("%.3f", d(j, "pg_cpu_ms_per_saga")).c_str(),
                  opt("%.3f", wal).c_str(), opt("%.1f", d(j, "events_per_commit")).c_str(), opt("%.2f", sd).c_str(),
                  opt("%.2f", other).c_str(), opt("%.2f", d(j, "load_average")).c_str(), note.c_str());
    out += line;
    if (j.value("ok", false) && count != "FAIL") by_nodes[nodes].push_back(&j);
  }
  // Per node count: min / median / max of the runs that worked.
  auto median_of = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0.0;
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  auto collect = [&](const std::vector<const Json*>& js, const char* key) {
    std::vector<double> v;
    for (const Json* j : js)
      if (auto x = d(*j, key)) v.push_back(*x);
    return v;
  };
  double one = by_nodes.count(1) ? median_of(collect(by_nodes[1], "sagas_per_second")) : 0;
  if (by_nodes.empty()) return out;
  out += "\nnodes  runs  sagas/s min / median / max   x 1 node (median)   pg_ms/saga (median)  WAL/saga (median)\n";
  for (const auto& [nodes, js] : by_nodes) {
    auto rates = collect(js, "sagas_per_second");
    std::vector<double> wal;
    for (const Json* j : js) {
      const double finished = static_cast<double>(j->value("completed", uint64_t{0}) + j->value("compensated", uint64_t{0}));
      if (auto f = d(*j, "fsyncs"); f && finished > 0) wal.push_back(*f / finished);
    }
    const double med = median_of(rates);
    std::snprintf(line, sizeof line, "%5u %5zu  %7.0f / %7.0f / %7.0f   %17s   %19s  %17s\n", nodes, rates.size(),
                  *std::min_element(rates.begin(), rates.end()), med, *std::max_element(rates.begin(), rates.end()),
                  one > 0 ? fmt("%.2f", med / one).c_str() : "-",
                  opt("%.3f", js.empty() ? std::nullopt : std::optional<double>(median_of(collect(js, "pg_cpu_ms_per_saga")))).c_str(),
                  opt("%.3f", wal.empty() ? std::nullopt : std::optional<double>(median_of(wal))).c_str());
    out += line;
  }
  if (one > 0 && by_nodes.count(4)) {
    const double four = median_of(collect(by_nodes[4], "sagas_per_second"));
    std::snprintf(line, sizeof line, "\ngoal: 4 nodes >= %.1f x 1 node at the same CPU share: %.2f x (%.0f / %.0f sagas/s): %s\n",
                  goal, four / one, four, one, four >= goal * one ? "met" : "MISSED");
    out += line;
  }
  return out;
}

}  // namespace usher::bench
