#include "core/counter_name.h"

#include <fmt/format.h>

namespace shardctl::core {
namespace {

bool AllowedInName(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-' || c == '/';
}

}  // namespace

Status ValidateCounterName(std::string_view name) {
  constexpr std::string_view kAllowed =
      "1 to 200 bytes of letters, digits and _ . : - / (e.g. pageviews or api:client42)";
  if (name.empty())
    return InvalidArgument(fmt::format("the counter name is empty; use {}", kAllowed));
  if (name.size() > kMaxCounterNameBytes) {
    return InvalidArgument(
        fmt::format("the counter name is {} bytes long; use {}", name.size(), kAllowed));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (!AllowedInName(name[i])) {
      auto byte = static_cast<unsigned char>(name[i]);
      std::string shown = byte >= 0x21 && byte < 0x7f && byte != '"' && byte != '\\'
                              ? fmt::format("'{}'", name[i])
                              : fmt::format("byte 0x{:02x}", byte);
      return InvalidArgument(
          fmt::format("the counter name has {} at position {}, which is not allowed; use {}", shown,
                      i + 1, kAllowed));
    }
  }
  return {};
}

}  // namespace shardctl::core
