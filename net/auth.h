// Bearer-token checks for the HTTP server. Pure functions; thread-safe.
#ifndef SHARDCTL_NET_AUTH_H_
#define SHARDCTL_NET_AUTH_H_

#include <string_view>

namespace shardctl::net {

// Returns true when `authorization` (an Authorization header's value) is
// exactly "Bearer <token>". The time taken depends on the lengths only, never
// on where the first differing byte is, so a client cannot guess the token a
// byte at a time. REQUIRES: !token.empty().
bool BearerTokenMatches(std::string_view authorization, std::string_view token);

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_AUTH_H_
