// A cache of recent successful password checks, so a client that logs in again (mail
// apps reconnect for every message) does not cost another SHA512-CRYPT/argon2 run.
// Entries are keyed by an HMAC-SHA256, under a random per-process key, of the address
// and password: the cache holds no password and nothing usable offline. An entry only
// counts while the account still has the same stored hash, so a password change or a
// deleted account takes effect at once. Failures are never cached.
#pragma once

#include <array>
#include <cstring>
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace postern::directory {

inline constexpr size_t kAuthCacheEntries = 10000;
inline constexpr std::chrono::minutes kAuthCacheTtl{60};

class AuthCache {
 public:
  AuthCache();
  // True when (address, password) was verified against exactly `stored_hash` recently.
  bool hit(std::string_view address, std::string_view password, std::string_view stored_hash);
  void remember(std::string_view address, std::string_view password, std::string_view stored_hash);

 private:
  using Key = std::array<uint8_t, 32>;
  struct KeyHash {
    size_t operator()(const Key& k) const {
      size_t h;
      static_assert(sizeof h <= sizeof(Key));
      std::memcpy(&h, k.data(), sizeof h);
      return h;
    }
  };
  struct Entry {
    std::string stored_hash;
    std::chrono::steady_clock::time_point expires;
    std::list<Key>::iterator lru;
  };
  Key keyOf(std::string_view address, std::string_view password) const;

  std::array<uint8_t, 32> secret_;
  std::mutex mu_;
  std::list<Key> lru_;   // most recent first
  std::unordered_map<Key, Entry, KeyHash> map_;
};

}  // namespace postern::directory
