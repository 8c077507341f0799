// A SagaStore that passes every call to another store: tests derive from it
// and override only what they change (a crash after some append, a writer
// that pretends to be behind).
#pragma once

#include <memory>

#include "store/saga_store.h"

namespace usher::test {

class ForwardingStore : public SagaStore {
 public:
  explicit ForwardingStore(std::unique_ptr<SagaStore> inner) : inner_(std::move(inner)) {}

  void append(std::vector<Event> events, std::vector<SagaRow> rows, std::function<void(Status)> done) override {
    inner_->append(std::move(events), std::move(rows), std::move(done));
  }
  Status store_definition(const std::string& h, const std::string& w, int64_t v, const std::string& s) override {
    return inner_->store_definition(h, w, v, s);
  }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }
  Result<std::unique_ptr<SagaStoreReader>> open_reader() override { return inner_->open_reader(); }
  SagaStoreStats stats() const override { return inner_->stats(); }

 protected:
  SagaStore& inner() { return *inner_; }

 private:
  std::unique_ptr<SagaStore> inner_;
};

}  // namespace usher::test
