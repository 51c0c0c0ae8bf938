#include "net/auth.h"

namespace shardctl::net {

bool BearerTokenMatches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() != kScheme.size() + token.size()) return false;
  // OR the differences of every byte together: no early exit.
  unsigned char difference = 0;
  for (size_t i = 0; i < authorization.size(); ++i) {
    char expected = i < kScheme.size() ? kScheme[i] : token[i - kScheme.size()];
    difference |= static_cast<unsigned char>(authorization[i] ^ expected);
  }
  // volatile: the compiler may not turn the loop into an early-exit compare.
  volatile unsigned char result = difference;
  return result == 0;
}

}  // namespace shardctl::net
