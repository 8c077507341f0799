// What the operator actions share (`usher cancel`, `retry`, `resolve`,
// `terminate`; docs/semantics.md (operator actions)): a POST /v1/sagas/{id}/{action} with a
// JSON body, through the API only (the server alone writes the log), on one
// saga or on every saga a filter lists.
//
//   usher retry ID [--note T]                          one saga
//   usher retry --status stuck [--workflow W] [--dry-run] [--note T]
//                                                      every saga listed
//
// A batch first lists every matching saga, page by page (GET
// /v1/sagas?status=&workflow=&after=), and only then acts, one saga at a time,
// in the listed order: acting changes a saga's status, so acting while paging
// through a status would skip or repeat sagas. A saga that changed between the
// listing and its turn is refused by the server (409) and reported as such.
//
// Output: one line per saga with its result, `ok` or `refused: DETAIL (HTTP n)`,
// then a count; --dry-run prints the sagas that would be acted on and sends
// nothing. Exit codes (commands.h): 0 every action accepted (or, with
// --dry-run, the listing worked; also when nothing matched); 1 one or more
// refused; 2 usage; 3 the server could not be reached or failed (5xx) — the
// batch stops there, and the sagas not reached are counted as not tried.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "saga_source.h"

namespace usher::cli {

struct SagaActionOptions {
  CommonOptions common;
  std::string id;        // one saga; empty for a batch
  std::string status;    // batch: the sagas in this status...
  std::string workflow;  // ...of this workflow (optional)
  bool dry_run = false;  // batch: list, do not act
};

// Adds the common options, the ID positional and the batch flags.
void add_saga_action_options(CLI::App& cmd, SagaActionOptions& options);

// Whether the options name one saga or a batch, and consistently: a usage
// failure otherwise. run_saga_action checks it too; a command whose own flags
// need checking calls it first, so that a missing ID is reported before them.
Answer check_saga_action_target(const SagaActionOptions& options, const std::string& action);

// `action` is the route's last segment ("retry"); `body` the JSON sent with
// each request. Returns the exit code.
int run_saga_action(const SagaActionOptions& options, const std::string& action, const Json& body);

}  // namespace usher::cli
