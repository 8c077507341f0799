// A JSON document given on the command line, as `start --input` and
// `resolve --output` take it: inline (`'{"seat":"A1"}'`), `@FILE` to read a
// file, or `@-` to read standard input (`cat order.json | usher start … --input @-`).
#pragma once

#include <string>

#include "usher/definition.h"
#include "usher/status.h"

namespace usher::cli {

// `flag` names the option in messages ("--input"). Fails with kInvalidArgument
// when the file cannot be read or the text is not JSON; the message says which.
Result<Json> read_json_arg(const std::string& spec, const std::string& flag);

}  // namespace usher::cli
