// The one way pat includes Boost.Asio, and the rules for coroutines on it.
//
// GCC 12 mishandles lambdas whose captures have non-trivial destructors
// (shared_ptr, weak_ptr, std::function) when the lambda is created inside a
// coroutine body: the capture can be destroyed twice. Seen here as a
// heap-use-after-free under ASan in the deadline of rpc::read_reply. So
// inside coroutines, lambdas capture only references, `this` or trivially
// destructible values; anything owning is set up by an ordinary function
// (e.g. hang_up_on_disconnect in host/host_api.cc). Likewise a braced
// initializer list may not share a full-expression with co_await ("array
// used as initializer"): build the value in a statement of its own.
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including
// <utility>; including it first keeps every translation unit compiling.
#include <utility>

#include <boost/asio.hpp>

namespace pat {
namespace asio = boost::asio;
using LocalSocket = asio::local::stream_protocol::socket;
using LocalAcceptor = asio::local::stream_protocol::acceptor;
}  // namespace pat
