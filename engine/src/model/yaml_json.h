// Moved to the public usher/yaml_json.h; this forwarder goes once every user includes that.
#pragma once
#include "usher/yaml_json.h"
