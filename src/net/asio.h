// The parts of asio the project uses, in one place: coroutines with error codes as values
// (as_tuple) rather than exceptions.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace postern::net {

using asio::awaitable;
using asio::ip::tcp;
inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

// Runs `fn` on `pool` and resumes the awaiting coroutine on its own executor with the
// result. For work that must not run on an event-loop thread (password hashing).
// Not a coroutine itself, and callers pass a named function object: g++ 12 mishandles
// non-trivial temporaries inside co_await expressions.
template <class F>
auto offload(asio::thread_pool& pool, F fn) {
  using R = std::invoke_result_t<F>;
  auto init = [&pool](auto handler, F f) {
    auto ex = asio::get_associated_executor(handler);
    asio::post(pool, [handler = std::move(handler), f = std::move(f), ex]() mutable {
      R r = f();
      asio::post(ex, [handler = std::move(handler), r = std::move(r)]() mutable { std::move(handler)(std::move(r)); });
    });
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(init, asio::use_awaitable, std::move(fn));
}

}  // namespace postern::net
