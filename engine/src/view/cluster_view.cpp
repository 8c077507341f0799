#include "view/cluster_view.h"

#include "usher/inspect.h"

namespace usher {

Json cluster_to_json(int64_t self, const std::vector<NodeRow>& nodes) {
  Json list = Json::array();
  for (const NodeRow& n : nodes) {
    list.push_back({{"id", n.id},
                    {"name", n.name},
                    {"address", n.address.empty() ? Json(nullptr) : Json(n.address)},
                    {"started_at", format_time(n.started_at)},
                    {"lease_until", format_time(n.lease_until)},
                    {"status", n.live ? "live" : n.stopped ? "stopped" : "lapsed"},
                    {"sagas_owned", n.sagas_owned}});
  }
  return {{"node", self ? Json(self) : Json(nullptr)}, {"nodes", std::move(list)}};
}

}  // namespace usher
