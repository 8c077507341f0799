// usher-example-services: the four ticketing step services of the shipped
// workflows (seats, payments, tickets, notifier), each on its own port, in one
// process with one I/O thread. At startup it prints the bound ports as one
// JSON line, e.g. {"seats":7101,"payments":7102,"tickets":7103,"notifier":7104},
// so tests can ask for port 0 and read the real ports back.
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "http_server.h"
#include "step_service.h"

namespace {

namespace asio = boost::asio;
using usher::examples::Json;
using usher::examples::StepService;

constexpr const char* kFooter = R"(
Operations (POST /{operation}, JSON in and out):
  seats     hold {concertId, seat} -> {holdId}   release {holdId}
            hold-block {concertId, seats[], groupName} -> {holdId}
            hold-parking {concertId, spaces} -> {holdId}   free {concertId, seat}
  payments  charge {userId, amount, reference[, card]} -> {paymentId[, cardLast4]}   refund {paymentId}
            adjust {userId, amount, reference} -> {adjustmentId}   reverse {adjustmentId}
            charge and adjust DECLINE (422 {"error":"card declined"}) when amount > 1000
  tickets   issue {holdId, paymentId} -> {ticketId}   void {ticketId}   reinstate {ticketId}
  notifier  send {userId, ticketId} -> {}
A repeated Idempotency-Key gets the first final answer again, and nothing is done twice.

Every service also serves:
  POST /_control {"operation":"charge","mode":"decline|transient|hang|ok","count":N}
       decline: 422; transient: 503; hang: never answer; for the next N calls (no count: until "ok")
  GET  /_requests         the request log, in arrival order
  POST /_requests/reset   clears it
--fail SERVICE.OPERATION=MODE[:N] does what /_control does, at startup, e.g.
  --fail payments.charge=transient:2  --fail tickets.issue=decline
--latency 20-150 delays every operation's answer by 20 to 150 ms (the effect is immediate).
Stops on SIGTERM or SIGINT: stops accepting, finishes responses in progress, exits 0.
)";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"usher example step services: seats, payments, tickets, notifier"};
  app.footer(kFooter);
  std::string listen = "127.0.0.1";
  unsigned short seats_port = 7101, payments_port = 7102, tickets_port = 7103, notifier_port = 7104;
  std::vector<std::string> fails;
  double idle_timeout_s = 30;
  size_t body_limit = 64 << 10;
  app.add_option("--listen", listen, "address to listen on")->capture_default_str();
  app.add_option("--seats-port", seats_port, "port of the seats service (0: any free port)")->capture_default_str();
  app.add_option("--payments-port", payments_port, "port of the payments service (0: any)")->capture_default_str();
  app.add_option("--tickets-port", tickets_port, "port of the tickets service (0: any)")->capture_default_str();
  app.add_option("--notifier-port", notifier_port, "port of the notifier service (0: any)")->capture_default_str();
  app.add_option("--fail", fails, "SERVICE.OPERATION=MODE[:N], MODE is decline|transient|hang|ok");
  app.add_option("--idle-timeout", idle_timeout_s, "seconds a keep-alive connection may stay idle")
      ->capture_default_str();
  app.add_option("--body-limit", body_limit, "largest request body in bytes")->capture_default_str();
  std::string latency;
  app.add_option("--latency", latency, "MIN-MAX: delay every operation's answer by MIN to MAX ms (e.g. 20-150)");
  CLI11_PARSE(app, argc, argv);
  std::chrono::milliseconds latency_min{0}, latency_max{0};
  if (!latency.empty()) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream in(latency);
    if (!(in >> lo >> dash >> hi) || dash != '-' || !in.eof() || lo > hi || hi > 600'000) {
      std::cerr << "--latency " << latency << ": expected MIN-MAX in milliseconds, e.g. 20-150\n";
      return 2;
    }
    latency_min = std::chrono::milliseconds(lo);
    latency_max = std::chrono::milliseconds(hi);
  }

  std::vector<std::unique_ptr<StepService>> services;
  auto add = [&](const char* name, void (*ops)(StepService&)) {
    services.push_back(std::make_unique<StepService>(name));
    ops(*services.back());
  };
  add("seats", &usher::examples::add_seats_operations);
  add("payments", &usher::examples::add_payments_operations);
  add("tickets", &usher::examples::add_tickets_operations);
  add("notifier", &usher::examples::add_notifier_operations);
  for (size_t i = 0; i < services.size(); ++i)
    services[i]->set_latency(latency_min, latency_max, static_cast<uint32_t>(std::random_device{}() + i));

  for (const std::string& spec : fails) {
    // SERVICE.OPERATION=MODE[:N]
    const size_t dot = spec.find('.'), eq = spec.find('=');
    if (dot == std::string::npos || eq == std::string::npos || eq < dot) {
      std::cerr << "--fail " << spec << ": expected SERVICE.OPERATION=MODE[:N]\n";
      return 2;
    }
    std::string service = spec.substr(0, dot), operation = spec.substr(dot + 1, eq - dot - 1);
    std::string mode_text = spec.substr(eq + 1);
    int64_t count = -1;
    if (size_t colon = mode_text.find(':'); colon != std::string::npos) {
      try {
        count = std::stoll(mode_text.substr(colon + 1));
      } catch (const std::exception&) {
        count = -2;
      }
      mode_text.resize(colon);
      if (count < 0) {
        std::cerr << "--fail " << spec << ": N must be a non-negative integer\n";
        return 2;
      }
    }
    auto mode = usher::examples::parse_fault_mode(mode_text);
    if (!mode) {
      std::cerr << "--fail " << spec << ": MODE must be decline, transient, hang or ok\n";
      return 2;
    }
    StepService* target = nullptr;
    for (auto& s : services)
      if (s->name() == service) target = s.get();
    if (!target) {
      std::cerr << "--fail " << spec << ": no service \"" << service << "\"\n";
      return 2;
    }
    if (auto error = target->set_fault(operation, *mode, count)) {
      std::cerr << "--fail " << spec << ": " << *error << "\n";
      return 2;
    }
  }

  asio::io_context io;
  usher::examples::ServerLimits limits;
  limits.body_limit = body_limit;
  limits.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(idle_timeout_s * 1000));
  std::vector<std::unique_ptr<usher::examples::ServiceServer>> servers;
  nlohmann::ordered_json ports = nlohmann::ordered_json::object();  // in flag order
  const unsigned short wanted[] = {seats_port, payments_port, tickets_port, notifier_port};
  try {
    const auto address = asio::ip::make_address(listen);
    for (size_t i = 0; i < services.size(); ++i) {
      servers.push_back(std::make_unique<usher::examples::ServiceServer>(
          io, *services[i], asio::ip::tcp::endpoint(address, wanted[i]), limits));
      ports[services[i]->name()] = servers.back()->port();
    }
  } catch (const std::exception& e) {
    std::cerr << "usher-example-services: cannot listen on " << listen << ": " << e.what() << "\n";
    return 1;
  }
  for (auto& s : servers) s->start();
  std::cout << ports.dump() << std::endl;  // the line tests wait for; endl flushes it

  // On a signal: stop every server; responses in progress finish. Every 10 ms
  // we look whether the last connection is gone, and give up waiting after 2 s
  // so a stuck write cannot hold the exit.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer drain(io);
  int drain_ticks = 200;
  std::function<void()> wait_drained = [&] {
    bool idle = true;
    for (auto& s : servers) idle = idle && s->idle();
    if (idle || --drain_ticks <= 0) {
      io.stop();
      return;
    }
    drain.expires_after(std::chrono::milliseconds(10));
    drain.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) wait_drained();
    });
  };
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    for (auto& s : servers) s->stop();
    wait_drained();
  });
  io.run();
  return 0;
}
