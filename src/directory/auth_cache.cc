#include "directory/auth_cache.h"

#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace postern::directory {

AuthCache::AuthCache() { RAND_bytes(secret_.data(), static_cast<int>(secret_.size())); }

AuthCache::Key AuthCache::keyOf(std::string_view address, std::string_view password) const {
  std::string msg;
  msg.reserve(address.size() + 1 + password.size());
  msg.append(address);
  msg.push_back('\0');
  msg.append(password);
  Key k{};
  unsigned len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), k.data(), &len);
  OPENSSL_cleanse(msg.data(), msg.size());
  return k;
}

bool AuthCache::hit(std::string_view address, std::string_view password, std::string_view stored_hash) {
  Key k = keyOf(address, password);
  std::lock_guard lock(mu_);
  auto it = map_.find(k);
  if (it == map_.end()) return false;
  if (it->second.expires < std::chrono::steady_clock::now() || it->second.stored_hash != stored_hash) {
    lru_.erase(it->second.lru);
    map_.erase(it);
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return true;
}

void AuthCache::remember(std::string_view address, std::string_view password, std::string_view stored_hash) {
  Key k = keyOf(address, password);
  std::lock_guard lock(mu_);
  if (auto it = map_.find(k); it != map_.end()) {
    lru_.erase(it->second.lru);
    map_.erase(it);
  }
  while (map_.size() >= kAuthCacheEntries) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(k);
  map_.emplace(k, Entry{std::string(stored_hash), std::chrono::steady_clock::now() + kAuthCacheTtl, lru_.begin()});
}

}  // namespace postern::directory
