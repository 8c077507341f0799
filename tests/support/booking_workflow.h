// The booking workflow the tests run, written once: reserve (seats.hold) ->
// pay (payments.charge) -> confirm (tickets.issue, the pivot) -> notify
// (notifier.send, retriable), reserve and pay each with their compensation.
// Every service is in-process (`local`) except payments, which a test may put
// behind another transport. What differs between suites is a field of
// BookingWorkflow; the default is the engine tests' version. Free of doctest,
// so fuzz targets can use it too.
#pragma once

#include <string>

namespace usher::test {

struct BookingWorkflow {
  std::string saga = "booking";
  int version = 1;
  std::string description;  // a `description:` line when not empty
  // How payments is reached, e.g. R"({ kafka: { brokers: "…", topic: payments.requests } })".
  std::string payments = "{ local: {} }";
  // The input schema's `seat` (seat and amount required, amount an integer
  // from 1), e.g. "{ type: string }"; empty: the workflow has no input schema.
  std::string seat_schema = "{ type: integer, minimum: 1 }";
  std::string timeout = "2s";  // defaults.timeout, per attempt
  std::string retry = "{ attempts: 3, backoff: 1ms, max_backoff: 5ms }";
  std::string compensation_retry = "{ attempts: 3, backoff: 1ms, max_backoff: 5ms }";
  std::string pay_timeout;     // pay's own attempt timeout; empty: the default
  std::string refund_timeout;  // the same for its compensation, payments.refund
  // The bodies of the last two steps: tickets.issue gets the hold, notifier.send the ticket.
  std::string confirm_with = R"({ holdId: "${steps.reserve.output.holdId}" })";
  std::string notify_with = R"({ ticketId: "${steps.confirm.output.ticketId}" })";
  std::string notify_retry;  // notify's own retry policy; empty: the default
};

// The workflow as YAML, ending in a newline (a test may append top-level keys).
inline std::string booking_yaml(const BookingWorkflow& w = {}) {
  std::string y = "saga: " + w.saga + "\nversion: " + std::to_string(w.version) + "\n";
  if (!w.description.empty()) y += "description: " + w.description + "\n";
  y += "services:\n"
       "  seats:    { local: {} }\n"
       "  payments: " + w.payments + "\n"
       "  tickets:  { local: {} }\n"
       "  notifier: { local: {} }\n";
  if (!w.seat_schema.empty())
    y += "input:\n"
         "  type: object\n"
         "  required: [seat, amount]\n"
         "  properties:\n"
         "    seat: " + w.seat_schema + "\n"
         "    amount: { type: integer, minimum: 1 }\n";
  y += "defaults:\n"
       "  timeout: " + w.timeout + "\n"
       "  retry: " + w.retry + "\n"
       "  compensation_retry: " + w.compensation_retry + "\n"
       "steps:\n"
       "  - name: reserve\n"
       "    call: seats.hold\n"
       "    with: { seat: \"${input.seat}\" }\n"
       "    compensate:\n"
       "      call: seats.release\n"
       "      with: { holdId: \"${steps.reserve.output.holdId:-none}\" }\n"
       "  - name: pay\n"
       "    call: payments.charge\n";
  if (!w.pay_timeout.empty()) y += "    timeout: " + w.pay_timeout + "\n";
  y += "    with: { amount: \"${input.amount}\", reference: \"${saga.id}\" }\n"
       "    compensate:\n"
       "      call: payments.refund\n";
  if (!w.refund_timeout.empty()) y += "      timeout: " + w.refund_timeout + "\n";
  y += "      with: { reference: \"${saga.id}\" }\n"
       "  - name: confirm\n"
       "    type: pivot\n"
       "    call: tickets.issue\n"
       "    with: " + w.confirm_with + "\n"
       "  - name: notify\n"
       "    type: retriable\n"
       "    call: notifier.send\n"
       "    with: " + w.notify_with + "\n";
  if (!w.notify_retry.empty()) y += "    retry: " + w.notify_retry + "\n";
  return y;
}

}  // namespace usher::test
