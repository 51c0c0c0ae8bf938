// How `shardctl top` shows a TopView: one line per interval for scripts (a
// line of key=value fields, or one JSON object), or a screen that fits a
// terminal of a given size. Pure functions; thread-safe.
#ifndef SHARDCTL_CMD_TOP_FORMAT_H_
#define SHARDCTL_CMD_TOP_FORMAT_H_

#include <string>
#include <string_view>
#include <vector>

#include "cmd/top_stats.h"

namespace shardctl::cmd {

// One line of space-separated key=value fields, always the same keys in the
// same order, "-" for a value not known (no rate yet, no /metrics, a shard
// down), without the newline:
//   time=2026-12-02T20:51:03Z seconds=1.000 total=12345 total/s=61230.0
//   inc/s=2041.0 p50_ms=0.213 p99_ms=1.300 max_ms=2.500 shards_up=3 shards=3
//   top=page:home:170.0,api:c42:-
// top= lists the counters as NAME:CHANGE_PER_SECOND (a name may hold ':',
// the rate follows the last one), largest total first; empty when there
// are none.
std::string FormatTopLine(const TopView& view);

// The same as one JSON object, without the newline: {"time":"...",
// "seconds":1.0,"total":12345,"totalPerSecond":61230.0,
// "incrementsPerSecond":2041.0,"latencyMs":{"p50":..,"p99":..,"max":..},
// "shardsUp":3,"shards":[{"shardId":0,"state":"up","count":c,"share":0.33,
// "perSecond":..},...],"counters":[{"counter":"a","total":5,"perSecond":..}]},
// null for what is not known ("max" is null when above every bucket).
std::string FormatTopJson(const TopView& view);

struct ScreenOptions {
  std::string url;  // the aggregator's
  double interval_seconds = 1;
  int width = 80;      // columns
  int height = 24;     // rows
  bool color = false;  // ANSI colours for states and errors
  std::string error;   // the last reading failed: why ("" if it did not)
};

// The screen for `view`: at most options.height lines of at most
// options.width columns each (not counting colour codes), without newlines.
// When options.error is set, it is shown under the title and the rest is
// the last view that could be read.
std::vector<std::string> FormatTopScreen(const TopView& view, const ScreenOptions& options);

// The columns `text` takes on a terminal: one per UTF-8 character, none for
// an ANSI escape sequence (ESC [ ... letter).
int DisplayWidth(std::string_view text);

// `text` cut to at most `width` columns as DisplayWidth counts them; colour
// codes are kept, and a reset added if the cut fell inside a coloured part.
std::string FitToWidth(std::string_view text, int width);

// A rate for people: no decimals from 100 on, one below ("2041", "12.5",
// "0.3"); with a sign when `signed_change` ("+170", "-3.5", "0").
std::string FormatRate(double per_second, bool signed_change = false);

// A duration in seconds for people, three significant digits:
// "0.213 ms", "1.30 ms", "12.5 ms", "250 ms", "2.50 s".
std::string FormatDuration(double seconds);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_TOP_FORMAT_H_
