// The console's routes (http/api/console_assets.h) through ApiHandler: its
// files answer without a token, with the console's security headers, and
// nothing else the token guards opens with them. The page itself is tested in
// a browser by tests/console.
#include <doctest/doctest.h>

#include "api_fixture.h"
#include "http/api/console_assets.h"

using usher::test::ApiFixture;
namespace http = boost::beast::http;

namespace {

void check_console_headers(const ApiFixture::Reply& r) {
  CHECK(std::string(r.raw["Content-Security-Policy"]) == usher::api::kConsoleCsp);
  CHECK(std::string(r.raw["Content-Security-Policy"]).find("unsafe-inline") == std::string::npos);
  CHECK(std::string(r.raw["X-Content-Type-Options"]) == "nosniff");
  CHECK(std::string(r.raw["Referrer-Policy"]) == "no-referrer");
  CHECK(r.header(http::field::cache_control) == "no-cache");
}

}  // namespace

TEST_CASE("the console's files answer without the token, with the console's headers") {
  ApiFixture f("s3cret-token");
  for (const std::string root : {"/", "/ui"}) {
    auto r = f.get(root);
    CHECK(r.status == 302);
    CHECK(r.header(http::field::location) == "/ui/");
    check_console_headers(r);
  }
  for (auto [path, type] : {std::pair{"/ui/", "text/html"}, {"/ui/index.html", "text/html"},
                            {"/ui/app.js", "text/javascript"}, {"/ui/style.css", "text/css"}}) {
    CAPTURE(path);
    auto r = f.get(path);
    CHECK(r.status == 200);
    CHECK(r.header(http::field::content_type).rfind(type, 0) == 0);
    CHECK(!r.body.empty());
    check_console_headers(r);
  }
  SUBCASE("an unknown file is 404, another method 405, both with the headers") {
    auto missing = f.get("/ui/nope.js");
    CHECK(missing.status == 404);
    check_console_headers(missing);
    auto post = f.post("/ui/");
    CHECK(post.status == 405);
    CHECK(post.header(http::field::allow) == "GET");
    check_console_headers(post);
  }
  SUBCASE("the API behind it still needs the token") {
    CHECK(f.get("/v1/sagas").status == 401);
    CHECK(f.get("/uix").status == 401);
    CHECK(f.get("/v1/ui/").status == 401);
  }
}

TEST_CASE("the page loads its script and style from its own files, never inline") {
  ApiFixture f;
  auto page = f.get("/ui/");
  REQUIRE(page.status == 200);
  CHECK(page.body.find("<script src=\"/ui/app.js\"") != std::string::npos);
  CHECK(page.body.find("<link rel=\"stylesheet\" href=\"/ui/style.css\">") != std::string::npos);
  // Inline script or style would be refused by the CSP: the page would break.
  CHECK(page.body.find("<script>") == std::string::npos);
  CHECK(page.body.find("<style") == std::string::npos);
  CHECK(page.body.find(" style=") == std::string::npos);
  CHECK(page.body.find(" onclick=") == std::string::npos);
  // Every file embedded is served by its name.
  for (const auto& a : usher::api::console_assets()) {
    CAPTURE(a.name);
    auto r = f.get("/ui/" + std::string(a.name));
    CHECK(r.status == 200);
    CHECK(r.body == a.body);
    CHECK(r.header(http::field::content_type) == a.content_type);
  }
}
