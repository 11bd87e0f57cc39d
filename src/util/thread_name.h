#pragma once

#include <pthread.h>

#include <string>

namespace postern::util {

// Names the calling thread ("postern-spool", ...) so that `top -H`, `ps -L`, perf and gdb
// show which stage is busy. Linux keeps 15 bytes; longer names are cut. The main thread is
// never renamed: its name is the process name that ps, pgrep and killall match.
inline void setThreadName(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace postern::util
