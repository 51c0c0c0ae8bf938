// EtcdStore: core::CoordStore over etcd's v3 JSON gateway (etcd 3.4 serves it
// on its client URLs): keys, compare-and-set and leases are POSTs through
// net::HttpClient, a watch is a chunked stream on a connection of its own.
// Thread-safe; each Watch it returns has one reader.
#ifndef SHARDCTL_TOPO_ETCD_STORE_H_
#define SHARDCTL_TOPO_ETCD_STORE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/coord_store.h"
#include "core/status.h"
#include "net/http_client.h"
#include "net/url.h"

namespace shardctl::topo {

class EtcdStore : public core::CoordStore {
 public:
  // Talks to the etcd members at `endpoints`: a call that cannot connect to
  // one (nothing was sent) goes on to the next, and later calls start from
  // the one that answered. `timeout` bounds each connect and each answer.
  // REQUIRES: !endpoints.empty().
  EtcdStore(std::vector<net::Url> endpoints, std::chrono::milliseconds timeout);
  EtcdStore(net::Url endpoint, std::chrono::milliseconds timeout);
  ~EtcdStore() override;

  // The CoordStore calls, as documented there, with what etcd adds:
  // - a lease that has expired, was revoked or never existed is
  //   kInvalidArgument for KeepAlive, RevokeLease and a CompareAndSet whose
  //   compare holds;
  // - etcd raises a TTL below its minimum (1.5 election timeouts: 2 s with
  //   the default --election-timeout of 1000 ms) to that minimum, and checks
  //   for expired leases every 500 ms;
  // - WatchPrefix returns once etcd has set the watch up; from revision 0 it
  //   starts with the next change.
  core::Result<std::optional<core::KeyValue>> Get(const std::string& key) override;
  core::Result<core::KeyRange> List(const std::string& prefix) override;
  core::Result<core::CasResult> CompareAndSet(const std::string& key, int64_t expected_revision,
                                              const std::string& value,
                                              core::LeaseId lease = 0) override;
  core::Result<core::CasResult> CompareAndDelete(const std::string& key,
                                                 int64_t expected_revision) override;
  core::Result<bool> CommitIfUnchanged(const std::string& prefix, int64_t revision,
                                       const std::vector<core::KeyWrite>& writes) override;
  core::Result<core::LeaseId> GrantLease(int64_t ttl_seconds) override;
  core::Status KeepAlive(core::LeaseId lease) override;
  core::Status RevokeLease(core::LeaseId lease) override;
  core::Result<std::unique_ptr<core::Watch>> WatchPrefix(const std::string& prefix,
                                                         int64_t start_revision) override;

 private:
  // Runs `call` on each endpoint's client in turn, starting from the one
  // that answered last, until one does not fail with kUnavailable.
  template <typename T>
  core::Result<T> OnFirstReachable(const std::function<core::Result<T>(net::HttpClient&)>& call);
  // POSTs `body` to `path`. Returns the answer's body if etcd answered 200,
  // its error (ParseError) if it answered otherwise, or the transport failure.
  core::Result<std::string> Call(const std::string& path, const std::string& body);

  std::vector<std::unique_ptr<net::HttpClient>> clients_;  // one per endpoint
  std::atomic<size_t> preferred_{0};  // the endpoint that answered last, or the one after a hung one
  std::chrono::milliseconds timeout_;
};

// Parses `endpoints`, "http://127.0.0.1:2379" or a comma-separated list of
// such URLs, and returns an EtcdStore for them, or kInvalidArgument naming
// the URL that is wrong. Connects to nothing yet.
core::Result<std::unique_ptr<EtcdStore>> OpenEtcdStore(std::string_view endpoints,
                                                       std::chrono::milliseconds timeout);

}  // namespace shardctl::topo

#endif  // SHARDCTL_TOPO_ETCD_STORE_H_
