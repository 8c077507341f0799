// What append() and store_definition() hand a store's writer thread, and the
// rules both stores (SQLite, PostgreSQL) apply to it: one append is one group,
// written entirely or not at all.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/saga_store.h"
#include "store/write_queue.h"

namespace usher {

struct DefinitionRecord {
  std::string hash;
  std::string workflow;
  int64_t version = 0;
  std::string source;
};

// An event as a writer sends it: its data already serialised by the caller
// (the engine thread has time to spare; the writer is the busiest thread).
struct EncodedEvent {
  std::string saga_id;
  int64_t seq = 0;
  EventType type = EventType::kSagaStarted;
  std::string step;
  std::string data;  // JSON text
  int64_t occurred_at = 0;
  int64_t causation_seq = 0;
};

struct AppendGroup {
  std::vector<EncodedEvent> events;
  std::vector<SagaRow> rows;
  std::optional<DefinitionRecord> definition;
  std::function<void(Status)> done;
};

// How many groups a batch may fail one at a time (for their own content)
// before the writer stops redoing the batch and commits the rest one group
// per transaction.
inline constexpr size_t kMaxExclusions = 8;

// The events with their data as JSON text. A string that is not UTF-8 (from
// an in-process handler) is written with U+FFFD rather than making the event
// unwritable; data that still cannot be written is kInvalidArgument.
Result<std::vector<EncodedEvent>> encode_events(std::vector<Event> events);

// A group's own content was refused (a duplicate key, data that cannot be
// written, a seq that does not continue the log, a saga another node now
// owns): retrying it cannot succeed,
// and the other groups of its batch are not to blame.
bool is_group_fault(const Status& s);

// Runs a group's callback, if it has one.
void finish(std::function<void(Status)>& done, Status status);

// Queues `group`; a closed queue fails it at once with kUnavailable naming `where`.
void enqueue(WriteQueue<AppendGroup>& queue, AppendGroup group, const std::string& where);

// Stores a definition through the writer like any append, so it is serialised
// with the batches and durable when this returns. Refused from the writer
// thread (`writer`), where it would wait for itself.
Status write_definition(WriteQueue<AppendGroup>& queue, std::thread::id writer, DefinitionRecord definition,
                        const std::string& where);

}  // namespace usher
