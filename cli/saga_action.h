// What `usher cancel` and `usher retry` share: an operator action on one saga,
// through the API only (POST /v1/sagas/{id}/{action} answers 202 with the saga).
#pragma once

#include <string>

#include "saga_source.h"

namespace usher::cli {

struct SagaActionOptions {
  CommonOptions common;
  std::string id;
};

// `action` is "cancel" or "retry"; returns the exit code (409 refused -> 1).
int run_saga_action(const SagaActionOptions& options, const char* action);

}  // namespace usher::cli
