#include "core/status.h"

namespace shardctl::core {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kOutOfRange: return "out of range";
    case Code::kKeyReused: return "key reused";
    case Code::kInProgress: return "in progress";
    case Code::kUnavailable: return "unavailable";
    case Code::kTimeout: return "timeout";
    case Code::kBadGateway: return "bad gateway";
    case Code::kMoved: return "moved";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace shardctl::core
