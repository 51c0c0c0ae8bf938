// Status and Result<T>: how every fallible call in shardctl reports failure.
// A Status is either OK or a code with a message in plain words for a person.
// Values of these types are immutable once built; safe to share between threads.
#ifndef SHARDCTL_CORE_STATUS_H_
#define SHARDCTL_CORE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace shardctl::core {

// What kind of failure, independent of any transport. net/ maps these to HTTP
// status codes and cmd/ to exit codes.
enum class Code {
  kOk,
  kInvalidArgument,  // the request itself is wrong: bad JSON, bad value
  kOutOfRange,       // a well-formed request that would overflow a count
  kKeyReused,        // an idempotency key already used for a different request
  kInProgress,       // the same request (same idempotency key) is still being served
  kUnavailable,      // a server could not be reached (refused, down)
  kTimeout,          // a server did not answer in time; the outcome is unknown
  kBadGateway,       // a server answered something shardctl cannot use
  kMoved,            // a cluster node does not serve that shard at that epoch: read the topology again
  kInternal,         // the system failed to serve a valid request
};

// Returns a short lower-case name for `code`, e.g. "invalid argument".
std::string_view CodeName(Code code);

class Status {
 public:
  // An OK status.
  Status() = default;
  // REQUIRES: code != Code::kOk.
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {
    assert(code != Code::kOk);
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // The plain-words message; empty when ok().
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string message) {
  return {Code::kInvalidArgument, std::move(message)};
}
inline Status OutOfRange(std::string message) { return {Code::kOutOfRange, std::move(message)}; }
inline Status Unavailable(std::string message) { return {Code::kUnavailable, std::move(message)}; }
inline Status Internal(std::string message) { return {Code::kInternal, std::move(message)}; }

// Either a value of type T or a failed Status.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // REQUIRES: !status.ok().
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  // The failure; an OK status when ok().
  const Status& status() const { return status_; }

  // REQUIRES: ok().
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T& value() & {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_STATUS_H_
