// Several engines on one saga log (PostgreSQL; docs/cluster.md): each is a
// node with a lease it renews, and each running saga is owned by one node
// under a fence, a number that grows each time the saga changes hands. The
// store's appends check both (SagaRow::owner, fence); this is the rest: join,
// renew, leave, and taking sagas over. All times are the database's clock,
// so nodes need not agree on theirs.
//
// Not thread-safe: one registry (one connection) per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "usher/status.h"

namespace usher {

// A saga this node now owns, and the fence it holds it under.
struct ClaimedSaga {
  std::string id;
  int64_t fence = 0;
};

class NodeRegistry {
 public:
  virtual ~NodeRegistry() = default;

  // Joins as a new node (ids are never reused) with a lease of `lease` from now.
  virtual Result<int64_t> join(const std::string& name, std::chrono::milliseconds lease) = 0;
  // Extends the lease to `lease` from now. False: it had lapsed (or the node
  // left); the node owns nothing any more and must join again.
  virtual Result<bool> renew(int64_t node, std::chrono::milliseconds lease) = 0;
  // Records the API address the node is reached at.
  virtual Status advertise(int64_t node, const std::string& address) = 0;
  // Ends the lease now: the node's sagas are free for the others at once.
  virtual Status leave(int64_t node) = 0;
  // Takes over up to `max` running or compensating sagas whose owner's lease
  // has ended (or that have no owner), each under a new fence; concurrent
  // claimers take disjoint sets. Nothing while `node`'s own lease is not held.
  virtual Result<std::vector<ClaimedSaga>> claim_orphans(int64_t node, size_t max) = 0;
  // Takes one unfinished saga over from whoever owns it (an operator acts on
  // it here). None when the saga is unknown, settled, or the lease not held.
  virtual Result<std::optional<ClaimedSaga>> claim(int64_t node, const std::string& saga_id) = 0;
  // Forgets nodes whose lease ended more than `age` ago and that own no
  // running saga.
  virtual Status forget_nodes_older_than(std::chrono::seconds age) = 0;
};

}  // namespace usher
