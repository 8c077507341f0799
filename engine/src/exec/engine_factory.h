// Opening an engine over a saga log the caller made: how tests wrap the real
// log to stop the world between an append and its commands (crash injection).
#pragma once

#include <memory>

#include "store/saga_store.h"
#include "usher/engine.h"

namespace usher {

Result<std::unique_ptr<Engine>> open_engine_with_store(EngineOptions options, std::unique_ptr<SagaStore> log);

}  // namespace usher
