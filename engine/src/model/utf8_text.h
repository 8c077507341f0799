// Moved to the public usher/service_text.h; this forwarder goes once every user includes that.
#pragma once
#include "usher/service_text.h"
