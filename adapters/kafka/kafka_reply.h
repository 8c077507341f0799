// The Kafka wire contract of docs/semantics.md in one place: header names,
// the correlation id, and what a reply value means. No librdkafka here, so
// the classification of every reply is tested without a broker; the adapter
// and the step-service helper only move bytes and call these.
//
// A reply value is JSON (UTF-8, RFC 8259):
//   {"status":"ok","output":{...}}    -> kOk, output ({} when absent or null;
//                                        {} and a note when not an object)
//   {"status":"failed","error":"..."} -> kFailed (business failure, compensate;
//                                        an "error" that is not a string is
//                                        quoted as JSON)
//   {"status":"retry"}                -> kTransient (retry per policy; an
//                                        optional "error" is kept for people)
// A value that says none of these — not UTF-8 JSON (UTF-16, Latin-1, binary),
// nested deeper than kMaxReplyDepth, not an object, no or an unknown "status"
// — is *malformed*: kTimeout, the outcome unknown, with an error naming the
// step and quoting the value. Why unknown, and not a retry or a drop: the
// reply carries the attempt's correlation id, so the service received the
// request and may have acted on it (docs/semantics.md, "What may have
// happened stays so"); kTransient would claim it did not, and kFailed that it
// definitely failed. Dropping it as "a reply that matches no waiting attempt"
// would not fit either — it does match one — and would only end the attempt
// the same way at its deadline, later and without saying why. So a broken
// service is retried and finally compensated (or its pivot left `stuck`),
// never a crash, and nothing it sends is stored except as valid UTF-8: every
// error and note is valid_utf8() of at most kMaxServiceTextBytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "usher/service_text.h"
#include "usher/adapter.h"

namespace usher::kafka_wire {

// Request headers (all of them on every request but usher-node, which is
// there when the sending engine is a node of a cluster) and the reply's one
// required header, usher-correlation-id.
inline constexpr const char* kSagaId = "usher-saga-id";
inline constexpr const char* kStep = "usher-step";
inline constexpr const char* kOperation = "usher-operation";
inline constexpr const char* kKind = "usher-kind";  // "action" | "compensate"
inline constexpr const char* kAttempt = "usher-attempt";
inline constexpr const char* kCorrelationId = "usher-correlation-id";
inline constexpr const char* kReplyTo = "usher-reply-to";
inline constexpr const char* kIdempotencyKey = "idempotency-key";
inline constexpr const char* kNode = "usher-node";  // the sending node's id (StepCall::node)

// Where replies go when a service sets no reply_topic.
inline constexpr const char* kDefaultReplyTopic = "usher.replies";

// "{sagaId}:{step}:{kind}:{attempt}:{nonce}": readable in a topic dump, and
// unique per attempt because `nonce` is unique per adapter instance and call
// (see KafkaStepAdapter), so a reply to an earlier attempt or to another
// engine never matches this one.
std::string correlation_id(const StepCall& call, std::string_view nonce);

// `step "pay" (payments.charge)`: how errors name the attempt they are about.
std::string step_label(const StepCall& call);

// How deep a reply may nest before it is not parsed at all (model/json_depth.h).
inline constexpr size_t kMaxReplyDepth = kMaxJsonDepth;
using usher::json_deeper_than;

// Classifies a reply value as the header comment says. Never throws. `label`
// (from step_label) prefixes every error.
StepResult parse_reply(std::string_view value, std::string_view label);

// The reply values a step service sends, built here so that the helper and
// the parser cannot disagree.
std::string ok_reply(const Json& output);
std::string failed_reply(std::string_view error);
std::string retry_reply(std::string_view error = {});

// At most `max` bytes of `text` for a log or error message: valid UTF-8
// (invalid bytes become U+FFFD), control characters and tabs replaced by
// spaces, cut on a character boundary with "…" when longer (the "…" counted
// in `max`).
std::string excerpt(std::string_view text, size_t max = 120);

}  // namespace usher::kafka_wire
