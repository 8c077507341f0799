#include "store/log_codec.h"

#include <initializer_list>

namespace usher::codec {
namespace {

std::string text_of(const sqlite::Statement& stmt, int col) { return std::string(stmt.text(col)); }

std::string join(std::initializer_list<const char*> names, std::string_view prefix) {
  std::string out;
  for (const char* name : names) {
    if (!out.empty()) out += ", ";
    out += prefix;
    out += name;
  }
  return out;
}

}  // namespace

std::string saga_columns(std::string_view prefix) {
  return join({"id", "workflow", "version", "definition_hash", "status", "current_step", "idempotency_key",
               "correlation_id", "created_at", "updated_at", "deadline", "last_error", "last_seq"},
              prefix);
}

std::string event_columns(std::string_view prefix) {
  return join({"seq", "type", "step", "data", "occurred_at", "causation_seq"}, prefix);
}

void bind_saga_row(sqlite::Statement& stmt, const SagaRow& row) {
  stmt.bind(1, row.id);
  stmt.bind(2, row.workflow);
  stmt.bind(3, row.version);
  stmt.bind(4, row.definition_hash);
  stmt.bind(5, saga_status_name(row.status));
  stmt.bind_or_null(6, row.current_step);
  stmt.bind_or_null(7, row.idempotency_key);
  stmt.bind_or_null(8, row.correlation_id);
  stmt.bind(9, row.created_at);
  stmt.bind(10, row.updated_at);
  if (row.deadline) {
    stmt.bind(11, *row.deadline);
  } else {
    stmt.bind_null(11);
  }
  stmt.bind_or_null(12, row.last_error);
  stmt.bind(13, row.last_seq);
}

Status read_saga_row(const sqlite::Statement& stmt, int first, SagaRow& row) {
  row.id = text_of(stmt, first + 0);
  row.workflow = text_of(stmt, first + 1);
  row.version = stmt.int64(first + 2);
  row.definition_hash = text_of(stmt, first + 3);
  auto status = parse_saga_status(stmt.text(first + 4));
  if (!status) {
    return Status::data_loss("saga " + row.id + " has unknown status \"" + text_of(stmt, first + 4) + "\"");
  }
  row.status = *status;
  row.current_step = text_of(stmt, first + 5);
  row.idempotency_key = text_of(stmt, first + 6);
  row.correlation_id = text_of(stmt, first + 7);
  row.created_at = stmt.int64(first + 8);
  row.updated_at = stmt.int64(first + 9);
  row.deadline = stmt.is_null(first + 10) ? std::nullopt : std::optional<int64_t>(stmt.int64(first + 10));
  row.last_error = text_of(stmt, first + 11);
  row.last_seq = stmt.int64(first + 12);
  return Status::ok();
}

Status read_event(const sqlite::Statement& stmt, int first, std::string saga_id, Event& event) {
  event.saga_id = std::move(saga_id);
  event.seq = stmt.int64(first + 0);
  auto type = parse_event_type(stmt.text(first + 1));
  if (!type) {
    return Status::data_loss("event " + std::to_string(event.seq) + " of saga " + event.saga_id +
                             " has unknown type \"" + text_of(stmt, first + 1) + "\"");
  }
  event.type = *type;
  event.step = text_of(stmt, first + 2);
  std::string_view data = stmt.text(first + 3);
  // Parsing without exceptions: a corrupt row is a Status, not a throw.
  event.data = Json::parse(data.begin(), data.end(), nullptr, /*allow_exceptions=*/false);
  if (event.data.is_discarded()) {
    return Status::data_loss("event " + std::to_string(event.seq) + " of saga " + event.saga_id +
                             " has data that is not JSON");
  }
  event.occurred_at = stmt.int64(first + 4);
  event.causation_seq = stmt.int64(first + 5);
  return Status::ok();
}

}  // namespace usher::codec
