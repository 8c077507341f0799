#include "store/append_group.h"

#include <future>

namespace usher {

Result<std::vector<EncodedEvent>> encode_events(std::vector<Event> events) {
  std::vector<EncodedEvent> encoded;
  encoded.reserve(events.size());
  for (Event& e : events) {
    std::string data;
    try {
      data = e.data.dump(-1, ' ', false, Json::error_handler_t::replace);
    } catch (const Json::exception& ex) {
      return Status::invalid_argument("event " + std::to_string(e.seq) + " of saga " + e.saga_id +
                                      " has data that cannot be written as JSON: " + ex.what());
    }
    encoded.push_back({std::move(e.saga_id), e.seq, e.type, std::move(e.step), std::move(data), e.occurred_at,
                       e.causation_seq});
  }
  return encoded;
}

bool is_group_fault(const Status& s) {
  return s.code() == StatusCode::kAlreadyExists || s.code() == StatusCode::kInvalidArgument ||
         s.code() == StatusCode::kAborted || s.code() == StatusCode::kNotOwner;
}

void finish(std::function<void(Status)>& done, Status status) {
  if (done) done(std::move(status));
}

void enqueue(WriteQueue<AppendGroup>& queue, AppendGroup group, const std::string& where) {
  if (!queue.push(group)) finish(group.done, Status::unavailable("saga log " + where + " is closed"));
}

Status write_definition(WriteQueue<AppendGroup>& queue, std::thread::id writer, DefinitionRecord definition,
                        const std::string& where) {
  if (std::this_thread::get_id() == writer) {
    return Status::internal("store_definition called from a saga log callback would wait for itself");
  }
  std::promise<Status> written;
  std::future<Status> result = written.get_future();
  enqueue(queue, AppendGroup{{}, {}, std::move(definition), [&written](Status s) { written.set_value(std::move(s)); }},
          where);
  return result.get();
}

}  // namespace usher
