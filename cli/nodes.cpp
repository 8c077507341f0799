// `usher nodes`: the nodes sharing a PostgreSQL saga log (several `usher
// serve` on one database), their leases and how many sagas each owns.
//
// --db reads LogInspector::cluster() from the log, --server GET /v1/cluster;
// --json prints that document either way:
//   {"node": id|null, "nodes":[{"id","name","address","started_at","lease_until","status","sagas_owned"}…]}
// "node" is the server that answered (null from the log itself), marked `*` in
// the table. A SQLite log has no nodes: the table is replaced by a line
// saying so, and the exit code is still 0.
#include <iostream>

#include "commands.h"
#include "output.h"
#include "saga_source.h"

namespace usher::cli {

namespace {

// live: holds its lease; lapsed: its lease ended without a clean stop (its
// sagas go to the others); stopped: it shut down and handed its sagas over.
Color node_status_color(const std::string& status) {
  if (status == "live") return Color::kGreen;
  if (status == "lapsed") return Color::kYellow;
  if (status == "stopped") return Color::kDim;
  return Color::kNone;
}

std::optional<int64_t> int_at(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

int run_nodes(const CommonOptions& o) {
  Answer failure;
  auto source = open_source(o, failure);
  if (!source) return report(failure);
  Answer cluster = source->cluster();
  if (!cluster.ok()) return report(cluster);
  if (o.json) {
    print_json(cluster.json);
    return kExitOk;
  }
  const Json& nodes = cluster.json["nodes"];
  if (!nodes.is_array() || nodes.empty()) {
    std::cout << "no nodes (only `usher serve` processes sharing a PostgreSQL log are nodes)\n";
    return kExitOk;
  }
  const std::optional<int64_t> self = int_at(cluster.json, "node");
  bool marked = false;
  Table table({"NODE", "NAME", "ADDRESS", "STATUS", "LEASE UNTIL (UTC)", "SAGAS OWNED", "STARTED (UTC)"});
  for (const Json& n : nodes) {
    const std::optional<int64_t> id = int_at(n, "id");
    std::string node = id ? std::to_string(*id) : "-";
    if (id && self && *id == *self) {
      node += " *";
      marked = true;
    }
    const std::string status = string_at(n, "status").value_or("-");
    const std::optional<int64_t> owned = int_at(n, "sagas_owned");
    table.add_row({node, string_at(n, "name").value_or("-"), string_at(n, "address").value_or("-"),
                   paint(status, node_status_color(status)), table_time(string_at(n, "lease_until")),
                   owned ? std::to_string(*owned) : "-", table_time(string_at(n, "started_at"))});
  }
  table.print(std::cout);
  if (marked) std::cout << paint("* the node that answered", Color::kDim) << "\n";
  return kExitOk;
}

}  // namespace

void register_nodes(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<CommonOptions>();
  auto* cmd = app.add_subcommand(
      "nodes", "List the nodes sharing a PostgreSQL saga log: their leases and the sagas each owns");
  add_common_options(*cmd, *options);
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_nodes(*options); }); });
}

}  // namespace usher::cli
