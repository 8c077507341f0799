#include "saga_source.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "usher/inspect.h"
#include "usher/printable.h"
#include "usher/saga_log.h"

namespace usher::cli {

namespace {

constexpr const char* kDefaultServer = "http://127.0.0.1:8080";

int exit_code_for(const Status& status) {
  switch (status.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kDataLoss:
      return kExitUnreachable;
    default:
      return kExitProblem;
  }
}

Answer from_result(Result<Json> result) {
  if (!result.is_ok()) return Answer::fail(exit_code_for(result.status()), result.status().message());
  return Answer::success(std::move(result.value()));
}

// ---- --db ---------------------------------------------------------------------

class DbSource final : public SagaSource {
 public:
  explicit DbSource(std::unique_ptr<LogInspector> inspector) : inspector_(std::move(inspector)) {}

  Answer saga(const std::string& id, const std::optional<std::string>&, std::optional<int64_t> at_us) override {
    return from_result(inspector_->saga(id, at_us));
  }
  Answer events(const std::string& id) override { return from_result(inspector_->events(id)); }
  Answer list(const SagaFilter& filter) override { return from_result(inspector_->list(filter)); }
  Answer stats() override { return from_result(inspector_->stats()); }
  Answer cluster() override { return from_result(inspector_->cluster()); }
  Answer feed(const std::string& after, size_t limit, std::chrono::milliseconds) override {
    return from_result(inspector_->feed(after, limit));
  }

 private:
  std::unique_ptr<LogInspector> inspector_;
};

// ---- --server -----------------------------------------------------------------

// RFC 3339 to the microsecond when the time has any (format_time stops at the
// millisecond), so a window sent to the server is the one asked for.
std::string exact_time(int64_t us) {
  std::string text = format_time(us);  // 2026-11-21T05:25:00.123Z
  const int64_t micros = ((us % 1000) + 1000) % 1000;
  if (micros != 0 && !text.empty() && text.back() == 'Z') {
    char digits[4];
    std::snprintf(digits, sizeof digits, "%03d", static_cast<int>(micros));
    text.insert(text.size() - 1, digits);
  }
  return text;
}

class ServerSource final : public SagaSource {
 public:
  explicit ServerSource(ApiClient client) : client_(std::move(client)) {}

  Answer saga(const std::string& id, const std::optional<std::string>& at_text, std::optional<int64_t>) override {
    std::string target = "/v1/sagas/" + url_encode(id);
    if (at_text) target += "?at=" + url_encode(*at_text);
    return answer_from(client_.request("GET", target));
  }

  Answer events(const std::string& id) override {
    return answer_from(client_.request("GET", "/v1/sagas/" + url_encode(id) + "/events"));
  }

  Answer list(const SagaFilter& filter) override {
    std::string query = "limit=" + std::to_string(filter.limit);
    if (filter.status) query += std::string("&status=") + saga_status_name(*filter.status);
    if (filter.workflow) query += "&workflow=" + url_encode(*filter.workflow);
    if (filter.after) query += "&after=" + url_encode(*filter.after);
    if (filter.idempotency_key) query += "&idempotency_key=" + url_encode(*filter.idempotency_key);
    if (filter.correlation_id) query += "&correlation_id=" + url_encode(*filter.correlation_id);
    if (filter.created_after) query += "&created_after=" + url_encode(exact_time(*filter.created_after));
    if (filter.created_before) query += "&created_before=" + url_encode(exact_time(*filter.created_before));
    return answer_from(client_.request("GET", "/v1/sagas?" + query));
  }

  // Counted by the server from the log's indexes, as LogInspector::stats does.
  Answer stats() override { return answer_from(client_.request("GET", "/v1/stats")); }

  Answer cluster() override { return answer_from(client_.request("GET", "/v1/cluster")); }

  Answer feed(const std::string& after, size_t limit, std::chrono::milliseconds wait) override {
    std::string query = "limit=" + std::to_string(limit);
    if (!after.empty()) query += "&after=" + url_encode(after);
    if (wait.count() > 0) query += "&wait=" + std::to_string(wait.count()) + "ms";
    // The request may wait `wait` on the server before it is answered.
    return answer_from(client_.request("GET", "/v1/events?" + query, std::nullopt, std::nullopt,
                                       wait + std::chrono::seconds(10)));
  }

