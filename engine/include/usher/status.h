// Errors as values. Exceptions thrown by yaml-cpp, SQLite wrappers or the JSON
// parser are caught at the boundary of the module that calls them and turned
// into a Status, so callers of the public API never see an exception.
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace usher {

// The codes say what the caller should do next, in the manner of absl::Status:
// kUnavailable may succeed if tried again; kInvalidArgument and
// kFailedPrecondition will not succeed until something else changes.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the request itself is wrong (bad JSON, schema violation)
  kNotFound,            // unknown saga, workflow or step
  kAlreadyExists,       // e.g. a definition with the same name and version but other content
  kFailedPrecondition,  // the saga is in the wrong state for this action (cancel after the pivot)
  kUnavailable,         // storage or a dependency failed; retrying later may work
  kDataLoss,            // the log is corrupt or of a newer schema version
  kInternal,            // a bug in usher
  kAborted,             // a write lost a race with an earlier one (a saga's events after a failed append)
  kNotOwner,            // this node no longer owns the saga: another node took it over, or its lease lapsed
};

const char* status_code_name(StatusCode code);

// One way a value breaks a JSON Schema: where, as a JSON pointer into the
// value ("" for the value itself), and what, e.g. "must be >= 1".
struct Violation {
  std::string pointer;
  std::string message;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  // kInvalidArgument for an input that breaks a schema, carrying each violation.
  static Status invalid_input(std::string m, std::vector<Violation> violations) {
    Status s{StatusCode::kInvalidArgument, std::move(m)};
    s.violations_ = std::make_shared<const std::vector<Violation>>(std::move(violations));
    return s;
  }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status already_exists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status failed_precondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status data_loss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
  static Status not_owner(std::string m) { return {StatusCode::kNotOwner, std::move(m)}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The schema violations of an invalid_input(); empty for every other status.
  const std::vector<Violation>& violations() const {
    static const std::vector<Violation> kNone;
    return violations_ ? *violations_ : kNone;
  }
  // "not_found: saga 0190… does not exist"
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::shared_ptr<const std::vector<Violation>> violations_;  // shared: a Status is copied freely
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).is_ok()); }  // NOLINT

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }

  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace usher
