#include "machine/render.h"

#include "model/expression.h"
#include "model/redaction.h"

namespace usher {

std::string idempotency_key(const std::string& saga_id, const std::string& step, CallKind kind) {
  std::string key;
  key.reserve(saga_id.size() + step.size() + 13);
  key.append(saga_id).append(":").append(step).append(":").append(call_kind_name(kind));
  return key;
}

namespace {

const CallSpec& call_spec(const Definition& def, size_t step, CallKind kind) {
  return kind == CallKind::kAction ? def.steps[step].action : *def.steps[step].compensate;
}

Result<std::pair<Json, std::optional<std::string>>> render_from(const Definition& def, const SagaState& s,
                                                                 size_t step, CallKind kind, const Json& input) {
  const CallSpec& cs = call_spec(def, step, kind);
  RenderContext ctx;
  ctx.input = &input;
  ctx.saga_id = s.id;
  ctx.workflow = def.name;
  ctx.step_output = [&](std::string_view name) -> const Json* {
    auto idx = def.step_index(name);
    if (!idx || !s.steps[*idx].action.succeeded) return nullptr;
    return &s.steps[*idx].output;
  };
  if (kind == CallKind::kCompensate && !s.steps[step].action.succeeded) ctx.unknown_output_step = def.steps[step].name;
  auto body = render(cs.with, ctx);
  if (!body.is_ok()) return body.status();
  std::optional<std::string> path;
  if (cs.http) {
    auto p = render_path(cs.http->path, ctx);
    if (!p.is_ok()) return p.status();
    path = std::move(p.value());
  }
  return std::make_pair(std::move(body.value()), std::move(path));
}

}  // namespace

Result<std::pair<Json, std::optional<std::string>>> render_request(const Definition& def, const SagaState& s,
                                                                    size_t step, CallKind kind) {
  if (s.unredacted_input) return render_from(def, s, step, kind, *s.unredacted_input);
  for (size_t i : call_spec(def, step, kind).reads_redacted) {
    const Redaction& r = def.redact[i];
    if (had_value(s.input, r))
      return Status::failed_precondition("it reads the redacted input " + r.pointer +
                                         ", which usher holds in memory only and lost in a restart");
  }
  return render_from(def, s, step, kind, s.input);
}

Result<std::pair<Json, std::optional<std::string>>> render_logged_request(const Definition& def,
                                                                           const SagaState& s, size_t step,
                                                                           CallKind kind) {
  return render_from(def, s, step, kind, s.input);
}

}  // namespace usher
