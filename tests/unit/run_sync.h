// Runs a coroutine to completion on a private io_context (unit tests of async code whose
// I/O is in memory, e.g. the verifiers over auth::StaticDns).
#pragma once

#include <exception>
#include <optional>
#include <utility>

#include "net/asio.h"

namespace postern::test {

template <class T>
T runSync(net::awaitable<T> a) {
  asio::io_context io;
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) out.emplace(std::move(v));
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

}  // namespace postern::test
