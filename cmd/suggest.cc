#include "cmd/suggest.h"

#include <algorithm>

namespace shardctl::cmd {
namespace {

// Optimal string alignment distance (Damerau-Levenshtein without repeated
// edits of one substring).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string ClosestMatch(std::string_view typed, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = 3;  // more than 2 edits is not a typo
  for (const std::string& candidate : candidates) {
    size_t distance = EditDistance(typed, candidate);
    if (distance < best_distance && distance * 2 < typed.size()) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace shardctl::cmd
