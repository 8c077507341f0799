// usher-example-services as a child process on ephemeral ports, driven through
// the HTTP step adapter (which also reads its control and log endpoints).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "call_helpers.h"
#include "http/step/http_step_adapter.h"

using namespace usher;
using namespace usher::test;
using namespace std::chrono_literals;

namespace {

// Starts the services with every port 0 and reads the ports line. The
// destructor sends SIGTERM and checks the process exits 0, soon.
class ExampleServices {
 public:
  explicit ExampleServices(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {USHER_BINARY_DIR "/examples/services/usher-example-services",
                                     "--seats-port", "0", "--payments-port", "0",
                                     "--tickets-port", "0", "--notifier-port", "0",
                                     "--listen", "127.0.0.1"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe functions
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    REQUIRE_MESSAGE(line.find('\n') != std::string::npos, "no ports line from usher-example-services");
    ports_ = Json::parse(line);
  }

  ~ExampleServices() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; ++i) {  // 5 s
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    FAIL_CHECK("usher-example-services did not stop within 5 s of SIGTERM");
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }

  std::string url(const std::string& service) const {
    return "http://127.0.0.1:" + std::to_string(ports_.at(service).get<int>());
  }
  const Json& ports() const { return ports_; }

 private:
  pid_t pid_ = -1;
  Json ports_;
};

StepCall service_call(const ExampleServices& s, const std::string& service, const std::string& operation,
                      Json body, const std::string& key) {
  StepCall c = make_call(s.url(service), service, operation, operation);
  c.body = std::move(body);
  c.idempotency_key = key;
  return c;
}

// The service's own endpoints, reached through the adapter as plain calls.
Json control(HttpStepAdapter& a, const ExampleServices& s, const std::string& service, Json body) {
  StepResult r = call_sync(a, service_call(s, service, "_control", std::move(body), ""));
  REQUIRE_MESSAGE(r.outcome == Outcome::kOk, r.error);
  return r.output;
}
Json request_log(HttpStepAdapter& a, const ExampleServices& s, const std::string& service) {
  StepCall c = service_call(s, service, "_requests", Json::object(), "");
  c.http_method = "GET";
  c.http_path = "/_requests";
  StepResult r = call_sync(a, std::move(c));
  REQUIRE_MESSAGE(r.outcome == Outcome::kOk, r.error);
  return r.output;
}

Json statuses(const Json& log) {
  Json out = Json::array();
  for (const auto& e : log) out.push_back(e.at("status"));
  return out;
}

}  // namespace

