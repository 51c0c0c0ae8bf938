// The JSON of etcd's v3 gateway (etcd 3.4): the requests EtcdStore sends and
// the answers it reads, translated to and from core's types. On the wire keys
// and values are base64, every int64 is a JSON string ("mod_revision":"7"),
// and protobuf's JSON leaves out false, zero and empty fields (a failed txn
// has no "succeeded"; a PUT event no "type"). Pure functions; thread-safe.
#ifndef SHARDCTL_TOPO_ETCD_JSON_H_
#define SHARDCTL_TOPO_ETCD_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/coord_store.h"
#include "core/status.h"

namespace shardctl::topo {

std::string EncodeBase64(std::string_view bytes);
// The bytes `text` encodes (standard alphabet, padded), or nullopt.
std::optional<std::string> DecodeBase64(std::string_view text);

// The range_end that makes a range from `prefix` cover exactly the keys that
// start with it: the prefix up to its last byte below 0xff, that byte plus
// one; "\0" (the end of the key space) when it has no such byte.
std::string PrefixEnd(std::string_view prefix);

// Request bodies, for the path named.
std::string GetRequest(const std::string& key);      // /v3/kv/range
std::string ListRequest(const std::string& prefix);  // /v3/kv/range
// /v3/kv/txn: compares the key's mod revision (0 for an absent key), puts
// or deletes on success, reads the key on failure (its current revision in
// the same round trip).
std::string CompareAndSetRequest(const std::string& key, int64_t expected_revision,
                                 const std::string& value, core::LeaseId lease);
std::string CompareAndDeleteRequest(const std::string& key, int64_t expected_revision);
// /v3/kv/txn: compares that every key under `prefix` has a mod revision
// below revision + 1 (a range compare, which an empty range passes), then
// puts or deletes every write; reads nothing on failure.
std::string CommitIfUnchangedRequest(const std::string& prefix, int64_t revision,
                                     const std::vector<core::KeyWrite>& writes);
std::string GrantRequest(int64_t ttl_seconds);  // /v3/lease/grant
// /v3/lease/keepalive and /v3/lease/revoke.
std::string LeaseRequest(core::LeaseId lease);
std::string WatchRequest(const std::string& prefix, int64_t start_revision);  // /v3/watch

// Answers: the body of an HTTP 200. Each returns what it carries, or
// kUnavailable when it is not the answer expected.
core::Result<core::KeyRange> ParseRange(std::string_view body);
// With `read_on_failure` (the requests above that read the key when the
// compare fails), a failure carries the key's current revision.
core::Result<core::CasResult> ParseTxn(std::string_view body, bool read_on_failure = true);
core::Result<core::LeaseId> ParseGrant(std::string_view body);
// OK while the lease lives; kInvalidArgument when it has expired or never
// existed (etcd answers a keepalive for it with no TTL).
core::Status ParseKeepAlive(std::string_view body);

// Any answer but a 200: `{"error":..., "message":..., "code": <gRPC code>}`.
// Returns kInvalidArgument for a lease that does not exist (gRPC NOT_FOUND),
// kTimeout for a request etcd timed out on (its outcome unknown), and
// kUnavailable for the rest, with etcd's message.
core::Status ParseError(int http_status, std::string_view body);

// One line of a watch's stream.
struct WatchMessage {
  bool created = false;  // the first message: the watch is in place
  std::vector<core::WatchEvent> events;
};
// Returns the message, kOutOfRange when etcd canceled the watch because its
// start revision is compacted, kUnavailable when it canceled it otherwise or
// the stream carries an error.
core::Result<WatchMessage> ParseWatchMessage(std::string_view line);

}  // namespace shardctl::topo

#endif  // SHARDCTL_TOPO_ETCD_JSON_H_
