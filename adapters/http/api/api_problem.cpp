#include "http/api/api_problem.h"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

namespace usher::api {

namespace http = boost::beast::http;

namespace {

struct KindInfo {
  unsigned status;
  const char* slug;
  const char* title;
};

KindInfo info(ProblemKind kind) {
  switch (kind) {
    case ProblemKind::kBadRequest: return {400, "bad-request", "Bad request"};
    case ProblemKind::kBadJson: return {400, "invalid-json", "Request body is not valid JSON"};
    case ProblemKind::kUnauthorized: return {401, "unauthorized", "Missing or wrong bearer token"};
    case ProblemKind::kForbidden: return {403, "forbidden", "The token does not allow this"};
    case ProblemKind::kNotFound: return {404, "not-found", "No such resource"};
    case ProblemKind::kWorkflowNotFound: return {404, "workflow-not-found", "Unknown workflow"};
    case ProblemKind::kSagaNotFound: return {404, "saga-not-found", "Unknown saga"};
    case ProblemKind::kMethodNotAllowed: return {405, "method-not-allowed", "Method not allowed"};
    case ProblemKind::kConflict: return {409, "conflict", "Conflict with the current state"};
    case ProblemKind::kBodyTooLarge: return {413, "body-too-large", "Request body too large"};
    case ProblemKind::kSchemaViolation: return {422, "schema-violation", "Input does not match the workflow's schema"};
    case ProblemKind::kHeaderTooLarge: return {431, "header-too-large", "Request header fields too large"};
    case ProblemKind::kInternal: return {500, "internal", "Internal error"};
    case ProblemKind::kUnavailable: return {503, "unavailable", "Service unavailable"};
  }
  return {500, "internal", "Internal error"};
}

}  // namespace

unsigned problem_status(ProblemKind kind) { return info(kind).status; }

std::string dump_json(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

ApiResponse json_response(unsigned status, const Json& body) {
  ApiResponse res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  res.body() = dump_json(body);
  res.body() += '\n';
  res.prepare_payload();
  return res;
}

ApiResponse problem_response(ProblemKind kind, std::string_view detail, std::string_view instance,
                             const std::vector<ProblemError>& errors) {
  KindInfo k = info(kind);
  Json body = {{"type", std::string("urn:usher:problem:") + k.slug},
               {"title", k.title},
               {"status", k.status},
               {"detail", std::string(detail)}};
  if (!instance.empty()) body["instance"] = std::string(instance);
  if (kind == ProblemKind::kSchemaViolation) {
    Json list = Json::array();
    for (const auto& e : errors) list.push_back({{"pointer", e.pointer}, {"message", e.message}});
    body["errors"] = std::move(list);
  }
  ApiResponse res{static_cast<http::status>(k.status), 11};
  res.set(http::field::content_type, "application/problem+json");
  if (kind == ProblemKind::kUnauthorized) res.set(http::field::www_authenticate, "Bearer realm=\"usher\"");
  // Every 503 is "not now": a full queue, a log that cannot be written, a
  // server shutting down. Clients that honour Retry-After back off.
  if (kind == ProblemKind::kUnavailable) res.set(http::field::retry_after, "1");
  res.body() = dump_json(body);
  res.body() += '\n';
  res.prepare_payload();
  return res;
}

ProblemKind problem_kind_of(const Status& status, ProblemKind not_found) {
  switch (status.code()) {
    case StatusCode::kNotFound: return not_found;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists: return ProblemKind::kConflict;
    case StatusCode::kUnavailable:
    case StatusCode::kNotOwner: return ProblemKind::kUnavailable;  // another node has it now: ask again
    case StatusCode::kInvalidArgument: return ProblemKind::kBadRequest;
    default: return ProblemKind::kInternal;
  }
}

}  // namespace usher::api
