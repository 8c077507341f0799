// LogInspector over a SagaStoreReader, with a cache of the definitions sagas
// were started with (parsed back from the `definitions` table by hash).
#pragma once

#include <mutex>
#include <unordered_map>

#include "machine/saga_state.h"
#include "store/saga_store.h"
#include "usher/inspect.h"

namespace usher {

class LogInspectorImpl final : public LogInspector {
 public:
  explicit LogInspectorImpl(std::unique_ptr<SagaStoreReader> reader) : reader_(std::move(reader)) {}

  Result<Json> saga(const std::string& id, std::optional<int64_t> at_us) override;
  Result<Json> events(const std::string& id) override;
  Result<Json> list(const SagaFilter& filter) override;
  Result<Json> feed(const std::string& after, size_t limit) override;
  Result<Json> stats() override;
  Result<Json> cluster() override;

  // Makes an already parsed definition known, so it is not parsed again.
  void remember(DefinitionPtr def);
  // The definition a saga was started with: from the cache, else parsed from
  // the log's copy of its source.
  Result<DefinitionPtr> definition(const std::string& hash);
  // A saga's folded state and its definition.
  Result<std::pair<DefinitionPtr, SagaState>> load(const std::string& id, std::optional<int64_t> at_us);

  SagaStoreReader& reader() { return *reader_; }

 private:
  std::unique_ptr<SagaStoreReader> reader_;
  std::unordered_map<std::string, DefinitionPtr> by_hash_;
};

}  // namespace usher
