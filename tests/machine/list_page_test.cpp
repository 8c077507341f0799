// A list page's items are summaries (view/list_page.h): large inputs and
// outputs are left out and named, small ones stay, and the sizes that bound a
// page are those of the JSON text.
#include <doctest/doctest.h>

#include "view/list_page.h"

namespace usher {
namespace {

constexpr size_t kNoCap = size_t{1} << 40;

TEST_CASE("json_text_size is the length of the compact JSON text (escapes aside)") {
  for (const char* text : {R"(null)", R"(true)", R"(false)", R"(12345)", R"(-2.5)", R"("abc")", R"([])", R"({})",
                           R"([1,"two",{"three":[3,null,false]}])", R"({"a":{"b":{"c":"d"}},"e":[1,2,3]})"}) {
    CAPTURE(text);
    Json value = Json::parse(text);
    CHECK(json_text_size(value, kNoCap) == value.dump().size());
  }
}

TEST_CASE("json_text_size stops counting soon after its cap") {
  Json big = Json::array();
  for (int i = 0; i < 100'000; ++i) big.push_back("0123456789");
  const size_t counted = json_text_size(big, 1000);
  CHECK(counted > 1000);
  CHECK(counted < 1100);
}

TEST_CASE("a list item leaves out an input or output over 4 KiB and names it; small values stay") {
  Json saga = {{"id", "s1"},
               {"input", {{"note", std::string(5000, 'x')}}},
               {"steps",
                {{{"name", "reserve"}, {"output", {{"holdId", "h1"}}}},
                 {{"name", "pay"}, {"output", {{"receipt", std::string(10'000, 'r')}}}},
                 {{"name", "confirm"}, {"output", nullptr}}}}};
  const size_t before = json_text_size(saga, kNoCap);
  ListItemSize size = summarise_list_item(saga);
  CHECK(saga["input"].is_null());
  CHECK(saga["steps"][0]["output"] == Json{{"holdId", "h1"}});
  CHECK(saga["steps"][1]["output"].is_null());
  CHECK(saga["omitted"] == Json::array({"/input", "/steps/1/output"}));
  CHECK(size.listed == saga.dump().size());
  CHECK(size.whole >= before);
  CHECK(size.listed < 1000);
}

TEST_CASE("a list item with nothing large is unchanged and has no omitted") {
  Json saga = {{"id", "s1"}, {"input", {{"seat", "A1"}}}, {"steps", {{{"name", "reserve"}, {"output", Json::object()}}}}};
  const Json before = saga;
  ListItemSize size = summarise_list_item(saga);
  CHECK(saga == before);
  CHECK(size.listed == size.whole);
  CHECK(size.listed == saga.dump().size());
}

}  // namespace
}  // namespace usher
