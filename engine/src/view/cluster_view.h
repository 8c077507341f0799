// The nodes sharing a log as JSON, as GET /v1/cluster and `usher nodes` show
// them (usher/engine.h, Engine::cluster()).
#pragma once

#include <cstdint>
#include <vector>

#include "store/saga_store.h"
#include "usher/saga.h"

namespace usher {

// {"node": self | null, "nodes": [{"id", "name", "address", "started_at",
// "lease_until", "status": "live"|"lapsed"|"stopped", "sagas_owned"}…]};
// self = 0: this process is not a node.
Json cluster_to_json(int64_t self, const std::vector<NodeRow>& nodes);

}  // namespace usher
