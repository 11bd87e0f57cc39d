#include <gtest/gtest.h>

#include "directory/auth_cache.h"

namespace postern::directory {
namespace {

TEST(AuthCache, HitsOnlyForTheSamePasswordAndStoredHash) {
  AuthCache c;
  EXPECT_FALSE(c.hit("a@x.test", "pw", "$6$h1"));
  c.remember("a@x.test", "pw", "$6$h1");
  EXPECT_TRUE(c.hit("a@x.test", "pw", "$6$h1"));
  EXPECT_FALSE(c.hit("a@x.test", "pw2", "$6$h1"));
  EXPECT_FALSE(c.hit("b@x.test", "pw", "$6$h1"));
  // A password change (new stored hash) invalidates the entry at once.
  EXPECT_FALSE(c.hit("a@x.test", "pw", "$6$h2"));
  EXPECT_FALSE(c.hit("a@x.test", "pw", "$6$h1"));
  // No ambiguity between address and password boundaries.
  c.remember("a@x.test", "b", "$6$h");
  EXPECT_FALSE(c.hit("a@x.testb", "", "$6$h"));
}

TEST(AuthCache, SizeIsBounded) {
  AuthCache c;
  for (size_t i = 0; i < kAuthCacheEntries + 10; ++i) c.remember("u" + std::to_string(i) + "@x.test", "pw", "h");
  EXPECT_FALSE(c.hit("u0@x.test", "pw", "h"));   // evicted, least recently used
  EXPECT_TRUE(c.hit("u" + std::to_string(kAuthCacheEntries + 9) + "@x.test", "pw", "h"));
}

}  // namespace
}  // namespace postern::directory
