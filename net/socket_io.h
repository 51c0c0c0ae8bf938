// Blocking waits and sends on non-blocking sockets, bounded by a deadline:
// what the HTTP client does for every request and the server for answers
// still waiting when it stops. Thread-safe (no state).
#ifndef SHARDCTL_NET_SOCKET_IO_H_
#define SHARDCTL_NET_SOCKET_IO_H_

#include <chrono>
#include <string_view>

namespace shardctl::net {

// Waits until `fd` is ready for `events` (poll's POLLIN, POLLOUT) or
// `deadline` passes. Returns false on the deadline or an error.
bool Await(int fd, short events, std::chrono::steady_clock::time_point deadline);

// Sends all of `data` on the non-blocking socket `fd` before `deadline`.
// Returns false if the connection failed or the deadline passed.
bool SendAll(int fd, std::string_view data, std::chrono::steady_clock::time_point deadline);

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_SOCKET_IO_H_
