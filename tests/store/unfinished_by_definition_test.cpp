// SagaStoreReader::unfinished_by_definition(): the definitions unfinished
// sagas are pinned to, counted. Part of the contract, so it runs against every
// store (store_test_util.h; tests/store/CMakeLists.txt runs it on PostgreSQL).
#include <doctest/doctest.h>

#include "store_test_util.h"

namespace usher {
namespace {

using test::append_and_wait;
using test::row;
using test::saga_id;

SagaRow pinned_row(int n, SagaStatus status, const std::string& workflow, int64_t version) {
  SagaRow r = row(saga_id(n), status, workflow);
  r.version = version;
  r.definition_hash = workflow + "-v" + std::to_string(version);
  return r;
}

bool same(const PinnedVersion& got, const std::string& workflow, int64_t version, int64_t unfinished) {
  return got.workflow == workflow && got.version == version &&
         got.definition_hash == workflow + "-v" + std::to_string(version) && got.unfinished == unfinished;
}

TEST_CASE("unfinished sagas are counted per definition, finished ones left out") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);

  SUBCASE("an empty log pins nothing") {
    auto pinned = test::open_store_reader(path)->unfinished_by_definition();
    REQUIRE(pinned.is_ok());
    CHECK(pinned->empty());
  }
  SUBCASE("two versions of one workflow and another workflow") {
    // book v1: running, stuck, compensating, and one of each finished status;
    // book v2: two running, one completed; refund v1: completed only.
    std::vector<SagaRow> rows = {
        pinned_row(0, SagaStatus::kRunning, "book", 1),       pinned_row(1, SagaStatus::kStuck, "book", 1),
        pinned_row(2, SagaStatus::kCompensating, "book", 1),  pinned_row(3, SagaStatus::kCompleted, "book", 1),
        pinned_row(4, SagaStatus::kCompensated, "book", 1),   pinned_row(5, SagaStatus::kTerminated, "book", 1),
        pinned_row(6, SagaStatus::kRunning, "book", 2),       pinned_row(7, SagaStatus::kRunning, "book", 2),
        pinned_row(8, SagaStatus::kCompleted, "book", 2),     pinned_row(9, SagaStatus::kCompleted, "refund", 1),
        pinned_row(10, SagaStatus::kRunning, "a-first", 7),
    };
    REQUIRE(append_and_wait(*log, {}, rows).is_ok());
    auto pinned = test::open_store_reader(path)->unfinished_by_definition();
    REQUIRE(pinned.is_ok());
    // By workflow, then newest version first.
    REQUIRE(pinned->size() == 3);
    CHECK(same((*pinned)[0], "a-first", 7, 1));
    CHECK(same((*pinned)[1], "book", 2, 2));
    CHECK(same((*pinned)[2], "book", 1, 3));

    SUBCASE("a saga that finishes leaves the count") {
      SagaRow done = rows[6];
      done.status = SagaStatus::kCompleted;
      done.prior_seq = done.last_seq;
      done.last_seq += 1;
      REQUIRE(append_and_wait(*log, {test::event(done.id, done.last_seq, EventType::kSagaCompleted)}, {done}).is_ok());
      auto after = test::open_store_reader(path)->unfinished_by_definition();
      REQUIRE(after.is_ok());
      REQUIRE(after->size() == 3);
      CHECK(same((*after)[1], "book", 2, 1));
    }
  }
}

}  // namespace
}  // namespace usher
