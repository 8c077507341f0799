#include "view/log_inspector.h"

#include <algorithm>

#include "machine/fold.h"
#include "store/open_store.h"
#include "view/cluster_view.h"
#include "view/feed_view.h"
#include "view/list_page.h"
#include "view/saga_view.h"

namespace usher {

Result<std::unique_ptr<LogInspector>> LogInspector::open(const std::string& db_path, bool read_only) {
  auto reader = open_store_reader(db_path, read_only);
  if (!reader.is_ok()) return reader.status();
  return std::unique_ptr<LogInspector>(new LogInspectorImpl(std::move(reader.value())));
}

void LogInspectorImpl::remember(DefinitionPtr def) {
  if (def) by_hash_[def->hash] = std::move(def);
}

Result<DefinitionPtr> LogInspectorImpl::definition(const std::string& hash) {
  if (auto it = by_hash_.find(hash); it != by_hash_.end()) return it->second;
  auto source = reader_->definition_source(hash);
  if (!source.is_ok()) return source.status();
  if (!source.value()) return Status::data_loss("definition " + hash + " is not in the log");
  LoadResult loaded = load_definition(**source, "<log:" + hash.substr(0, 12) + ">");
  if (!loaded.ok()) {
    std::string why = loaded.diagnostics.empty() ? "unknown error" : loaded.diagnostics.front().to_string();
    return Status::data_loss("stored definition " + hash + " no longer loads: " + why);
  }
  // The stored source hashes to the same value, whatever the environment.
  by_hash_[hash] = loaded.definition;
  return loaded.definition;
}

Result<std::pair<DefinitionPtr, SagaState>> LogInspectorImpl::load(const std::string& id,
                                                                    std::optional<int64_t> at_us) {
  auto row = reader_->saga(id);
  if (!row.is_ok()) return row.status();
  if (!row.value()) return Status::not_found("saga " + id + " not found");
  auto def = definition((*row)->definition_hash);
  if (!def.is_ok()) return def.status();
  auto events = reader_->events(id, at_us);
  if (!events.is_ok()) return events.status();
  if (events->empty()) return Status::not_found("saga " + id + " has no events before that time");
  auto state = fold(*def.value(), events.value());
  if (!state.is_ok()) return state.status();
  return std::make_pair(def.value(), std::move(state.value()));
}

Result<Json> LogInspectorImpl::saga(const std::string& id, std::optional<int64_t> at_us) {
  auto loaded = load(id, at_us);
  if (!loaded.is_ok()) return loaded.status();
  return saga_detail_json(*loaded->first, loaded->second);
}

Result<Json> LogInspectorImpl::events(const std::string& id) {
  auto row = reader_->saga(id);
  if (!row.is_ok()) return row.status();
  if (!row.value()) return Status::not_found("saga " + id + " not found");
  auto events = reader_->events(id);
  if (!events.is_ok()) return events.status();
  return events_to_json(events.value());
}

bool is_saga_id(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<Json> LogInspectorImpl::list(const SagaFilter& filter) {
  // A cursor is the id of a page's last saga: anything else would be compared
  // as text and list sagas from an arbitrary point.
  if (filter.after && !is_saga_id(*filter.after))
    return Status::invalid_argument("\"" + *filter.after + "\" is not a cursor (a saga id, as `next` gives it)");
  SagaFilter page = filter;
  page.limit = std::clamp<size_t>(filter.limit, 1, 1000);
  auto rows = reader_->list(page);
  if (!rows.is_ok()) return rows.status();
  // Bounded in bytes as well as in count (view/list_page.h): a page that
  // reaches either budget ends early, and `next` goes on after its last saga.
  Json sagas = Json::array();
  size_t read_bytes = 0;
  size_t page_bytes = 0;
  bool ended_early = false;
  for (const SagaRow& row : rows.value()) {
    if (!sagas.empty() && (read_bytes >= kListReadBytes || page_bytes >= kListPageBytes)) {
      ended_early = true;
      break;
    }
    auto one = saga(row.id, std::nullopt);
    if (!one.is_ok()) return one.status();
    const ListItemSize size = summarise_list_item(one.value());
    if (!sagas.empty() && page_bytes + size.listed > kListPageBytes) {
      ended_early = true;
      break;
    }
    read_bytes += size.whole;
    page_bytes += size.listed;
    sagas.push_back(std::move(one.value()));
  }
  const bool more = ended_early || rows->size() == page.limit;
  Json next = more ? Json(sagas.back()["id"]) : Json(nullptr);
  return Json{{"sagas", std::move(sagas)}, {"next", std::move(next)}};
}

Result<Json> LogInspectorImpl::feed(const std::string& after, size_t limit) {
  auto position = parse_feed_cursor(after);
  if (!position)
    return Status::invalid_argument("\"" + after + "\" is not a feed cursor (as `next` or an event's \"cursor\" gives it)");
  auto events = reader_->events_after(*position, std::clamp<size_t>(limit, 1, kMaxFeedPage));
  if (!events.is_ok()) return events.status();
  return feed_page_to_json(events.value(), *position);
}

Result<Json> LogInspectorImpl::stats() {
  auto counts = reader_->counts();
  if (!counts.is_ok()) return counts.status();
  Json by_status = Json::object();
  int64_t total = 0;
  for (const auto& [status, n] : counts->by_status) {
    by_status[status] = n;
    total += n;
  }
  // Where the event feed ends now: a reader that starts after it (the
  // console's live updates) sees what happens next without reading history.
  auto last = reader_->last_position();
  if (!last.is_ok()) return last.status();
  const auto& oldest = counts->oldest_unfinished_created_at;
  return Json{{"sagas", std::move(by_status)},
              {"total", total},
              {"oldest_unfinished_created_at", oldest ? Json(format_time(*oldest)) : Json(nullptr)},
              {"last_cursor", feed_cursor(last.value())}};
}

Result<Json> LogInspectorImpl::cluster() {
  auto nodes = reader_->nodes();
  if (!nodes.is_ok()) return nodes.status();
  return cluster_to_json(0, nodes.value());
}

}  // namespace usher
