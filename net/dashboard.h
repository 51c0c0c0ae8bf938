// The dashboard the aggregator serves at GET /: net/dashboard.html, a
// self-contained page, embedded in the binary at build time (see
// net/dashboard_embed.cmake). Constant data: thread-safe.
#ifndef SHARDCTL_NET_DASHBOARD_H_
#define SHARDCTL_NET_DASHBOARD_H_

#include <string_view>

namespace shardctl::net {

// The page's HTML (ASCII), valid for the whole run of the program.
std::string_view DashboardPage();

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_DASHBOARD_H_
