// The Kafka wire contract of DESIGN.md section 3 in one place: header names,
// the correlation id, and what a reply value means. No librdkafka here, so
// the classification of every reply is tested without a broker; the adapter
// and the step-service helper only move bytes and call these.
//
// A reply value is JSON:
//   {"status":"ok","output":{...}}    -> kOk, output ({} when absent or null)
//   {"status":"failed","error":"..."} -> kFailed (business failure, compensate)
//   {"status":"retry"}                -> kTransient (retry per policy; an
//                                        optional "error" is kept for people)
// Anything else (not JSON, not an object, unknown status, output not an
// object, error not a string) is kTransient with an error naming the step, so
// a broken service is retried and finally compensated, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "usher/adapter.h"

namespace usher::kafka_wire {

// Request headers (all of them on every request) and the reply's one
// required header, usher-correlation-id.
inline constexpr const char* kSagaId = "usher-saga-id";
inline constexpr const char* kStep = "usher-step";
inline constexpr const char* kOperation = "usher-operation";
inline constexpr const char* kKind = "usher-kind";  // "action" | "compensate"
inline constexpr const char* kAttempt = "usher-attempt";
inline constexpr const char* kCorrelationId = "usher-correlation-id";
inline constexpr const char* kReplyTo = "usher-reply-to";
inline constexpr const char* kIdempotencyKey = "idempotency-key";

// Where replies go when a service sets no reply_topic.
inline constexpr const char* kDefaultReplyTopic = "usher.replies";

// "{sagaId}:{step}:{kind}:{attempt}:{nonce}": readable in a topic dump, and
// unique per attempt because `nonce` is unique per adapter instance and call
// (see KafkaStepAdapter), so a reply to an earlier attempt or to another
// engine never matches this one.
std::string correlation_id(const StepCall& call, std::string_view nonce);

// `step "pay" (payments.charge)`: how errors name the attempt they are about.
std::string step_label(const StepCall& call);

// Classifies a reply value as the header comment says. Never throws. `label`
// (from step_label) prefixes the errors of malformed replies.
StepResult parse_reply(std::string_view value, std::string_view label);

// The reply values a step service sends, built here so that the helper and
// the parser cannot disagree.
std::string ok_reply(const Json& output);
std::string failed_reply(std::string_view error);
std::string retry_reply(std::string_view error = {});

// "5s", "250ms", "1.5s", for "no reply within 5s".
std::string format_duration(Millis d);

// At most `max` bytes of `text` for a log or error message, control
// characters replaced by spaces and "..." appended when cut.
std::string excerpt(std::string_view text, size_t max = 120);

}  // namespace usher::kafka_wire
