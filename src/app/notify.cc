#include "app/notify.h"

#include <systemd/sd-daemon.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>

#include <fmt/format.h>

#include "log/log.h"

namespace postern::app {

namespace {

// Sends one notification. A failure (the socket went away, a full buffer) never stops the
// server: it is logged once, since the same cause would repeat on every later message.
void send(const std::string& message) {
  // unset_environment = 0: NOTIFY_SOCKET must stay for the reload and stop messages.
  int r = sd_notify(0, message.c_str());
  if (r >= 0) return;
  static std::atomic<bool> reported{false};
  if (reported.exchange(true)) return;
  log::warn("systemd.notify_failed").kv("message", message.substr(0, message.find('\n')))
      .kv("reason", std::strerror(-r));
}

}  // namespace

void notifyReady(std::string_view status) { send(fmt::format("READY=1\nSTATUS={}", status)); }

void notifyReloading() {
  // systemd compares MONOTONIC_USEC with its own CLOCK_MONOTONIC reading to tell this reload
  // from an earlier one (systemd.service(5), Type=notify-reload).
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
  send(fmt::format("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC={}", usec));
}

void notifyStopping() { send("STOPPING=1\nSTATUS=stopping"); }

}  // namespace postern::app
