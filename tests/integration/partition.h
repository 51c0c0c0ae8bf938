// Partition: cuts a test's server off from everyone else on this machine for
// as long as it lives, by dropping its packets with nftables: a partition,
// not a crash (a connect hangs and times out instead of being refused).
// Needs root and nft (Debian package nftables, installed by .ci/setup).
// Not thread-safe: make and destroy it on the test's main thread.
//
// The rules live in the machine's network namespace, so they cut the address
// for every process, tests run in parallel (ctest -j) included: cut a
// server's "host:port" rather than a whole node address other tests may use.
// They cut what reaches or leaves that address: connections the server opens
// itself leave from 127.0.0.1 (the kernel's source address on loopback unless
// a socket binds), so a cut node still reaches etcd and the other nodes.
#ifndef SHARDCTL_TESTS_INTEGRATION_PARTITION_H_
#define SHARDCTL_TESTS_INTEGRATION_PARTITION_H_

#include <sys/types.h>

#include <string>

namespace shardctl::testing {

class Partition {
 public:
  // Cuts `address`: "A.B.C.D" drops every packet to and from that IPv4
  // address; "A.B.C.D:PORT" only TCP packets to and from that port of it
  // (one server's listener; others on the same address still answer).
  // Returns once the kernel drops them. Fails the test (ADD_FAILURE, with
  // nft's own error) if it cannot; cut() is then false.
  explicit Partition(std::string address);
  // Heals.
  ~Partition();
  Partition(const Partition&) = delete;
  Partition& operator=(const Partition&) = delete;

  // Lets the packets through again: new connections succeed, and the ones
  // whose retransmissions have not given up yet resume. Does nothing if
  // already healed.
  void Heal();
  // True from a successful cut until Heal().
  bool cut() const { return nft_ > 0; }

  // True if this process can cut addresses; otherwise false with the reason,
  // and what to do about it, in *why.
  static bool Available(std::string* why);

 private:
  std::string address_;
  // The `nft -i` that made the rules' table and holds it: the table has the
  // "owner" flag, so the kernel deletes it when that nft's netlink socket
  // closes, however nft ends (with this test process, even on SIGKILL).
  pid_t nft_ = -1;
  int nft_io_ = -1;  // nft's stdin, stdout and stderr
};

}  // namespace shardctl::testing

#endif  // SHARDCTL_TESTS_INTEGRATION_PARTITION_H_
