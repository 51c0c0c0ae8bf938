#include "cmd/top_format.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace shardctl::cmd {
namespace {

constexpr int kGreen = 32;
constexpr int kRed = 31;

std::time_t ToTimeT(std::chrono::system_clock::time_point wall) {
  return std::chrono::system_clock::to_time_t(wall);
}

std::string Fixed(const std::optional<double>& value, int decimals) {
  if (!value) return "-";
  return fmt::format("{:.{}f}", *value, decimals);
}

std::string Milliseconds(double seconds) {
  if (std::isinf(seconds)) return "+Inf";
  return fmt::format("{:.3f}", seconds * 1000);
}

// Rounded to `decimals`, so that JSON shows 0.213 and not 0.21299999...
nlohmann::json Rounded(const std::optional<double>& value, int decimals) {
  if (!value || !std::isfinite(*value)) return nullptr;
  double scale = std::pow(10.0, decimals);
  return std::round(*value * scale) / scale;
}

// A byte that continues a UTF-8 character rather than starting one.
bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The length of the ANSI escape sequence at text[i] (ESC [ parameters
// final-letter), 0 when none starts there.
size_t EscapeLength(std::string_view text, size_t i) {
  if (text[i] != '\x1b' || i + 1 >= text.size() || text[i + 1] != '[') return 0;
  size_t end = i + 2;
  while (end < text.size() && !(text[end] >= 0x40 && text[end] <= 0x7e)) ++end;
  return end < text.size() ? end + 1 - i : text.size() - i;
}

std::string Paint(std::string_view text, int code, bool color) {
  if (!color) return std::string(text);
  return fmt::format("\x1b[{}m{}\x1b[0m", code, text);
}

std::string Spaces(int count) { return std::string(static_cast<size_t>(std::max(count, 0)), ' '); }

// `text` cut or padded with spaces to exactly `width` columns.
std::string PadTo(std::string_view text, int width) {
  std::string fitted = FitToWidth(text, width);
  return fitted + Spaces(width - DisplayWidth(fitted));
}

// `name` in at most `width` columns, its end replaced by "~" when cut.
std::string CutName(const std::string& name, int width) {
  if (DisplayWidth(name) <= width) return name;
  return FitToWidth(name, width - 1) + "~";
}

std::string IntervalWords(double seconds) { return fmt::format("every {:g} s", seconds); }

std::string LatencyWords(const LatencySummary& latency) {
  std::string max = std::isinf(latency.max_bound)
                        ? "> " + FormatDuration(latency.highest_finite_bound)
                        : "<= " + FormatDuration(latency.max_bound);
  return fmt::format("p50 {}  p99 {}  max {}", FormatDuration(latency.p50),
                     FormatDuration(latency.p99), max);
}

// The lines above the tables.
std::vector<std::string> Summary(const TopView& view, const ScreenOptions& options) {
  std::vector<std::string> lines;
  const int width = std::max(options.width, 1);
  // The title: what fits of its parts, whole, and "q: quit" at the right edge.
  const std::string right = "q: quit";
  const int right_width = static_cast<int>(right.size());
  const std::string parts[] = {options.url, IntervalWords(options.interval_seconds),
                               fmt::format("{:%H:%M:%S} UTC", fmt::gmtime(ToTimeT(view.wall)))};
  std::string left = "shardctl top";
  for (const std::string& part : parts) {
    if (DisplayWidth(left) + 2 + DisplayWidth(part) + 1 + right_width > width) break;
    left += "  " + part;
  }
  if (width >= DisplayWidth(left) + 1 + right_width) {
    lines.push_back(left + Spaces(width - DisplayWidth(left) - right_width) + right);
  } else {
    lines.push_back(left);
  }
  if (!options.error.empty()) lines.push_back(Paint("! " + options.error, kRed, options.color));

  std::string increments = "increments/s  ";
  if (!view.has_metrics) {
    increments += fmt::format("-  ({})", view.metrics_error);
  } else if (view.seconds <= 0) {
    increments += "-  (measuring)";
  } else {
    increments +=
        fmt::format("{:<10}  latency  ", FormatRate(view.increments_per_second.value_or(0)));
    increments += view.latency ? LatencyWords(*view.latency) : "-  (no increments)";
  }
  lines.push_back(increments);

  std::string total = "total         ";
  if (view.total) {
    total += fmt::format("{:<10}", *view.total);
    if (view.total_per_second)
      total += fmt::format("  {}/s", FormatRate(*view.total_per_second, true));
    total += "  (the default counter)";
  } else {
    total += fmt::format("-  ({})", view.total_error);
  }
  lines.push_back(total);
  lines.push_back(fmt::format("shards        {} of {} up", view.shards_up, view.shards.size()));
  return lines;
}

// The shard table: its header, then a row per shard.
std::vector<std::string> ShardTable(const TopView& view, const ScreenOptions& options) {
  std::vector<std::string> lines;
  const std::string header = fmt::format("{:<5}  {:<5}  {:>14}  {:>6}  {:>9}", "SHARD", "STATE",
                                         "COUNT", "PART", "CHANGE/S");
  lines.push_back(header);
  // What is left after the columns, for a bar as long as the shard's part.
  const int bar_width = options.width - DisplayWidth(header) - 2;
  for (const ShardView& shard : view.shards) {
    std::string state =
        shard.up ? Paint("up   ", kGreen, options.color) : Paint("down ", kRed, options.color);
    std::string line = fmt::format("{:<5}  {}  {:>14}  {:>6}  {:>9}", shard.id, state,
                                   shard.count ? std::to_string(*shard.count) : "-",
                                   shard.share ? fmt::format("{:.1f}%", *shard.share * 100) : "-",
                                   shard.per_second ? FormatRate(*shard.per_second, true) : "-");
    if (!shard.up && !shard.last_error.empty()) {
      line += "  " + shard.last_error;
    } else if (shard.share && bar_width >= 4) {
      int length = static_cast<int>(std::lround(*shard.share * bar_width));
      std::string bar;
      for (int i = 0; i < length; ++i) bar += "\u2588";
      line += "  " + bar;
    }
    lines.push_back(line);
  }
  return lines;
}

// The counter table: its header, then a row per counter (or why there are none).
std::vector<std::string> CounterTable(const TopView& view, const ScreenOptions& options) {
  std::vector<std::string> lines;
  constexpr int kNumbers = 2 + 20 + 2 + 9;  // the TOTAL and CHANGE/S columns
  int name_width = 7;                       // "COUNTER"
  if (view.counters) {
    for (const CounterView& counter : *view.counters) {
      name_width = std::max(name_width, DisplayWidth(counter.name));
    }
  }
  name_width = std::max(7, std::min(name_width, options.width - kNumbers));
  lines.push_back(
      fmt::format("{}  {:>20}  {:>9}", PadTo("COUNTER", name_width), "TOTAL", "CHANGE/S"));
  if (!view.counters) {
    lines.push_back(fmt::format("-  ({})", view.counters_error));
  } else if (view.counters->empty()) {
    lines.push_back("(no counters yet)");
  } else {
    for (const CounterView& counter : *view.counters) {
      lines.push_back(fmt::format(
          "{}  {:>20}  {:>9}", PadTo(CutName(counter.name, name_width), name_width), counter.total,
          counter.per_second ? FormatRate(*counter.per_second, true) : "-"));
    }
  }
  return lines;
}

// Cuts `table` to `rows` lines (header included), its last line saying how
// many rows did not fit.
void CutTable(std::vector<std::string>& table, int rows) {
  if (static_cast<int>(table.size()) <= rows) return;
  if (rows <= 1) {
    table.resize(static_cast<size_t>(std::max(rows, 0)));
    return;
  }
  size_t hidden = table.size() - static_cast<size_t>(rows) + 1;
  table.resize(static_cast<size_t>(rows) - 1);
  table.push_back(fmt::format("... {} more", hidden));
}

}  // namespace

int DisplayWidth(std::string_view text) {
  int width = 0;
  for (size_t i = 0; i < text.size();) {
    if (size_t escape = EscapeLength(text, i); escape > 0) {
      i += escape;
      continue;
    }
    if (!IsContinuation(text[i])) ++width;
    ++i;
  }
  return width;
}

std::string FitToWidth(std::string_view text, int width) {
  std::string fitted;
  int used = 0;
  bool colored = false;
  for (size_t i = 0; i < text.size();) {
    if (size_t escape = EscapeLength(text, i); escape > 0) {
      std::string_view sequence = text.substr(i, escape);
      if (sequence.back() == 'm') colored = sequence != "\x1b[0m" && sequence != "\x1b[m";
      fitted += sequence;
      i += escape;
      continue;
    }
    if (used == width) {
      if (colored) fitted += "\x1b[0m";
      return fitted;
    }
    ++used;
    fitted += text[i++];
    while (i < text.size() && IsContinuation(text[i])) fitted += text[i++];
  }
  return fitted;
}

std::string FormatRate(double per_second, bool signed_change) {
  double magnitude = std::fabs(per_second);
  std::string digits = fmt::format("{:.1f}", magnitude);
  if (digits.size() > 4) digits = fmt::format("{:.0f}", magnitude);  // 100.0 and up
  if (digits == "0.0" || digits == "0") return "0";
  if (per_second < 0) return "-" + digits;
  return signed_change ? "+" + digits : digits;
}

std::string FormatDuration(double seconds) {
  double ms = seconds * 1000;
  if (ms < 1) return fmt::format("{:.3f} ms", ms);
  if (ms < 10) return fmt::format("{:.2f} ms", ms);
  if (ms < 100) return fmt::format("{:.1f} ms", ms);
  if (ms < 999.5) return fmt::format("{:.0f} ms", ms);
  return fmt::format("{:.2f} s", seconds);
}

std::string FormatTopLine(const TopView& view) {
  const std::optional<LatencySummary>& latency = view.latency;
  std::string top;
  if (!view.counters) {
    top = "-";
  } else {
    for (const CounterView& counter : *view.counters) {
      if (!top.empty()) top += ',';
      top += counter.name + ":" + Fixed(counter.per_second, 1);
    }
  }
  return fmt::format(
      "time={:%Y-%m-%dT%H:%M:%SZ} seconds={:.3f} total={} total/s={} inc/s={} p50_ms={} "
      "p99_ms={} max_ms={} shards_up={} shards={} top={}",
      fmt::gmtime(ToTimeT(view.wall)), view.seconds, view.total ? std::to_string(*view.total) : "-",
      Fixed(view.total_per_second, 1), Fixed(view.increments_per_second, 1),
      latency ? Milliseconds(latency->p50) : "-", latency ? Milliseconds(latency->p99) : "-",
      latency ? Milliseconds(latency->max_bound) : "-", view.shards_up, view.shards.size(), top);
}

std::string FormatTopJson(const TopView& view) {
  nlohmann::json json = nlohmann::json::object();
  json["time"] = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(ToTimeT(view.wall)));
  json["seconds"] = Rounded(view.seconds, 3);
  json["total"] = view.total ? nlohmann::json(*view.total) : nlohmann::json(nullptr);
  json["totalPerSecond"] = Rounded(view.total_per_second, 1);
  json["incrementsPerSecond"] = Rounded(view.increments_per_second, 1);
  if (view.latency) {
    json["latencyMs"] = {{"p50", Rounded(view.latency->p50 * 1000, 3)},
                         {"p99", Rounded(view.latency->p99 * 1000, 3)},
                         {"max", Rounded(view.latency->max_bound * 1000, 3)}};
  } else {
    json["latencyMs"] = nullptr;
  }
  json["shardsUp"] = view.shards_up;
  json["shards"] = nlohmann::json::array();
  for (const ShardView& shard : view.shards) {
    json["shards"].push_back({{"shardId", shard.id},
                              {"state", shard.up ? "up" : "down"},
                              {"count", shard.count ? nlohmann::json(*shard.count) : nullptr},
                              {"share", Rounded(shard.share, 4)},
                              {"perSecond", Rounded(shard.per_second, 1)}});
  }
  if (view.counters) {
    json["counters"] = nlohmann::json::array();
    for (const CounterView& counter : *view.counters) {
      json["counters"].push_back({{"counter", counter.name},
                                  {"total", counter.total},
                                  {"perSecond", Rounded(counter.per_second, 1)}});
    }
  } else {
    json["counters"] = nullptr;
  }
  return json.dump();
}

std::vector<std::string> FormatTopScreen(const TopView& view, const ScreenOptions& options) {
  const int height = std::max(options.height, 1);
  std::vector<std::string> lines = Summary(view, options);
  std::vector<std::string> shards = ShardTable(view, options);
  std::vector<std::string> counters = CounterTable(view, options);
  // The tables share what the summary leaves, a blank line above each; the
  // shards come first, the counters get the rest.
  int left = height - static_cast<int>(lines.size());
  CutTable(shards, left - 1);
  left -= 1 + static_cast<int>(shards.size());
  CutTable(counters, left - 1);
  if (!shards.empty()) {
    lines.emplace_back();
    lines.insert(lines.end(), shards.begin(), shards.end());
  }
  if (!counters.empty()) {
    lines.emplace_back();
    lines.insert(lines.end(), counters.begin(), counters.end());
  }
  if (static_cast<int>(lines.size()) > height) lines.resize(static_cast<size_t>(height));
  for (std::string& line : lines) line = FitToWidth(line, std::max(options.width, 1));
  return lines;
}

}  // namespace shardctl::cmd
