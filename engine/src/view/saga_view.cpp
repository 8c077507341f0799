#include "view/saga_view.h"

#include <cstdio>
#include <ctime>

#include "machine/render.h"
#include "usher/inspect.h"

namespace usher {

std::string format_time(int64_t us) {
  int64_t secs = us >= 0 ? us / 1'000'000 : (us - 999'999) / 1'000'000;
  int millis = static_cast<int>((us - secs * 1'000'000) / 1000);
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];  // room for any int year the formatter could be given
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

namespace {

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// Days since 1970-01-01 of a civil date (proleptic Gregorian).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

std::optional<int64_t> parse_time(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)
  int y, mo, d, h, mi, se;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  size_t pos = 19;
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100'000;
    size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      micros += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2, om))
      return std::nullopt;
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_s;
  return secs * 1'000'000 + micros;
}

namespace {

Json time_or_null(int64_t us) { return us == 0 ? Json(nullptr) : Json(format_time(us)); }
Json text_or_null(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

}  // namespace

Json saga_to_json(const Definition& def, const SagaState& s) {
  Json steps = Json::array();
  for (size_t i = 0; i < def.steps.size() && i < s.steps.size(); ++i) {
    const StepState& st = s.steps[i];
    const CallState& a = st.action;
    Json comp = nullptr;
    if (st.compensation_started) {
      const CallState& c = st.compensation;
      const char* status = c.succeeded ? "succeeded" : st.compensation_gave_up ? "failed" : "running";
      const CallSpec& spec = *def.steps[i].compensate;
      comp = {{"call", spec.service + "." + spec.operation},
              {"transport", transport_name(def.services.at(spec.service).transport)},
              {"status", status},
              {"attempts", c.attempts},
              {"error", c.succeeded ? Json(nullptr) : text_or_null(c.error)},
              {"started_at", time_or_null(c.started_at)},
              {"finished_at", c.succeeded || st.compensation_gave_up ? time_or_null(c.finished_at) : Json(nullptr)}};
    }
    bool finished = a.succeeded || (!a.in_flight && a.retry_at == 0 && a.last_outcome);
    steps.push_back({{"name", def.steps[i].name},
                     {"type", step_type_name(def.steps[i].type)},
                     {"call", def.steps[i].action.service + "." + def.steps[i].action.operation},
                     {"transport", transport_name(def.services.at(def.steps[i].action.service).transport)},
                     {"status", step_status_name(step_status(s, i))},
                     {"attempts", a.attempts},
                     {"output", a.succeeded ? st.output : Json(nullptr)},
                     {"error", a.succeeded ? Json(nullptr) : text_or_null(a.error)},
                     {"started_at", time_or_null(a.started_at)},
                     {"finished_at", finished ? time_or_null(a.finished_at) : Json(nullptr)},
                     {"compensation", std::move(comp)}});
  }
  std::string current;
  if (s.status == SagaStatus::kRunning && s.current < def.steps.size()) current = def.steps[s.current].name;
  if (s.status == SagaStatus::kCompensating && s.compensation_cursor < s.compensation_plan.size())
    current = def.steps[s.compensation_plan[s.compensation_cursor]].name;
  if (s.status == SagaStatus::kStuck && s.stuck_step) current = def.steps[*s.stuck_step].name;
  bool show_error = s.status != SagaStatus::kCompleted;
  return {{"id", s.id},
          {"workflow", s.workflow},
          {"version", s.version},
          {"status", saga_status_name(s.status)},
          {"input", s.input},
          {"created_at", time_or_null(s.created_at)},
          {"updated_at", time_or_null(s.updated_at)},
          {"correlation_id", text_or_null(s.correlation_id)},
          {"idempotency_key", text_or_null(s.idempotency_key)},
          {"deadline", s.deadline ? time_or_null(*s.deadline) : Json(nullptr)},
          {"error", show_error ? text_or_null(s.last_error) : Json(nullptr)},
          {"current_step", text_or_null(current)},
          {"steps", std::move(steps)}};
}

namespace {

// A call's request as saga_detail_json() shows it, or null when it cannot be
// rendered from what the log holds.
Json request_json(const Definition& def, const SagaState& s, size_t step, CallKind kind) {
  auto rendered = render_logged_request(def, s, step, kind);
  if (!rendered.is_ok()) return nullptr;
  auto& [body, path] = rendered.value();
  const CallSpec& spec = kind == CallKind::kAction ? def.steps[step].action : *def.steps[step].compensate;
  const Service& service = def.services.at(spec.service);
  Json out = Json::object();
  switch (service.transport) {
    case Transport::kHttp: {
      std::string method = spec.http ? spec.http->method : "POST";
      std::string base = service.url;
      while (base.ends_with('/')) base.pop_back();
      out["method"] = method;
      out["url"] = base + (path ? *path : "/" + spec.operation);
      if (method == "GET" || method == "HEAD") body = nullptr;  // sent without a body
      break;
    }
    case Transport::kKafka:
      out["topic"] = service.topic;
      break;
    case Transport::kLocal:
      out["operation"] = spec.operation;
      break;
  }
  out["idempotency_key"] = idempotency_key(s.id, def.steps[step].name, kind);
  out["body"] = std::move(body);
  return out;
}

}  // namespace

Json saga_detail_json(const Definition& def, const SagaState& s) {
  Json saga = saga_to_json(def, s);
  Json& steps = saga["steps"];
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepState& st = s.steps[i];
    steps[i]["request"] = st.action.attempts > 0 ? request_json(def, s, i, CallKind::kAction) : Json(nullptr);
    if (steps[i]["compensation"].is_object())
      steps[i]["compensation"]["request"] =
          st.compensation.attempts > 0 ? request_json(def, s, i, CallKind::kCompensate) : Json(nullptr);
  }
  return saga;
}

Json event_to_json(const Event& e) {
  return {{"seq", e.seq},
          {"type", event_type_name(e.type)},
          {"step", text_or_null(e.step)},
          {"data", e.data},
          {"occurred_at", format_time(e.occurred_at)}};
}

Json events_to_json(const std::vector<Event>& events) {
  Json list = Json::array();
  for (const Event& e : events) list.push_back(event_to_json(e));
  return {{"events", std::move(list)}};
}

}  // namespace usher