 private:
  ApiClient client_;
};

std::string trim(std::string s) {
  const char* space = " \t\r\n\f\v";
  s.erase(s.find_last_not_of(space) + 1);
  s.erase(0, s.find_first_not_of(space));
  return s;
}

std::optional<ApiClient> make_client(const CommonOptions& options, Answer& failure) {
  std::string server = options.server;
  if (server.empty()) {
    const char* env = std::getenv("USHER_SERVER");
    server = env && *env ? env : kDefaultServer;
  }
  auto url = parse_server_url(server);
  if (!url.is_ok()) {
    failure = Answer::fail(kExitUsage, url.status().message());
    return std::nullopt;
  }
  std::string token;
  if (!options.token_file.empty()) {
    std::ifstream in(options.token_file);
    if (!in) {
      failure = Answer::fail(kExitUsage, "cannot read token file " + options.token_file);
      return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    token = trim(text.str());
    if (token.empty()) {
      failure = Answer::fail(kExitUsage, "token file " + options.token_file + " is empty");
      return std::nullopt;
    }
  } else if (const char* env = std::getenv("USHER_TOKEN")) {
    token = trim(env);
  }
  return ApiClient(std::move(url.value()), std::move(token));
}

}  // namespace

void add_common_options(CLI::App& cmd, CommonOptions& options) {
  cmd.add_option("--db", options.db,
                 "read this saga log directly, a SQLite file or a postgresql:// URI (read-only; works while a server "
                 "runs or is down)");
  cmd.add_option("--server", options.server, "trigger API URL (default: $USHER_SERVER, else http://127.0.0.1:8080)");
  cmd.add_option("--token-file", options.token_file,
                 "file holding the API bearer token; without it, $USHER_TOKEN holds the token itself");
  cmd.add_flag("--json", options.json, "print the JSON the API returns instead of a table");
}

namespace {

// Leaves a word that a POSIX shell reads as itself alone; quotes any other.
std::string shell_word(const std::string& text) {
  const bool plain = !text.empty() && text.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                              "0123456789_-./:@%+=,") == std::string::npos;
  if (plain) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

std::string follow_up_command(const CommonOptions& options, const std::string& args) {
  std::string command = "usher " + args;
  if (!options.db.empty()) command += " --db " + shell_word(options.db);
  if (!options.server.empty()) command += " --server " + shell_word(options.server);
  if (!options.token_file.empty()) command += " --token-file " + shell_word(options.token_file);
  return command;
}

std::unique_ptr<SagaSource> open_source(const CommonOptions& options, Answer& failure) {
  if (!options.db.empty() && !options.server.empty()) {
    failure = Answer::fail(kExitUsage, "give --db or --server, not both");
    return nullptr;
  }
  if (!options.db.empty()) {
    const std::string shown = describe_saga_log(options.db);
    std::error_code ec;
    if (!is_postgres_location(options.db) && !std::filesystem::is_regular_file(options.db, ec)) {
      failure = Answer::fail(kExitUnreachable, "cannot open database " + shown + ": no such file");
      return nullptr;
    }
    auto inspector = LogInspector::open(options.db, /*read_only=*/true);
    if (!inspector.is_ok()) {
      failure = Answer::fail(kExitUnreachable, "cannot open database " + shown + ": " + inspector.status().message());
      return nullptr;
    }
    return std::make_unique<DbSource>(std::move(inspector.value()));
  }
  auto client = make_client(options, failure);
  if (!client) return nullptr;
  return std::make_unique<ServerSource>(std::move(*client));
}

std::optional<ApiClient> connect_server(const CommonOptions& options, const char* command, Answer& failure) {
  if (!options.db.empty()) {
    failure = Answer::fail(kExitUsage, std::string("`usher ") + command +
                                           "` changes a saga, which only the server may do: use --server URL "
                                           "(--db opens the log read-only)");
    return std::nullopt;
  }
  return make_client(options, failure);
}

Answer answer_from(const Result<HttpResponse>& response) {
  if (!response.is_ok()) return Answer::fail(kExitUnreachable, response.status().message());
  const HttpResponse& res = response.value();
  Json body = Json::parse(res.body, nullptr, /*allow_exceptions=*/false);
  if (res.status >= 200 && res.status < 300) {
    if (body.is_discarded()) return Answer::fail(kExitUnreachable, "the server answered " +
                                                                       std::to_string(res.status) +
                                                                       " with a body that is not JSON");
    return Answer::success(std::move(body));
  }
  // A problem document (RFC 9457): `detail` says what went wrong, `title` names it.
  std::string why;
  if (body.is_object()) {
    if (auto d = body.find("detail"); d != body.end() && d->is_string()) why = d->get<std::string>();
    else if (auto t = body.find("title"); t != body.end() && t->is_string()) why = t->get<std::string>();
  }
  if (why.empty()) why = res.body.empty() ? "no details" : res.body.substr(0, 200);
  std::string message = why + " (HTTP " + std::to_string(res.status) + ")";
  if (res.status == 401) message += "; give the token in a file with --token-file F, or itself in $USHER_TOKEN";
  if (res.status == 403) message += "; this token may only read: act with the server's token_file token";
  return Answer::fail(res.status >= 500 ? kExitUnreachable : kExitProblem, message);
}

int report(const Answer& answer) {
  // An error may quote a saga's values (a server's problem detail).
  if (!answer.ok()) std::cerr << "usher: " << printable(answer.error) << "\n";
  return answer.exit_code;
}

int guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const Json::exception& e) {
    return report(Answer::fail(kExitUnreachable, std::string("unexpected JSON: ") + e.what()));
  } catch (const std::exception& e) {
    return report(Answer::fail(kExitProblem, e.what()));
  }
}

void print_json(const Json& json) {
  // JSON escapes C0 controls in strings but leaves DEL and C1 raw: each line
  // made printable (the line breaks of the indentation are kept).
  std::istringstream lines(json.dump(2, ' ', false, Json::error_handler_t::replace));
  for (std::string line; std::getline(lines, line);) std::cout << printable(line) << "\n";
}

}  // namespace usher::cli
