// The query of GET /v1/sagas (docs/api.md) as a SagaFilter.
//
//   status           running|compensating|completed|compensated|stuck|terminated
//   workflow         a workflow name
//   limit            1 .. 1000 (default 50)
//   after            the `next` cursor of the previous page: a saga id
//   idempotency_key  the key the saga was started with
//   correlation_id   the X-Correlation-Id it was started with
//   created_after    RFC 3339: started at or after this time
//   created_before   RFC 3339: started strictly before this time
//
// A parameter given empty (`?status=`) is as if absent. Anything else is
// refused with a message naming the parameter, so a typo (`?since=`,
// `?idempotency-key=`) never silently lists every saga.
#pragma once

#include <map>
#include <string>

#include "usher/saga.h"
#include "usher/status.h"

namespace usher::api {

// The filter the query asks for, or kInvalidArgument saying which parameter is
// wrong and what it accepts (answered as 400).
Result<SagaFilter> parse_list_query(const std::map<std::string, std::string>& query);

}  // namespace usher::api
