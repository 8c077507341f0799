// The readable form of one saga that `usher show` prints (and `usher start`
// after --wait): a header, every step of the definition in order with its
// attempts, then the compensations in the order they ran, then the saga's own
// events. Built from the saga JSON plus, when given, its events, which supply
// the attempt-by-attempt lines (scheduled, failed, retry at, timed out,
// succeeded in …).
#pragma once

#include <ostream>

#include "usher/definition.h"

namespace usher::cli {

// `events` may be null (then no attempt lines are printed) and should hold only
// the events up to the moment the saga JSON describes (see `show --at`).
void render_timeline(std::ostream& out, const Json& saga, const Json* events);

}  // namespace usher::cli
