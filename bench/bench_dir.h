// Shared by the disk microbenchmarks: where they write and how big a message is.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace postern::bench {

inline constexpr size_t kMessageSize = 4096;

// A fresh folder on the disk under test: $POSTERN_BENCH_DIR (default /var/tmp).
inline std::string benchDir(const char* what) {
  const char* base = std::getenv("POSTERN_BENCH_DIR");
  std::string dir = fmt::format("{}/postern-{}-{}", base ? base : "/var/tmp", what, ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace postern::bench
