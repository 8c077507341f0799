// Listing cannot take the server's memory (issue 17, item 5): sagas started
// through the real `usher serve` with inputs close to the body limit, then
// listed with the largest page there is. Before, 40 such sagas made one
// `?limit=1000` answer 41 MB; now a page is a summary, bounded in bytes,
// and `next` goes on where it ended, so every saga is still listed once.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "hostile/hostile_rig.h"

using namespace usher::test::hostile;
using usher::test::TempDir;

TEST_CASE("bounded lists: sagas with large inputs are listed as summaries, in pages bounded in bytes") {
  TempDir dir;
  Server server(dir);
  // The steps' services are not running: the sagas retry and compensate,
  // which does not matter to listing them.
  const int sagas = 30;
  const std::string note(700 << 10, 'n');
  std::set<std::string> started;
  for (int i = 0; i < sagas; ++i) {
    json input = {{"userId", "u" + std::to_string(i)}, {"concertId", "c1"}, {"seats", {"A1", "A2"}}, {"amount", 10},
                  {"note", note}};
    auto r = usher::test::request(server.port, http::verb::post, "/v1/workflows/group-booking/sagas", input.dump(), {},
                                  seconds(10));
    REQUIRE_MESSAGE(r.status == 201, r.body);
    started.insert(r.json()["id"].get<std::string>());
  }

  std::set<std::string> listed;
  std::string after;
  int pages = 0;
  size_t largest_page = 0;
  for (;;) {
    auto page = usher::test::request(server.port, http::verb::get,
                                     "/v1/sagas?limit=1000" + (after.empty() ? "" : "&after=" + after), "", {}, seconds(10));
    REQUIRE(page.status == 200);
    ++pages;
    largest_page = std::max(largest_page, page.body.size());
    json body = page.json();
    for (const json& saga : body["sagas"]) {
      CHECK(listed.insert(saga["id"].get<std::string>()).second);  // never twice
      // The large input is left out of the list and named; small values stay.
      CHECK(saga["input"].is_null());
      CHECK(saga["omitted"] == json::array({"/input"}));
      CHECK(saga["workflow"] == "group-booking");
      CHECK(saga["steps"].is_array());
    }
    if (body["next"].is_null()) break;
    after = body["next"].get<std::string>();
    REQUIRE(pages < 10);
  }
  MESSAGE(sagas << " sagas of ~700 KB input listed in " << pages << " pages, the largest " << largest_page << " bytes");
  CHECK(listed == started);
  // 30 sagas of 700 KB are 21 MB of reading: more than one page may read.
  CHECK(pages >= 2);
  CHECK(largest_page < (1 << 20));

  // The saga itself still has its input whole.
  auto one = usher::test::request(server.port, http::verb::get, "/v1/sagas/" + *started.begin(), "", {}, seconds(10));
  REQUIRE(one.status == 200);
  CHECK(one.json()["input"]["note"].get<std::string>().size() == note.size());
  CHECK(!one.json().contains("omitted"));
  server.check_still_serving();
}
