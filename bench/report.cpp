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
  j["rss_samples_mb"] = r.rss_samples_mb;
  j["synchronous"] = r.spec.synchronous_full ? "FULL" : "NORMAL";
  j["store"] = r.spec.db.empty() ? "sqlite" : "postgresql";
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

}  // namespace usher::bench
