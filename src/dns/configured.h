// A Resolver with the settings of [dns] (config/config.h): the one place that maps them.
#pragma once

#include <chrono>
#include <memory>

#include "config/config.h"
#include "dns/resolver.h"

namespace postern::dns {

inline Result<std::unique_ptr<Resolver>> createConfigured(const config::Dns& d) {
  ResolverOptions ro;
  ro.servers = d.servers;
  ro.timeout = std::chrono::milliseconds(d.timeout_ms);
  ro.cache_entries = d.cache_size;
  return Resolver::create(ro);
}

}  // namespace postern::dns
