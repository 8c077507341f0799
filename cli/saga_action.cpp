#include "saga_action.h"

#include <iostream>

#include "output.h"

namespace usher::cli {

int run_saga_action(const SagaActionOptions& o, const char* action) {
  if (o.id.empty()) return report(Answer::fail(kExitUsage, std::string("usage: usher ") + action + " ID"));
  Answer failure;
  auto client = connect_server(o.common, action, failure);
  if (!client) return report(failure);
  Answer saga = answer_from(client->request("POST", "/v1/sagas/" + url_encode(o.id) + "/" + action, std::string("{}")));
  if (!saga.ok()) return report(saga);
  if (o.common.json) {
    print_json(saga.json);
    return kExitOk;
  }
  const std::string status = string_at(saga.json, "status").value_or("?");
  std::cout << "saga " << o.id << ": " << (std::string(action) == "cancel" ? "cancel" : "retry")
            << " accepted; status " << paint(status, status_color(status));
  if (auto current = string_at(saga.json, "current_step")) std::cout << " (step " << *current << ")";
  std::cout << "\n";
  return kExitOk;
}

}  // namespace usher::cli
