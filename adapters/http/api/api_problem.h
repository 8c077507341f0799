// Responses of the trigger API: JSON bodies and RFC 9457 problem details.
//
// Every error the API (or its server, for 413/431/503 before a request is
// handled) answers is `application/problem+json`:
//   {"type": "urn:usher:problem:<slug>", "title": "...", "status": 404,
//    "detail": "saga 0190... not found", "instance": "/v1/sagas/0190..."}
// plus "errors": [{"pointer", "message"}] for a schema violation (422).
// The type is a URN rather than a URL so it never points at a page that does
// not exist; it is stable and clients may switch on it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "usher/definition.h"
#include "usher/status.h"

namespace usher::api {

using ApiRequest = boost::beast::http::request<boost::beast::http::string_body>;
using ApiResponse = boost::beast::http::response<boost::beast::http::string_body>;

// One violation of a workflow's input schema, as 422 lists it.
struct ProblemError {
  std::string pointer;  // RFC 6901 pointer into the request body, "" for the whole body
  std::string message;
};

// The kinds of problem the API reports; each has a fixed status, slug and title.
enum class ProblemKind {
  kBadRequest,        // 400 malformed query parameter or request
  kBadJson,           // 400 body is not JSON / not an object
  kUnauthorized,      // 401
  kForbidden,         // 403 the read-only token used for an action
  kNotFound,          // 404 unknown route
  kWorkflowNotFound,  // 404
  kSagaNotFound,      // 404
  kMethodNotAllowed,  // 405
  kConflict,          // 409 wrong state, or idempotency key reused for another workflow
  kBodyTooLarge,      // 413
  kSchemaViolation,   // 422
  kHeaderTooLarge,    // 431
  kInternal,          // 500
  kUnavailable,       // 503
};

unsigned problem_status(ProblemKind kind);

// Serializes JSON for a response. Invalid UTF-8 (which can only come from a
// step service's error text) is replaced rather than thrown on.
std::string dump_json(const Json& j);

// A 2xx JSON response. The server sets the HTTP version and keep-alive of
// every response from its request, so the handler does not have to.
ApiResponse json_response(unsigned status, const Json& body);

// A problem response. `instance` is the request path (may be empty).
ApiResponse problem_response(ProblemKind kind, std::string_view detail, std::string_view instance = {},
                             const std::vector<ProblemError>& errors = {});

// The problem kind for an engine Status (not ok): kNotFound -> `not_found`
// (404 of saga or workflow), kFailedPrecondition/kAlreadyExists -> 409,
// kUnavailable -> 503, kInvalidArgument -> 400, anything else -> 500.
ProblemKind problem_kind_of(const Status& status, ProblemKind not_found);

}  // namespace usher::api
