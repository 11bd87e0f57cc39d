// Named event counters (kept for the metrics endpoint to come). Every rejection and
// every diagnostic increments one. Lookup by name happens once; the hot path holds
// the returned reference.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace postern {

class Counters {
 public:
  std::atomic<uint64_t>& get(std::string_view name) {
    std::lock_guard lock(mu_);
    auto it = map_.find(name);
    if (it == map_.end()) it = map_.emplace(std::string(name), std::make_unique<std::atomic<uint64_t>>(0)).first;
    return *it->second;
  }
  void inc(std::string_view name, uint64_t by = 1) { get(name).fetch_add(by, std::memory_order_relaxed); }
  uint64_t value(std::string_view name) {
    std::lock_guard lock(mu_);
    auto it = map_.find(name);
    return it == map_.end() ? 0 : it->second->load(std::memory_order_relaxed);
  }
  std::map<std::string, uint64_t> snapshot() {
    std::lock_guard lock(mu_);
    std::map<std::string, uint64_t> out;
    for (const auto& [k, v] : map_) out[k] = v->load(std::memory_order_relaxed);
    return out;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>, std::less<>> map_;
};

}  // namespace postern