TEST_CASE("the example services print their ports and serve the ticketing operations") {
  ExampleServices services;
  for (const char* name : {"seats", "payments", "tickets", "notifier"})
    CHECK(services.ports().at(name).get<int>() > 0);
  HttpStepAdapter adapter;

  StepResult hold = call_sync(adapter, service_call(services, "seats", "hold",
                                                    {{"concertId", "C-1"}, {"seat", "A1"}}, "s1:reserve:action"));
  REQUIRE(hold.outcome == Outcome::kOk);
  const std::string hold_id = hold.output.at("holdId");
  StepResult pay = call_sync(adapter, service_call(services, "payments", "charge",
                                                   {{"userId", "u1"}, {"amount", 120}, {"reference", "s1"}},
                                                   "s1:pay:action"));
  REQUIRE(pay.outcome == Outcome::kOk);
  const std::string payment_id = pay.output.at("paymentId");
  StepResult issue = call_sync(adapter, service_call(services, "tickets", "issue",
                                                     {{"holdId", hold_id}, {"paymentId", payment_id}},
                                                     "s1:confirm:action"));
  REQUIRE(issue.outcome == Outcome::kOk);
  CHECK(issue.output.contains("ticketId"));
  StepResult send = call_sync(adapter, service_call(services, "notifier", "send",
                                                    {{"userId", "u1"}, {"ticketId", issue.output.at("ticketId")}},
                                                    "s1:notify:action"));
  CHECK(send.outcome == Outcome::kOk);
  CHECK(send.output == Json::object());

  SUBCASE("compensations answer too, and the log keeps arrival order") {
    CHECK(call_sync(adapter, service_call(services, "payments", "refund", {{"paymentId", payment_id}},
                                          "s1:pay:compensate")).outcome == Outcome::kOk);
    CHECK(call_sync(adapter, service_call(services, "seats", "release", {{"holdId", hold_id}},
                                          "s1:reserve:compensate")).outcome == Outcome::kOk);
    Json log = request_log(adapter, services, "payments");
    REQUIRE(log.size() == 2);
    CHECK(log[0].at("operation") == "charge");
    CHECK(log[1].at("operation") == "refund");
    CHECK(log[1].at("idempotency_key") == "s1:pay:compensate");
    CHECK(log[1].at("saga_id") == "0190a1b2-0000-7000-8000-000000000001");
    CHECK(log[1].at("step") == "refund");
    CHECK(log[1].at("attempt") == 2);
    CHECK(log[1].at("status") == 200);
  }
  SUBCASE("a missing field is a 400, a business failure") {
    StepResult r = call_sync(adapter, service_call(services, "seats", "hold", {{"seat", "A1"}}, "s2:reserve:action"));
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(r.error == R"(seats.hold: 400 {"error":"field \"concertId\" is required"})");
  }
  SUBCASE("an unknown operation is a 404") {
    StepResult r = call_sync(adapter, service_call(services, "seats", "teleport", Json::object(), "k"));
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(r.error == R"(seats.teleport: 404 {"error":"service seats has no operation \"teleport\""})");
  }
}

TEST_CASE("a repeated Idempotency-Key gets the first answer and does nothing again") {
  ExampleServices services;
  HttpStepAdapter adapter;
  const Json body = {{"concertId", "C-1"}, {"seat", "B2"}};
  StepResult first = call_sync(adapter, service_call(services, "seats", "hold", body, "s9:reserve:action"));
  StepResult again = call_sync(adapter, service_call(services, "seats", "hold", body, "s9:reserve:action"));
  StepResult other = call_sync(adapter, service_call(services, "seats", "hold", body, "s10:reserve:action"));
  REQUIRE(first.outcome == Outcome::kOk);
  CHECK(again.output == first.output);
  CHECK(other.output.at("holdId") != first.output.at("holdId"));

  Json log = request_log(adapter, services, "seats");
  REQUIRE(log.size() == 3);
  CHECK(log[0].at("replayed") == false);
  CHECK(log[1].at("replayed") == true);
  CHECK(log[1].at("idempotency_key") == "s9:reserve:action");
  CHECK(log[2].at("replayed") == false);

  SUBCASE("a declined charge is replayed as declined") {
    const Json charge = {{"userId", "u"}, {"amount", 10}, {"reference", "s9"}};
    control(adapter, services, "payments", {{"operation", "charge"}, {"mode", "decline"}, {"count", 1}});
    StepResult a = call_sync(adapter, service_call(services, "payments", "charge", charge, "s9:pay:action"));
    StepResult b = call_sync(adapter, service_call(services, "payments", "charge", charge, "s9:pay:action"));
    CHECK(a.outcome == Outcome::kFailed);
    CHECK(b.error == a.error);
  }
  SUBCASE("reset clears the log") {
    StepCall reset = service_call(services, "seats", "_requests", Json::object(), "");
    reset.http_path = "/_requests/reset";
    REQUIRE(call_sync(adapter, std::move(reset)).outcome == Outcome::kOk);
    CHECK(request_log(adapter, services, "seats") == Json::array());
  }
}

TEST_CASE("payments.charge declines amounts over 1000 without any switch") {
  ExampleServices services;
  HttpStepAdapter adapter;
  StepResult r = call_sync(adapter, service_call(services, "payments", "charge",
                                                 {{"userId", "u"}, {"amount", 1001}, {"reference", "s"}}, "k1"));
  CHECK(r.outcome == Outcome::kFailed);
  CHECK(r.error == R"(payments.charge: 422 {"error":"card declined"})");
  r = call_sync(adapter, service_call(services, "payments", "charge",
                                      {{"userId", "u"}, {"amount", 1000}, {"reference", "s"}}, "k2"));
  CHECK(r.outcome == Outcome::kOk);
}

