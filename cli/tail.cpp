// `usher tail`: the event feed (GET /v1/events, docs/api.md) — every event of
// every saga in commit order, from the start or after a cursor, one line per
// event as it is read. With --follow it keeps waiting for new events (a long
// poll on the server; the log read directly is read again twice a second)
// until interrupted. --json prints each event as one line of JSON, the
// feed's own document, so the output can be piped to jq or a read model.
//
// Without --follow it stops at the end of the feed and says how to go on
// from there: `usher tail --after CURSOR` prints only what came since.
#include <chrono>
#include <iostream>
#include <thread>

#include "commands.h"
#include "output.h"
#include "saga_source.h"
#include "usher/inspect.h"
#include "usher/printable.h"

namespace usher::cli {

namespace {

constexpr size_t kPage = 500;
constexpr std::chrono::seconds kServerWait{25};
constexpr std::chrono::milliseconds kLogPollEvery{500};

struct TailOptions {
  CommonOptions common;
  std::string after;
  bool follow = false;
};

void print_event(const Json& e, bool json) {
  if (json) {
    std::cout << printable(e.dump(-1, ' ', false, Json::error_handler_t::replace)) << '\n';
    return;
  }
  auto when = time_at(e, "occurred_at");
  std::cout << pad_right(string_at(e, "cursor").value_or("-"), 8) << "  "
            << (when ? format_time(*when) : std::string("-")) << "  " << string_at(e, "saga_id").value_or("-")
            << "  " << string_at(e, "workflow").value_or("-") << "  #"
            << (e.contains("seq") ? e["seq"].dump() : "-") << "  " << string_at(e, "type").value_or("-");
  if (auto step = string_at(e, "step")) std::cout << "  " << *step;
  std::cout << '\n';
}

int run_tail(const TailOptions& o) {
  Answer failure;
  auto source = open_source(o.common, failure);
  if (!source) return report(failure);
  const bool from_log = !o.common.db.empty();
  std::string after = o.after;
  for (;;) {
    const auto wait = o.follow && !from_log ? std::chrono::milliseconds(kServerWait) : std::chrono::milliseconds(0);
    Answer page = source->feed(after, kPage, wait);
    if (!page.ok()) return report(page);
    const Json& events = page.json["events"];
    for (const Json& e : events) print_event(e, o.common.json);
    std::cout.flush();
    after = page.json["next"].get<std::string>();
    if (!events.empty()) continue;  // there may be more at once
    if (!o.follow) break;
    if (from_log) std::this_thread::sleep_for(kLogPollEvery);
  }
  if (!o.common.json)
    std::cerr << "end of the feed; what comes next: " << follow_up_command(o.common, "tail --after " + after)
              << '\n';
  return kExitOk;
}

}  // namespace

void register_tail(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<TailOptions>();
  auto* cmd = app.add_subcommand("tail", "Print the event feed: every saga's events in commit order");
  add_common_options(*cmd, options->common);
  cmd->add_option("--after", options->after, "start after this cursor (an event's cursor, as printed first)");
  cmd->add_flag("-f,--follow", options->follow, "keep waiting for new events until interrupted");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_tail(*options); }); });
}

}  // namespace usher::cli
