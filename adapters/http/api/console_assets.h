// The web console (docs/console.md): the files under console/ built into the
// binary (cmake/embed_console.cmake writes console_assets() at build time) and
// the answers `usher serve` gives for them.
//
// Routes (no token needed: the files hold no data; the page asks the API, with
// the token, for everything it shows):
//   GET /            302 to /ui/
//   GET /ui          302 to /ui/
//   GET /ui/         index.html
//   GET /ui/{file}   a file of console/ by name; any other name 404
//
// Every answer carries the console's Content-Security-Policy (no inline script
// or style, nothing loaded from another origin), `X-Content-Type-Options:
// nosniff`, `Referrer-Policy: no-referrer` and `Cache-Control: no-cache` (a
// browser revalidates, so a new build's console is seen on the next load).
#pragma once

#include <span>
#include <string_view>

#include "http/api/api_problem.h"

namespace usher::api {

struct ConsoleAsset {
  std::string_view name;          // the file's name under console/, e.g. "app.js"
  std::string_view content_type;  // from its extension
  std::string_view body;
};

// Every file of console/, sorted by name. Defined in the generated source.
std::span<const ConsoleAsset> console_assets();

// The Content-Security-Policy every console answer carries.
inline constexpr std::string_view kConsoleCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// True for the paths the console answers (`path` undecoded, without the
// query): "/", "/ui" and everything under "/ui/".
bool is_console_path(std::string_view path);

// The answer to a request for a console path: a redirect, a file, 404 for a
// name console/ does not hold, 405 for a method other than GET (the server
// turns HEAD into GET).
ApiResponse console_response(boost::beast::http::verb method, std::string_view path);

}  // namespace usher::api
