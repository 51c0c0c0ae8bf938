#include "tests/integration/partition.h"

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <optional>
#include <utility>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kWhatToDo[] =
    "Partition needs root and nft: run .ci/setup, which installs the Debian package nftables";

// Debian installs nft in /usr/sbin, which a PATH may lack.
std::string NftPath() { return ::access("/usr/sbin/nft", X_OK) == 0 ? "/usr/sbin/nft" : "nft"; }

// The nft match of the packets to drop for "A.B.C.D" or "A.B.C.D:PORT", or
// nullopt if `address` is neither (it goes into an nft command: only digits
// and dots get that far).
std::optional<std::string> MatchOf(const std::string& address) {
  const size_t colon = address.find(':');
  const std::string host = address.substr(0, colon);
  in_addr parsed{};
  if (::inet_pton(AF_INET, host.c_str(), &parsed) != 1) return std::nullopt;
  if (colon == std::string::npos) return "ip daddr " + host + " drop; ip saddr " + host + " drop;";
  const std::string port_text = address.substr(colon + 1);
  int port = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port < 1 ||
      port > 65535) {
    return std::nullopt;
  }
  const std::string p = std::to_string(port);
  return "ip daddr " + host + " tcp dport " + p + " drop; ip saddr " + host + " tcp sport " + p +
         " drop;";
}

}  // namespace

Partition::Partition(std::string address) : address_(std::move(address)) {
  std::optional<std::string> match = MatchOf(address_);
  if (!match) {
    ADD_FAILURE() << "Partition: \"" << address_ << "\" is not A.B.C.D or A.B.C.D:PORT";
    return;
  }
  static int made = 0;
  const std::string table =
      "shardctl_test_" + std::to_string(::getpid()) + "_" + std::to_string(++made);
  // Priority raw: the packets are gone before connection tracking sees them.
  std::string chains;
  for (std::string hook : {"input", "output"}) {
    chains += "chain " + hook + " { type filter hook " + hook + " priority raw; policy accept; " +
              *match + " }; ";
  }
  // One line is one nft transaction: the table comes whole or not at all.
  // Listing it afterwards says it is in the kernel.
  const std::string commands =
      "table ip " + table + " { flags owner; " + chains + "}\n" + "list table ip " + table + "\n";

  int io[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, io) != 0) {
    ADD_FAILURE() << "Partition: cannot create a socket pair";
    return;
  }
  const std::string nft = NftPath();
  const pid_t parent = ::getpid();
  nft_ = ::fork();
  if (nft_ == 0) {
    // nft, and with it the table, dies with the test, even one that crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(io[1], STDIN_FILENO);
    ::dup2(io[1], STDOUT_FILENO);
    ::dup2(io[1], STDERR_FILENO);
    ::execl(nft.c_str(), "nft", "-i", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(io[1]);
  nft_io_ = io[0];
  if (nft_ < 0) {
    ADD_FAILURE() << "Partition: cannot fork";
    Heal();
    return;
  }

  // The table's listing ends in "}" alone on a line; an error says "Error:".
  std::string said;
  bool listed = false;
  if (::send(nft_io_, commands.data(), commands.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(commands.size())) {
    const auto deadline = Clock::now() + 10s;
    while (!listed && said.find("Error") == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd ready{nft_io_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&ready, 1, static_cast<int>(left.count())) <= 0) break;
      char buffer[4096];
      ssize_t n = ::recv(nft_io_, buffer, sizeof buffer, 0);
      if (n <= 0) break;  // nft exited
      said.append(buffer, static_cast<size_t>(n));
      listed = said.size() >= 3 && said.compare(said.size() - 3, 3, "\n}\n") == 0;
    }
  }
  if (!listed) {
    Heal();
    ADD_FAILURE() << "Partition: cannot cut " << address_ << " with " << nft
                  << " -i: " << (said.empty() ? "it exited without a word" : "it said:\n" + said)
                  << "\n"
                  << kWhatToDo;
  }
}

Partition::~Partition() { Heal(); }

void Partition::Heal() {
  if (nft_io_ >= 0) ::close(nft_io_);
  nft_io_ = -1;
  if (nft_ > 0) {
    // Its netlink socket closes as it exits, before waitpid returns, and the
    // kernel deletes the table it owns then.
    ::kill(nft_, SIGKILL);
    int status = 0;
    ::waitpid(nft_, &status, 0);
  }
  nft_ = -1;
}

bool Partition::Available(std::string* why) {
  // An owner table without rules, gone again as soon as this nft exits.
  const std::string table = "shardctl_test_probe_" + std::to_string(::getpid());
  RunResult probe = RunCommand(NftPath() + " 'table ip " + table +
                               " { flags owner; chain output { type filter hook output "
                               "priority raw; policy accept; }; }'");
  if (probe.exit_code == 0) return true;
  while (!probe.out.empty() && probe.out.back() == '\n') probe.out.pop_back();
  *why = "cannot add nftables rules (" + probe.out + "). " + kWhatToDo;
  return false;
}

}  // namespace shardctl::testing
