// A real `usher serve` (port 0, a temp log, a bearer token) in front of the
// example step services (also port 0), running the ticket-sale workflow of
// server_test.cpp, for the tests of the commands that change sagas. Faults
// are injected into the services through their /_control route, and the
// server can be killed and started again on the same log.
#pragma once

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli_test_util.h"
#include "serve/test_http.h"
#include "support/test_store.h"
#include "usher/definition.h"

namespace usher::test {

inline constexpr const char* kTicketSaleSteps = R"(defaults:
  timeout: 2s
  retry: { attempts: 2, backoff: 10ms }
steps:
  - name: reserve
    call: seats.hold
    with: { concertId: "${input.concertId}", seat: "${input.seat}" }
    compensate: { call: seats.release, with: { holdId: "${steps.reserve.output.holdId}" } }
  - name: pay
    call: payments.charge
    with: { userId: "${input.userId}", amount: "${input.amount}", reference: "${saga.id}" }
    compensate: { call: payments.refund, with: { paymentId: "${steps.pay.output.paymentId}" } }
  - name: confirm
    type: pivot
    call: tickets.issue
    with: { holdId: "${steps.reserve.output.holdId}", paymentId: "${steps.pay.output.paymentId}" }
  - name: notify
    type: retriable
    call: notifier.send
    with: { userId: "${input.userId}", ticketId: "${steps.confirm.output.ticketId}" }
)";

class ServeFixture {
 public:
  static constexpr const char* kToken = "s3cret-token";
  static constexpr const char* kReadToken = "r3ad-only-token";

  // with_read_token: the server also takes kReadToken, for reading only
  // (--read-token-file); read_token_file() names its file.
  explicit ServeFixture(bool with_read_token = false)
      : db_(saga_log_at(dir_.file("usher.db"))), with_read_token_(with_read_token) {
    services_ = std::make_unique<Child>(std::vector<std::string>{
        USHER_BINARY_DIR "/examples/services/usher-example-services", "--seats-port", "0", "--payments-port", "0",
        "--tickets-port", "0", "--notifier-port", "0"});
    auto line = services_->read_line();
    REQUIRE_MESSAGE(line.has_value(), "the example services did not print their ports");
    ports_ = Json::parse(*line);
    std::filesystem::create_directories(dir_.file("workflows"));
    std::ofstream(dir_.file("workflows/ticket-sale.yaml"))
        << "saga: ticket-sale\nversion: 4\nservices:\n"
        << "  seats: { http: { url: \"" << base("seats") << "\" } }\n"
        << "  payments: { http: { url: \"" << base("payments") << "\" } }\n"
        << "  tickets: { http: { url: \"" << base("tickets") << "\" } }\n"
        << "  notifier: { http: { url: \"" << base("notifier") << "\" } }\n"
        << kTicketSaleSteps;
    std::ofstream(token_file_) << kToken << "\n";
    ::chmod(token_file_.c_str(), 0600);
    std::ofstream(read_token_file_) << kReadToken << "\n";
    ::chmod(read_token_file_.c_str(), 0600);
    start_server();
  }

  // SIGKILLs the server (nothing is flushed or handed over) and starts a new
  // one on the same log and port-0 address; url() changes.
  void restart_server() {
    server_.reset();
    start_server();
  }
  void kill_server() { server_.reset(); }

  // Makes the next `count` calls of SERVICE.OPERATION answer as `mode`
  // (decline: 422, transient: 503, hang: never; count 0: until "ok").
  void fail(const std::string& service, const std::string& operation, const std::string& mode, int count = 0) {
    Json body{{"operation", operation}, {"mode", mode}};
    if (count > 0) body["count"] = count;
    HttpReply r = request(port_of(service), http::verb::post, "/_control", body.dump(),
                          {{"Content-Type", "application/json"}});
    REQUIRE_MESSAGE(r.status / 100 == 2, "POST /_control on " << service << ": " << r.status << " " << r.body);
  }

  // The calls a service received so far (GET /_requests).
  Json requests(const std::string& service) const {
    HttpReply r = request(port_of(service), http::verb::get, "/_requests");
    REQUIRE(r.status == 200);
    return r.json();
  }

  // `--server URL --token-file F`.
  std::string server_flags() const { return "--server " + url_ + " --token-file " + shell_quote(token_file_); }
  std::string db_flags() const { return "--db " + shell_quote(db_); }
  const std::string& db() const { return db_; }
  const std::string& url() const { return url_; }
  const std::string& token_file() const { return token_file_; }
  const std::string& read_token_file() const { return read_token_file_; }
  const TempDir& dir() const { return dir_; }

 private:
  std::string base(const char* name) const { return "http://127.0.0.1:" + std::to_string(ports_[name].get<int>()); }
  uint16_t port_of(const std::string& service) const { return static_cast<uint16_t>(ports_[service].get<int>()); }

  void start_server() {
    std::vector<std::string> argv{USHER_BINARY_DIR "/cli/usher", "serve", "--db", db_, "--workflows",
                                  dir_.file("workflows"), "--listen", "127.0.0.1:0", "--token-file", token_file_,
                                  "--log-level", "warn"};
    if (with_read_token_) argv.insert(argv.end(), {"--read-token-file", read_token_file_});
    server_ = std::make_unique<Child>(argv);
    const std::string prefix = "usher: listening on ";
    for (;;) {
      auto line = server_->read_line();
      REQUIRE_MESSAGE(line.has_value(), "usher serve did not say where it listens");
      if (line->rfind(prefix, 0) == 0) {
        url_ = "http://" + line->substr(prefix.size());
        return;
      }
    }
  }

  TempDir dir_;
  std::string db_;
  std::string token_file_ = dir_.file("token");
  std::string read_token_file_ = dir_.file("read-token");
  bool with_read_token_ = false;
  Json ports_;
  std::unique_ptr<Child> services_, server_;
  std::string url_;
};

// Polls `holds` every 50 ms for up to `within`.
inline bool eventually_holds(const std::function<bool()>& holds,
                       std::chrono::milliseconds within = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (holds()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return holds();
}

inline Json parse_json_output(const CommandResult& r) {
  INFO("exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  Json j = Json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

// ` --input '{…}'` for the ticket-sale workflow.
inline std::string input(const std::string& seat, int amount = 10) {
  return " --input '{\"userId\":\"u-" + seat + "\",\"concertId\":\"c1\",\"seat\":\"" + seat +
         "\",\"amount\":" + std::to_string(amount) + "}'";
}

// Without the trailing newline (the output of `-q`).
inline std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The saga as `show --json` reads it through the API.
inline Json saga(const ServeFixture& f, const std::string& id) {
  return parse_json_output(run_usher("show --json " + id + " " + f.server_flags()));
}

// The saga's events of `type`.
inline Json events_of(const ServeFixture& f, const std::string& id, const std::string& type) {
  Json all = parse_json_output(run_usher("events --json " + id + " " + f.server_flags()));
  Json out = Json::array();
  for (const Json& e : all["events"])
    if (e["type"] == type) out.push_back(e);
  return out;
}

}  // namespace usher::test
