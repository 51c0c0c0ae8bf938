#include "core/prometheus_text.h"

#include <charconv>
#include <cstdint>
#include <system_error>

#include <fmt/format.h>

namespace shardctl::core {
namespace {

// How much of a bad line an error shows.
constexpr size_t kShownBytes = 80;

bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

void SkipBlanks(std::string_view& rest) {
  while (!rest.empty() && IsBlank(rest.front())) rest.remove_prefix(1);
}

// Takes the name at the start of `rest`: [a-zA-Z_:][a-zA-Z0-9_:]* for a
// metric, without the colons for a label. "" when none starts there.
std::string_view TakeName(std::string_view& rest, bool colons) {
  auto allowed = [colons](char c, bool first) {
    return IsLetter(c) || c == '_' || (colons && c == ':') || (!first && IsDigit(c));
  };
  size_t length = 0;
  while (length < rest.size() && allowed(rest[length], length == 0)) ++length;
  std::string_view name = rest.substr(0, length);
  rest.remove_prefix(length);
  return name;
}

// Takes a quoted label value, unescaping it; returns false, with *error set,
// when it is not one.
bool TakeLabelValue(std::string_view& rest, std::string* value, std::string* error) {
  if (rest.empty() || rest.front() != '"') {
    *error = "a label value must be in double quotes";
    return false;
  }
  rest.remove_prefix(1);
  while (!rest.empty() && rest.front() != '"') {
    char c = rest.front();
    rest.remove_prefix(1);
    if (c != '\\') {
      value->push_back(c);
      continue;
    }
    if (rest.empty()) break;
    char escaped = rest.front();
    rest.remove_prefix(1);
    if (escaped == 'n') {
      value->push_back('\n');
    } else if (escaped == '\\' || escaped == '"') {
      value->push_back(escaped);
    } else {
      *error = fmt::format("unknown escape \\{} in a label value", escaped);
      return false;
    }
  }
  if (rest.empty()) {
    *error = "a label value has no closing quote";
    return false;
  }
  rest.remove_prefix(1);
  return true;
}

// A sample value: a float as Go's ParseFloat reads it, "+Inf", "-Inf", "NaN".
bool ParseSampleValue(std::string_view text, double* value) {
  // from_chars takes "inf" and "nan" in any case, and a '-', but no '+'.
  if (text.size() > 1 && text.front() == '+' && text[1] != '-' && text[1] != '+') {
    text.remove_prefix(1);
  }
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

bool ParseTimestamp(std::string_view text) {
  int64_t milliseconds = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), milliseconds);
  return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

// Parses one sample line; returns false, with *error set, when it is not one.
bool ParseSampleLine(std::string_view rest, MetricSample* sample, std::string* error) {
  sample->name = std::string(TakeName(rest, true));
  if (sample->name.empty()) {
    *error = "a sample must start with a metric name";
    return false;
  }
  SkipBlanks(rest);
  if (!rest.empty() && rest.front() == '{') {
    rest.remove_prefix(1);
    for (;;) {
      SkipBlanks(rest);
      if (!rest.empty() && rest.front() == '}') break;
      std::string_view label = TakeName(rest, false);
      if (label.empty()) {
        *error = "expected a label name or '}'";
        return false;
      }
      SkipBlanks(rest);
      if (rest.empty() || rest.front() != '=') {
        *error = fmt::format("expected '=' after the label {}", label);
        return false;
      }
      rest.remove_prefix(1);
      SkipBlanks(rest);
      std::string value;
      if (!TakeLabelValue(rest, &value, error)) return false;
      sample->labels.emplace_back(std::string(label), std::move(value));
      SkipBlanks(rest);
      if (!rest.empty() && rest.front() == ',') {
        rest.remove_prefix(1);
      } else if (rest.empty() || rest.front() != '}') {
        *error = "expected ',' or '}' after a label";
        return false;
      }
    }
    rest.remove_prefix(1);  // the '}'
  }
  SkipBlanks(rest);
  size_t value_end = 0;
  while (value_end < rest.size() && !IsBlank(rest[value_end])) ++value_end;
  if (!ParseSampleValue(rest.substr(0, value_end), &sample->value)) {
    *error = value_end == 0 ? "a sample has no value"
                            : fmt::format("'{}' is not a sample value", rest.substr(0, value_end));
    return false;
  }
  rest.remove_prefix(value_end);
  SkipBlanks(rest);
  if (rest.empty()) return true;
  size_t timestamp_end = 0;
  while (timestamp_end < rest.size() && !IsBlank(rest[timestamp_end])) ++timestamp_end;
  std::string_view timestamp = rest.substr(0, timestamp_end);
  rest.remove_prefix(timestamp_end);
  SkipBlanks(rest);
  if (!ParseTimestamp(timestamp) || !rest.empty()) {
    *error = "expected the end of the line or a timestamp in milliseconds after the value";
    return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> MetricSample::Label(std::string_view label) const {
  for (const auto& [name, value] : labels) {
    if (name == label) return std::string_view(value);
  }
  return std::nullopt;
}

Result<std::vector<MetricSample>> ParsePrometheusText(std::string_view text) {
  std::vector<MetricSample> samples;
  int line_number = 0;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view content = line;
    SkipBlanks(content);
    if (content.empty() || content.front() == '#') continue;
    MetricSample sample;
    std::string error;
    if (!ParseSampleLine(content, &sample, &error)) {
      auto cut = [](std::string_view text) {
        return std::string(text.substr(0, kShownBytes)) + (text.size() > kShownBytes ? "..." : "");
      };
      std::string shown = cut(line);
      error = cut(error);
      return Status(Code::kBadGateway,
                    fmt::format("line {} of the metrics is not a sample ({}): {}", line_number,
                                error, shown));
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

}  // namespace shardctl::core
