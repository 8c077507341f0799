#include "saga_action.h"

#include <iostream>
#include <vector>

#include "output.h"
#include "usher/printable.h"
#include "usher/saga.h"

namespace usher::cli {

namespace {

// The largest page GET /v1/sagas serves (limit=1..1000): a batch of thousands
// of stuck sagas is listed in a few requests.
constexpr size_t kListPage = 1000;

// "retried", for the summary line.
std::string past_tense(const std::string& action) {
  if (action == "cancel") return "cancelled";
  if (action == "retry") return "retried";
  if (action == "resolve") return "resolved";
  if (action == "terminate") return "terminated";
  return action + "ed";
}

std::string saga_path(const std::string& id, const std::string& action) {
  return "/v1/sagas/" + url_encode(id) + "/" + action;
}

// "running (step pay)": where the saga stands after the action.
std::string where_it_stands(const Json& saga) {
  const std::string status = string_at(saga, "status").value_or("?");
  std::string text = paint(status, status_color(status));
  if (auto current = string_at(saga, "current_step"); current && status != "completed" && status != "compensated" &&
                                                      status != "terminated")
    text += " (step " + *current + ")";
  return text;
}

int act_on_one(const SagaActionOptions& o, const ApiClient& client, const std::string& action, const Json& body) {
  Answer saga = answer_from(client.request("POST", saga_path(o.id, action), body.dump()));
  if (!saga.ok()) return report(saga);
  if (o.common.json) {
    print_json(saga.json);
    return kExitOk;
  }
  std::cout << "saga " << o.id << ": " << action << " accepted; status " << where_it_stands(saga.json) << "\n"
            << paint("timeline: " + follow_up_command(o.common, "show " + o.id), Color::kDim) << "\n";
  return kExitOk;
}

// Every saga the filter lists, newest first, read to the last page.
Answer list_all(const ApiClient& client, const SagaActionOptions& o, std::vector<Json>& sagas) {
  std::string after;
  for (;;) {
    std::string target = "/v1/sagas?limit=" + std::to_string(kListPage) + "&status=" + url_encode(o.status);
    if (!o.workflow.empty()) target += "&workflow=" + url_encode(o.workflow);
    if (!after.empty()) target += "&after=" + url_encode(after);
    Answer page = answer_from(client.request("GET", target));
    if (!page.ok()) return page;
    const Json& listed = page.json["sagas"];
    if (!listed.is_array()) return Answer::fail(kExitUnreachable, "the server's saga list has no \"sagas\" array");
    for (const Json& s : listed) sagas.push_back(s);
    auto next = string_at(page.json, "next");
    // A cursor that does not move would page forever.
    if (!next || listed.empty() || *next == after) return Answer::success(Json());
    after = *next;
  }
}

int dry_run(const SagaActionOptions& o, const std::string& action, const std::vector<Json>& sagas) {
  if (o.common.json) {
    Json list = Json::array();
    for (const Json& s : sagas) list.push_back({{"id", s.value("id", "")}, {"result", "not sent"},
                                                {"status", s.value("status", "")}, {"current_step", s.value("current_step", Json())}});
    print_json({{"action", action}, {"dry_run", true}, {"sagas", std::move(list)}});
    return kExitOk;
  }
  if (!sagas.empty()) {
    Table table({"ID", "WORKFLOW", "STATUS", "CURRENT STEP", "UPDATED (UTC)"});
    for (const Json& s : sagas) {
      std::string workflow = string_at(s, "workflow").value_or("-");
      if (s.contains("version") && s["version"].is_number_integer())
        workflow += " v" + std::to_string(s["version"].get<int64_t>());
      const std::string status = string_at(s, "status").value_or("-");
      table.add_row({string_at(s, "id").value_or("-"), workflow, paint(status, status_color(status)),
                     string_at(s, "current_step").value_or("-"), table_time(string_at(s, "updated_at"))});
    }
    table.print(std::cout);
  }
  std::cout << plural(static_cast<int64_t>(sagas.size()), "saga", "sagas") << " would be " << past_tense(action)
            << "; nothing was sent (--dry-run)\n";
  return kExitOk;
}

int act_on_all(const SagaActionOptions& o, const ApiClient& client, const std::string& action, const Json& body,
               const std::vector<Json>& sagas) {
  const std::string sent = body.dump();
  Json results = Json::array();
  int64_t ok = 0, refused = 0;
  int exit_code = kExitOk;
  size_t done = 0;
  for (; done < sagas.size(); ++done) {
    const std::string id = string_at(sagas[done], "id").value_or("");
    if (id.empty()) continue;
    auto response = client.request("POST", saga_path(id, action), sent);
    Answer saga = answer_from(response);
    if (saga.ok()) {
      ++ok;
      results.push_back({{"id", id}, {"result", "ok"}, {"status", saga.json.value("status", "")}});
      if (!o.common.json) std::cout << id << "  " << paint("ok", Color::kGreen) << "       " << where_it_stands(saga.json) << "\n";
      continue;
    }
    if (saga.exit_code == kExitUnreachable) {
      // The server is gone or failing: every later request would fare the same.
      exit_code = kExitUnreachable;
      results.push_back({{"id", id}, {"result", "not sent"}, {"error", saga.error}});
      if (!o.common.json) std::cout << id << "  " << paint("failed", Color::kRed) << "   " << printable(saga.error) << "\n";
      ++done;
      break;
    }
    ++refused;
    exit_code = kExitProblem;
    results.push_back({{"id", id}, {"result", "refused"}, {"error", saga.error}});
    if (!o.common.json) std::cout << id << "  " << paint("refused", Color::kRed) << "  " << printable(saga.error) << "\n";
    // A token the server does not take (401) or that may only read (403) is
    // refused for every saga alike: stop instead of repeating it for each.
    if (response.is_ok() && (response->status == 401 || response->status == 403)) {
      ++done;
      break;
    }
  }
  const int64_t not_tried = static_cast<int64_t>(sagas.size() - done);
  for (size_t i = done; i < sagas.size(); ++i)
    results.push_back({{"id", sagas[i].value("id", "")}, {"result", "not sent"}});
  if (o.common.json) {
    print_json({{"action", action},
                {"dry_run", false},
                {"sagas", std::move(results)},
                {"ok", ok},
                {"refused", refused},
                {"not_sent", static_cast<int64_t>(sagas.size()) - ok - refused}});
    return exit_code;
  }
  std::cout << action << ": " << plural(static_cast<int64_t>(sagas.size()), "saga", "sagas") << ", " << ok << " "
            << past_tense(action) << ", " << refused << " refused";
  if (const int64_t unsent = static_cast<int64_t>(sagas.size()) - ok - refused; unsent > 0)
    std::cout << ", " << unsent << " not sent" << (not_tried > 0 ? " (stopped)" : "");
  std::cout << "\n";
  if (exit_code == kExitUnreachable) std::cerr << "usher: " << action << " stopped: the server failed\n";
  return exit_code;
}

}  // namespace

void add_saga_action_options(CLI::App& cmd, SagaActionOptions& options) {
  add_common_options(cmd, options.common);
  cmd.add_option("id", options.id, "saga id (or --status for every saga in a status)");
  cmd.add_option("--status", options.status,
                 "act on every saga in this status (e.g. stuck) instead of one ID, listed through the API first");
  cmd.add_option("--workflow", options.workflow, "with --status: only the sagas of this workflow");
  cmd.add_flag("--dry-run", options.dry_run, "with --status: print the sagas that would be acted on; send nothing");
}

Answer check_saga_action_target(const SagaActionOptions& o, const std::string& action) {
  const std::string usage = "usage: usher " + action + " ID, or usher " + action +
                            " --status S [--workflow W] [--dry-run] for every saga in a status";
  const bool batch = !o.status.empty();
  if (o.id.empty() && !batch) {
    if (!o.workflow.empty())
      return Answer::fail(kExitUsage, "--workflow needs --status (e.g. --status stuck --workflow " + o.workflow +
                                          "); " + usage);
    return Answer::fail(kExitUsage, usage);
  }
  if (!o.id.empty() && batch) return Answer::fail(kExitUsage, "give a saga ID or --status, not both; " + usage);
  if (!o.id.empty() && (o.dry_run || !o.workflow.empty()))
    return Answer::fail(kExitUsage,
                        std::string(o.dry_run ? "--dry-run" : "--workflow") + " goes with --status, for a batch; " + usage);
  if (batch && !parse_saga_status(o.status))
    return Answer::fail(kExitUsage, "unknown status \"" + o.status +
                                        "\" (expected running, compensating, completed, compensated, stuck or "
                                        "terminated)");
  return Answer::success(Json());
}

int run_saga_action(const SagaActionOptions& o, const std::string& action, const Json& body) {
  if (Answer target = check_saga_action_target(o, action); !target.ok()) return report(target);
  const bool batch = !o.status.empty();
  Answer failure;
  auto client = connect_server(o.common, action.c_str(), failure);
  if (!client) return report(failure);
  if (!batch) return act_on_one(o, *client, action, body);

  std::vector<Json> sagas;
  if (Answer listed = list_all(*client, o, sagas); !listed.ok()) return report(listed);
  if (o.dry_run) return dry_run(o, action, sagas);
  return act_on_all(o, *client, action, body, sagas);
}

}  // namespace usher::cli
