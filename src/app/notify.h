// Readiness notifications to the service manager, sd_notify(3) through libsystemd, for a
// `Type=notify` unit (contrib/postern.service). Without NOTIFY_SOCKET in the environment
// (started by hand, by the tests, in a container) every call does nothing.
//
// Every message comes from the daemon's main process, so the unit's default
// `NotifyAccess=main` accepts it even after the privilege drop and with helper processes.
#pragma once

#include <string_view>

namespace postern::app {

// READY=1 with STATUS=`status`: every listener is bound and accepting, or a reload finished.
void notifyReady(std::string_view status);

// RELOADING=1 with MONOTONIC_USEC=now: a reload (SIGHUP) has started. systemd waits for the
// next notifyReady() before it considers `systemctl reload` done.
void notifyReloading();

// STOPPING=1: shutdown has begun; no new connections are accepted from here on.
void notifyStopping();

}  // namespace postern::app
