// Where the inspection commands read sagas from: the log file itself (--db,
// read-only through LogInspector) or a running server (--server, through the
// trigger API). Both answer with the same JSON documents (docs/api.md),
// so `ls`, `show`, `events`, `stats` and `nodes` render one format whichever
// is used.
//
// Every answer carries the process exit code it implies (commands.h):
//   0 ok; 1 not found, refused (409), invalid request; 2 usage (bad flags,
//   a mutating command given --db); 3 the server cannot be reached, answers
//   5xx, or the database cannot be opened.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api_client.h"
#include "usher/definition.h"
#include "usher/saga.h"

namespace usher::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitProblem = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

// The options every saga command takes.
struct CommonOptions {
  std::string db;          // --db FILE: read the log directly
  std::string server;      // --server URL; default $USHER_SERVER, else http://127.0.0.1:8080
  std::string token_file;  // --token-file F (a file); else $USHER_TOKEN holds the token itself
  bool json = false;       // --json: print the API's JSON instead of a table
};

void add_common_options(CLI::App& cmd, CommonOptions& options);

// A JSON document, or why there is none and the exit code that follows.
struct Answer {
  Json json;
  int exit_code = kExitOk;
  std::string error;  // for people, without the "usher: " prefix

  bool ok() const { return exit_code == kExitOk; }
  static Answer success(Json json) { return {std::move(json), kExitOk, {}}; }
  static Answer fail(int code, std::string message) { return {Json(), code, std::move(message)}; }
};

class SagaSource {
 public:
  virtual ~SagaSource() = default;

  // `at`: the RFC 3339 text as the user gave it (sent to the server as is)
  // and its parsed value (used against the log).
  virtual Answer saga(const std::string& id, const std::optional<std::string>& at_text,
                      std::optional<int64_t> at_us) = 0;
  virtual Answer events(const std::string& id) = 0;
  // One page, newest first: {"sagas":[…],"next":cursor|null}.
  virtual Answer list(const SagaFilter& filter) = 0;
  // {"sagas":{"running":n,…,"terminated":n},"total":n,"oldest_unfinished_created_at":time|null}
  // (LogInspector::stats; GET /v1/stats).
  virtual Answer stats() = 0;
  // One page of the event feed after the cursor `after` ("" from the
  // start), as GET /v1/events answers: {"events":[…],"next":cursor}. The
  // server waits up to `wait` for an event when there is none yet; the log
  // read directly answers at once.
  virtual Answer feed(const std::string& after, size_t limit, std::chrono::milliseconds wait) = 0;
  // The nodes sharing the log, as GET /v1/cluster answers:
  // {"node": id|null, "nodes":[…]}; "node" is null from the log itself.
  virtual Answer cluster() = 0;
};

// A command to suggest after this one ("more: usher ls --after X"): `usher`,
// `args`, then the --db, or --server and --token-file, the user gave, so that it
// can be pasted as it is printed. Values are quoted for a POSIX shell when needed.
std::string follow_up_command(const CommonOptions& options, const std::string& args);

// Opens the source the options name; on failure returns null and sets `failure`.
std::unique_ptr<SagaSource> open_source(const CommonOptions& options, Answer& failure);

// For the commands that change a saga (start, cancel, retry): only the server
// may write the log. Refuses --db with a usage error.
std::optional<ApiClient> connect_server(const CommonOptions& options, const char* command, Answer& failure);

// Turns an HTTP exchange into an Answer: 2xx with a JSON body is ok; a problem
// document's `detail` becomes the error.
Answer answer_from(const Result<HttpResponse>& response);

// Prints the error of a failed answer to stderr as "usher: …".
int report(const Answer& answer);

// Runs a command's body. A document of an unexpected shape (from a server of
// another version, say) throws from the JSON library; it is reported as an
// unusable source (exit 3) instead of escaping through CLI11 and aborting.
int guarded(const std::function<int()>& body);

// Prints JSON for --json: indented, one document, so that the output of --db
// and --server can be compared with diff.
void print_json(const Json& json);

}  // namespace usher::cli