TEST_CASE("fault switches make an operation decline, fail transiently or hang") {
  ExampleServices services;
  HttpStepAdapter adapter;
  const Json issue = {{"holdId", "H-1"}, {"paymentId", "P-1"}};

  SUBCASE("decline until set back to ok") {
    control(adapter, services, "tickets", {{"operation", "issue"}, {"mode", "decline"}});
    for (const char* key : {"a", "b"}) {
      StepResult r = call_sync(adapter, service_call(services, "tickets", "issue", issue, key));
      CHECK(r.outcome == Outcome::kFailed);
      CHECK(r.error == R"(tickets.issue: 422 {"error":"issue declined"})");
    }
    control(adapter, services, "tickets", {{"operation", "issue"}, {"mode", "ok"}});
    CHECK(call_sync(adapter, service_call(services, "tickets", "issue", issue, "c")).outcome == Outcome::kOk);
  }
  SUBCASE("transient for the next 2 calls, then the same key succeeds") {
    control(adapter, services, "tickets", {{"operation", "issue"}, {"mode", "transient"}, {"count", 2}});
    for (int attempt = 1; attempt <= 3; ++attempt) {
      StepCall c = service_call(services, "tickets", "issue", issue, "s1:confirm:action");
      c.attempt = static_cast<uint32_t>(attempt);
      StepResult r = call_sync(adapter, std::move(c));
      if (attempt < 3) {
        CHECK(r.outcome == Outcome::kTransient);
        CHECK(r.error == R"(tickets.issue: 503 {"error":"tickets is temporarily unavailable"})");
      } else {
        CHECK(r.outcome == Outcome::kOk);
      }
    }
    Json log = request_log(adapter, services, "tickets");
    CHECK(statuses(log) == Json{503, 503, 200});
    CHECK(log[2].at("attempt") == 3);
  }
  SUBCASE("hang: no answer, the client times out") {
    control(adapter, services, "notifier", {{"operation", "send"}, {"mode", "hang"}, {"count", 1}});
    StepCall c = service_call(services, "notifier", "send", {{"userId", "u"}, {"ticketId", "T-1"}}, "h");
    c.timeout = 300ms;
    StepResult r = call_sync(adapter, std::move(c));
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.error == "step \"send\": no answer within 300ms");
    Json log = request_log(adapter, services, "notifier");
    REQUIRE(log.size() == 1);
    CHECK(log[0].at("status").is_null());
  }
  SUBCASE("an unknown operation or mode is refused") {
    StepResult r = call_sync(adapter, service_call(services, "tickets", "_control",
                                                   {{"operation", "nope"}, {"mode", "decline"}}, ""));
    CHECK(r.outcome == Outcome::kFailed);
    r = call_sync(adapter, service_call(services, "tickets", "_control",
                                        {{"operation", "issue"}, {"mode", "explode"}}, ""));
    CHECK(r.error == R"(tickets._control: 400 {"error":"mode must be ok, decline, transient or hang"})");
  }
}

TEST_CASE("--fail sets a switch at startup") {
  ExampleServices services({"--fail", "payments.charge=transient:1", "--fail", "seats.hold=decline"});
  HttpStepAdapter adapter;
  const Json charge = {{"userId", "u"}, {"amount", 5}, {"reference", "s"}};
  CHECK(call_sync(adapter, service_call(services, "payments", "charge", charge, "k")).outcome == Outcome::kTransient);
  CHECK(call_sync(adapter, service_call(services, "payments", "charge", charge, "k")).outcome == Outcome::kOk);
  StepResult r = call_sync(adapter, service_call(services, "seats", "hold", {{"concertId", 1}, {"seat", "A"}}, "h"));
  CHECK(r.error == R"(seats.hold: 422 {"error":"seat not available"})");
}
