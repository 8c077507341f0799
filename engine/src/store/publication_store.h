// Where a publisher of the event feed (the Kafka publication of `publish:` in
// usher.yaml, docs/event-feed.md) keeps its position: in the saga log itself,
// one row per publication, so that a restarted publisher, or another node's,
// goes on from the last event the broker acknowledged.
//
// A publication is named by where it goes ("kafka:usher.saga-events"). Its
// position is a feed position (CommittedEvent::position): every event up to
// and including it has been published.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "usher/status.h"

namespace usher {

// One connection. Not thread-safe: the publisher's thread alone uses it.
class PublicationStore {
 public:
  virtual ~PublicationStore() = default;

  // Makes this connection the publication's only publisher, if no other
  // holds it: true when it does (again, if it already did). On PostgreSQL a
  // session advisory lock keyed by the name, which the server releases when
  // the connection closes or is found dead (TCP keepalives of a few seconds
  // are set on it), so a node that dies leaves the publication to the next
  // one that claims it. On SQLite always true: one process has the log.
  // The lock goes with its connection: a claim asked again on a connection
  // that was lost reconnects and really claims anew (false if another node
  // has taken the publication meanwhile), so a publisher asks it before each
  // batch it publishes, and after any error.
  virtual Result<bool> claim(const std::string& name) = 0;

  // The stored position of `name`; 0 when it has none (from the start).
  virtual Result<int64_t> position(const std::string& name) = 0;

  // Stores `position` for `name`, durably, before it returns. Only forward:
  // a position lower than the stored one leaves it as it is. A connection
  // lost during the save is kUnavailable (whether it was stored is unknown;
  // saving it again is harmless).
  virtual Status save(const std::string& name, int64_t position) = 0;
};

// A new connection on the log at `location` (a SQLite file or a
// postgresql:// URI), whose schema must be current.
Result<std::unique_ptr<PublicationStore>> open_publication_store(const std::string& location);

}  // namespace usher
