// Wiring only: builds the stages from the configuration, runs the event loops, and
// handles signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload certificates and the
// directory without dropping connections).
#pragma once

#include <memory>

#include "config/config.h"

namespace postern::app {

// Runs the server in the foreground until SIGTERM/SIGINT. Returns the exit status.
int serve(std::shared_ptr<const config::Config> config);

}  // namespace postern::app
