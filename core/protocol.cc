#include "core/protocol.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/counter_name.h"
#include "core/idempotency_key.h"
#include "core/value.h"
#include "core/window.h"

namespace shardctl::core {
namespace {

using Json = nlohmann::json;

// Parses `body` as JSON without throwing; a discarded value means "not JSON".
Json ParseJson(std::string_view body) {
  return Json::parse(body.begin(), body.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
}

// Reads an int64 out of a JSON number, refusing every other type.
Result<int64_t> JsonToInt64(const Json& value, std::string_view field) {
  if (value.is_number_unsigned()) {
    auto unsigned_value = value.get<uint64_t>();
    if (unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return InvalidArgument(
          fmt::format("\"{}\" {} is outside the 64-bit integer range", field, unsigned_value));
    }
    return static_cast<int64_t>(unsigned_value);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_float()) {
    double number = value.get<double>();
    // Integers too large for 64 bits arrive as doubles; -2^63 as an integer
    // literal stays an integer, so a double of -2^63 was out of range too.
    constexpr double kTwoTo63 = 9223372036854775808.0;
    if (std::isfinite(number) && std::trunc(number) == number &&
        (number >= kTwoTo63 || number <= -kTwoTo63)) {
      return InvalidArgument(fmt::format("\"{}\" is outside the 64-bit integer range", field));
    }
    return InvalidArgument(fmt::format("\"{}\" must be an integer, not {}", field, value.dump()));
  }
  return InvalidArgument(
      fmt::format("\"{}\" must be an integer, not {}", field, value.type_name()));
}

// Reads a counter name out of a JSON value, refusing non-strings and bad names.
Result<std::string> JsonToName(const Json& value) {
  if (!value.is_string()) {
    return InvalidArgument(fmt::format("\"counter\" must be a string, not {}", value.type_name()));
  }
  std::string name = value.get<std::string>();
  if (Status valid = ValidateCounterName(name); !valid.ok()) return valid;
  return name;
}

// Reads the body field `key` into `counter` if it is "counter" or "window".
// Returns false for any other field, or the field's error.
Result<bool> ReadCounterField(const std::string& key, const Json& field, CounterRef* counter) {
  if (key == "counter") {
    Result<std::string> name = JsonToName(field);
    if (!name.ok()) return name.status();
    counter->name = *name;
    return true;
  }
  if (key == "window") {
    Result<int64_t> window = JsonToInt64(field, "window");
    if (!window.ok()) return window.status();
    if (Status valid = ValidateWindow(*window); !valid.ok()) return valid;
    counter->window = *window;
    return true;
  }
  return false;
}

// Parses a body that must be a JSON object; "" for an empty object.
Result<Json> ParseObject(std::string_view body, std::string_view example) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return Json::object();
  Json json = ParseJson(body);
  if (json.is_discarded()) {
    return InvalidArgument(
        fmt::format("the body is not valid JSON; send an object such as {}", example));
  }
  if (!json.is_object()) {
    return InvalidArgument(fmt::format("the body must be a JSON object such as {}, not {}", example,
                                       json.type_name()));
  }
  return json;
}

Status NotAReply(std::string_view what, std::string_view body) {
  return {Code::kBadGateway, fmt::format("expected {} but got: {}", what, ParseErrorMessage(body))};
}

// Reads field `name` of a reply as an int64; nullopt if it is missing or not one.
std::optional<int64_t> ReplyInt(const Json& json, const char* name) {
  if (!json.is_object() || !json.contains(name)) return std::nullopt;
  Result<int64_t> value = JsonToInt64(json[name], name);
  if (!value.ok()) return std::nullopt;
  return *value;
}

std::optional<int> ReplyShardId(const Json& json) {
  std::optional<int64_t> id = ReplyInt(json, "shardId");
  if (!id || *id < 0 || *id > std::numeric_limits<int>::max()) return std::nullopt;
  return static_cast<int>(*id);
}

// ,"counter":"x","window":W,"windowEnd":E: the fields that name a counter in
// replies, none for the default counter.
std::string CounterFields(const CounterRef& counter, int64_t window_end) {
  if (counter.is_default()) return {};
  std::string fields = fmt::format(R"(,"counter":"{}")", counter.name);
  if (counter.window > 0) {
    fields += fmt::format(R"(,"window":{},"windowEnd":{})", counter.window, window_end);
  }
  return fields;
}

// Parses an optional query parameter as a decimal integer in [min, max].
Result<int64_t> ParseIntParam(const std::optional<std::string>& text, std::string_view name,
                              int64_t fallback, int64_t min, int64_t max) {
  if (!text) return fallback;
  Result<int64_t> value = ParseValue(*text);
  if (!value.ok() || *value < min || *value > max) {
    return InvalidArgument(
        fmt::format("the parameter {} must be an integer from {} to {}", name, min, max));
  }
  return *value;
}

}  // namespace

Result<IncrementRequest> ParseIncrementRequest(std::string_view body) {
  Result<Json> json = ParseObject(body, R"({"value":5} or {"value":5,"counter":"pageviews"})");
  if (!json.ok()) return json.status();
  IncrementRequest request;
  for (const auto& [key, field] : json->items()) {
    if (key == "value") {
      Result<int64_t> value = JsonToInt64(field, "value");
      if (!value.ok()) return value.status();
      request.value = *value;
    } else if (Result<bool> named = ReadCounterField(key, field, &request.counter); !named.ok()) {
      return named.status();
    } else if (!*named) {
      return InvalidArgument(fmt::format(
          "unknown field \"{}\"; the fields are \"value\", \"counter\" and \"window\"", key));
    }
  }
  return request;
}

Result<IncrementRequest> ParseIncrementRequest(std::string_view body,
                                               const std::vector<std::string>& key_headers) {
  if (key_headers.size() > 1) {
    return InvalidArgument("more than one Idempotency-Key header; send exactly one");
  }
  Result<IncrementRequest> request = ParseIncrementRequest(body);
  if (!request.ok() || key_headers.empty()) return request;
  Result<std::string> key = ParseIdempotencyKeyHeader(key_headers.front());
  if (!key.ok()) return key.status();
  request->idempotency_key = std::move(*key);
  return request;
}

bool IsBatchBody(std::string_view body) { return body.find("\"values\"") != body.npos; }

Result<BatchRequest> ParseBatchRequest(std::string_view body,
                                       const std::vector<std::string>& key_headers) {
  if (key_headers.size() > 1) {
    return InvalidArgument("more than one Idempotency-Key header; send exactly one");
  }
  Result<Json> json = ParseObject(body, R"({"values":[1,2,3]})");
  if (!json.ok()) return json.status();
  BatchRequest request;
  bool has_values = false;
  for (const auto& [key, field] : json->items()) {
    if (key == "values") {
      if (!field.is_array()) {
        return InvalidArgument(fmt::format(
            "\"values\" must be an array of integers such as [1,2,3], not {}", field.type_name()));
      }
      if (field.empty() || field.size() > BatchRequest::kMaxValues) {
        return InvalidArgument(fmt::format("\"values\" must hold 1 to {} integers, not {}",
                                           BatchRequest::kMaxValues, field.size()));
      }
      request.values.reserve(field.size());
      for (size_t i = 0; i < field.size(); ++i) {
        Result<int64_t> value = JsonToInt64(field[i], "values");
        if (!value.ok()) {
          return InvalidArgument(fmt::format("at values[{}]: {}", i, value.status().message()));
        }
        request.values.push_back(*value);
      }
      has_values = true;
    } else if (Result<bool> named = ReadCounterField(key, field, &request.counter); !named.ok()) {
      return named.status();
    } else if (!*named) {
      return InvalidArgument(fmt::format(
          "unknown field \"{}\" in a batch; the fields are \"values\", \"counter\" and "
          "\"window\"",
          key));
    }
  }
  if (!has_values) return InvalidArgument(R"(a batch needs "values", e.g. {"values":[1,2,3]})");
  if (!key_headers.empty()) {
    Result<std::string> key = ParseIdempotencyKeyHeader(key_headers.front());
    if (!key.ok()) return key.status();
    request.idempotency_key = std::move(*key);
  }
  return request;
}

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

Status TooManyItems() {
  return InvalidArgument(
      fmt::format("a batch holds at most {} increments; send the rest in "
                  "another",
                  ManyRequest::kMaxItems));
}

// `COUNTER VALUE` lines into request->items.
Status ParseManyLines(std::string_view body, ManyRequest* request) {
  int64_t line_number = 0;
  for (size_t at = 0; at < body.size();) {
    size_t end = body.find('\n', at);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = Trim(body.substr(at, end - at));
    at = end + 1;
    ++line_number;
    if (line.empty()) continue;
    const size_t gap = line.find_first_of(" \t");
    std::string_view name = line.substr(0, gap);
    std::string_view value_text =
        gap == std::string_view::npos ? std::string_view() : Trim(line.substr(gap));
    if (value_text.empty() || value_text.find_first_of(" \t") != std::string_view::npos) {
      return InvalidArgument(fmt::format(
          "line {}: expected COUNTER VALUE (a name, a space, an integer), such as \"c:1 5\"",
          line_number));
    }
    if (Status valid = ValidateCounterName(name); !valid.ok()) {
      return InvalidArgument(fmt::format("line {}: {}", line_number, valid.message()));
    }
    Result<int64_t> value = ParseValue(value_text);
    if (!value.ok()) {
      return InvalidArgument(fmt::format("line {}: {}", line_number, value.status().message()));
    }
    if (request->items.size() == ManyRequest::kMaxItems) return TooManyItems();
    request->items.push_back({std::string(name), *value});
  }
  return {};
}

// {"increments":[...],"window":W} into *request.
Status ParseManyJson(std::string_view body, ManyRequest* request, bool* has_window) {
  constexpr std::string_view kExample = R"({"increments":[{"counter":"c:1","value":5}]})";
  Result<Json> json = ParseObject(body, kExample);
  if (!json.ok()) return json.status();
  for (const auto& [key, field] : json->items()) {
    if (key == "window") {
      CounterRef counter;
      if (Result<bool> read = ReadCounterField(key, field, &counter); !read.ok()) {
        return read.status();
      }
      request->window = counter.window;
      *has_window = true;
      continue;
    }
    if (key != "increments") {
      return InvalidArgument(fmt::format(
          "unknown field \"{}\" in a batch of many counters; the fields are \"increments\" "
          "and \"window\"",
          key));
    }
    if (!field.is_array()) {
      return InvalidArgument(fmt::format("\"increments\" must be an array such as {}, not {}",
                                         kExample, field.type_name()));
    }
    if (field.size() > ManyRequest::kMaxItems) return TooManyItems();
    request->items.reserve(field.size());
    for (size_t i = 0; i < field.size(); ++i) {
      const Json& item = field[i];
      auto bad = [i](std::string_view why) {
        return InvalidArgument(fmt::format("increments[{}]: {}", i, why));
      };
      if (!item.is_object()) {
        return bad(
            fmt::format("must be an object such as {{\"counter\":\"c:1\",\"value\":5}}, "
                        "not {}",
                        item.type_name()));
      }
      ManyRequest::Item parsed{std::string(), 1};
      bool named = false;
      for (const auto& [item_key, item_field] : item.items()) {
        if (item_key == "counter") {
          Result<std::string> name = JsonToName(item_field);
          if (!name.ok()) return bad(name.status().message());
          parsed.counter = std::move(*name);
          named = true;
        } else if (item_key == "value") {
          Result<int64_t> value = JsonToInt64(item_field, "value");
          if (!value.ok()) return bad(value.status().message());
          parsed.value = *value;
        } else {
          return bad(
              fmt::format("unknown field \"{}\"; the fields are \"counter\" and "
                          "\"value\"",
                          item_key));
        }
      }
      if (!named) return bad("needs a \"counter\"");
      request->items.push_back(std::move(parsed));
    }
  }
  return {};
}

}  // namespace

bool IsManyBody(std::string_view body, const std::vector<std::string>& content_types) {
  if (body.find("\"increments\"") != std::string_view::npos) return true;
  if (content_types.size() != 1) return false;
  std::string type = content_types.front().substr(0, 10);
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const size_t first = body.find_first_not_of(" \t\r\n");
  return type == "text/plain" && first != std::string_view::npos && body[first] != '{';
}

Result<ManyRequest> ParseManyRequest(std::string_view body, bool lines,
                                     const std::optional<std::string>& window_param,
                                     const std::vector<std::string>& key_headers) {
  if (key_headers.size() > 1) {
    return InvalidArgument("more than one Idempotency-Key header; send exactly one");
  }
  ManyRequest request;
  bool has_window = false;
  if (Status parsed =
          lines ? ParseManyLines(body, &request) : ParseManyJson(body, &request, &has_window);
      !parsed.ok()) {
    return parsed;
  }
  if (request.items.empty()) {
    return InvalidArgument(
        lines
            ? "no increments: send lines of COUNTER VALUE, such as \"c:1 5\""
            : R"(a batch of many counters needs "increments", e.g. {"increments":[{"counter":"c:1","value":5}]})");
  }
  if (window_param) {
    if (has_window) {
      return InvalidArgument("give the window in the query or in the body, not both");
    }
    Result<CounterRef> counter = ParseCounterQuery(std::nullopt, window_param);
    if (!counter.ok()) return counter.status();
    request.window = counter->window;
  }
  if (!key_headers.empty()) {
    Result<std::string> key = ParseIdempotencyKeyHeader(key_headers.front());
    if (!key.ok()) return key.status();
    request.idempotency_key = std::move(*key);
  }
  return request;
}

void FormatManyLines(const ManyRequest& request, std::string* out) {
  for (const ManyRequest::Item& item : request.items) {
    out->append(item.counter);
    fmt::format_to(std::back_inserter(*out), " {}\n", item.value);
  }
}

std::string FormatManyShareReply(const ManyReply& reply) {
  std::string body = fmt::format(R"({{"shardId":{},"applied":{})", reply.shard_id, reply.applied);
  if (reply.window_end > 0) body += fmt::format(R"(,"windowEnd":{})", reply.window_end);
  return body + "}";
}

Result<ManyReply> ParseManyShareReply(std::string_view body) {
  Json json = ParseJson(body);
  std::optional<int> id = ReplyShardId(json);
  std::optional<int64_t> applied = ReplyInt(json, "applied");
  if (!id || !applied) return NotAReply("a shard's answer to a batch", body);
  return ManyReply{*id, *applied, ReplyInt(json, "windowEnd").value_or(0)};
}

std::string FormatManyReply(const ManyBatchReply& reply) {
  std::string body = fmt::format(R"({{"applied":{},"parts":[)", reply.applied);
  for (size_t i = 0; i < reply.parts.size(); ++i) {
    body += fmt::format(R"({}{{"shardId":{},"applied":{}}})", i == 0 ? "" : ",",
                        reply.parts[i].shard_id, reply.parts[i].applied);
  }
  body += "]";
  if (reply.window_end > 0) body += fmt::format(R"(,"windowEnd":{})", reply.window_end);
  return body + "}";
}

Result<ManyBatchReply> ParseManyReply(std::string_view body) {
  Json json = ParseJson(body);
  std::optional<int64_t> applied = ReplyInt(json, "applied");
  if (!applied || !json.contains("parts") || !json["parts"].is_array()) {
    return NotAReply("an answer to a batch", body);
  }
  ManyBatchReply reply;
  reply.applied = *applied;
  reply.window_end = ReplyInt(json, "windowEnd").value_or(0);
  for (const Json& part : json["parts"]) {
    std::optional<int> id = ReplyShardId(part);
    std::optional<int64_t> part_applied = ReplyInt(part, "applied");
    if (!id || !part_applied) return NotAReply("an answer to a batch", body);
    reply.parts.push_back({*id, *part_applied, 0});
  }
  return reply;
}

std::string FormatBatchRequest(const BatchRequest& request) {
  std::string body = R"({"values":[)";
  for (size_t i = 0; i < request.values.size(); ++i) {
    if (i > 0) body += ',';
    body += std::to_string(request.values[i]);
  }
  body += "]";
  if (!request.counter.is_default()) {
    body += fmt::format(R"(,"counter":"{}")", request.counter.name);
  }
  if (request.counter.window > 0) body += fmt::format(R"(,"window":{})", request.counter.window);
  return body + "}";
}

std::string FormatBatchReply(const BatchReply& reply, const CounterRef& counter) {
  std::string body = fmt::format(R"({{"success":true,"applied":{},"shards":[)", reply.applied);
  for (size_t i = 0; i < reply.parts.size(); ++i) {
    const BatchPart& part = reply.parts[i];
    body += fmt::format(R"({}{{"shardId":{},"applied":{},"count":{}}})", i == 0 ? "" : ",",
                        part.shard_id, part.applied, part.count);
  }
  return body + "]" + CounterFields(counter, reply.window_end) + "}";
}

Result<BatchReply> ParseBatchReply(std::string_view body) {
  Json json = ParseJson(body);
  std::optional<int64_t> applied = ReplyInt(json, "applied");
  if (!applied || !json.contains("shards") || !json["shards"].is_array()) {
    return NotAReply("a batch reply", body);
  }
  BatchReply reply;
  reply.applied = *applied;
  reply.window_end = ReplyInt(json, "windowEnd").value_or(0);
  for (const Json& shard : json["shards"]) {
    std::optional<int> id = ReplyShardId(shard);
    std::optional<int64_t> part_applied = ReplyInt(shard, "applied");
    std::optional<int64_t> count = ReplyInt(shard, "count");
    if (!id || !part_applied || !count) return NotAReply("a batch reply", body);
    reply.parts.push_back({*id, *part_applied, *count});
  }
  return reply;
}

std::string FormatIncrementRequest(const IncrementRequest& request) {
  std::string body = fmt::format(R"({{"value":{})", request.value);
  if (!request.counter.is_default())
    body += fmt::format(R"(,"counter":"{}")", request.counter.name);
  if (request.counter.window > 0) body += fmt::format(R"(,"window":{})", request.counter.window);
  return body + "}";
}

std::string FormatIncrementReply(const IncrementReply& reply, const CounterRef& counter) {
  return fmt::format(R"({{"success":true,"shardId":{},"count":{}{}}})", reply.shard_id, reply.count,
                     CounterFields(counter, reply.window_end));
}

Result<IncrementReply> ParseIncrementReply(std::string_view body) {
  Json json = ParseJson(body);
  std::optional<int> shard_id = ReplyShardId(json);
  std::optional<int64_t> count = ReplyInt(json, "count");
  if (!json.is_object() || !json.contains("success") || json["success"] != true || !shard_id ||
      !count) {
    return NotAReply("an increment reply", body);
  }
  return IncrementReply{*shard_id, *count, ReplyInt(json, "windowEnd").value_or(0)};
}

Result<CounterRef> ParseCounterQuery(const std::optional<std::string>& counter,
                                     const std::optional<std::string>& window) {
  CounterRef ref;
  if (counter) {
    if (Status valid = ValidateCounterName(*counter); !valid.ok()) return valid;
    ref.name = *counter;
  }
  if (window) {
    Result<int64_t> seconds = ParseValue(*window);
    if (!seconds.ok())
      return InvalidArgument("the parameter window: " + seconds.status().message());
    if (Status valid = ValidateWindow(*seconds); !valid.ok()) return valid;
    ref.window = *seconds;
  }
  return ref;
}

std::string CounterQueryString(const CounterRef& counter) {
  if (counter.is_default()) return {};
  // Names hold only characters that need no escaping in a query.
  std::string query = "?counter=" + counter.name;
  if (counter.window > 0) query += fmt::format("&window={}", counter.window);
  return query;
}

std::string FormatCountReply(const CountReply& reply, const CounterRef& counter) {
  return fmt::format(R"({{"shardId":{},"count":{}{}}})", reply.shard_id, reply.count,
                     CounterFields(counter, reply.window_end));
}

Result<CountReply> ParseCountReply(std::string_view body) {
  Json json = ParseJson(body);
  std::optional<int> shard_id = ReplyShardId(json);
  std::optional<int64_t> count = ReplyInt(json, "count");
  if (!shard_id || !count) return NotAReply("a count reply", body);
  return CountReply{*shard_id, *count, ReplyInt(json, "windowEnd").value_or(0)};
}

std::string FormatTotalReply(const TotalReply& reply, const CounterRef& counter, bool per_shard) {
  std::string body =
      fmt::format(R"({{"total":{}{})", reply.total, CounterFields(counter, reply.window_end));
  auto is_missing = [&reply](size_t shard) {
    return std::any_of(reply.missing.begin(), reply.missing.end(),
                       [shard](const MissingPart& part) { return part.shard_id == static_cast<int>(shard); });
  };
  if (per_shard) {
    body += R"(,"shards":[)";
    for (size_t i = 0; i < reply.parts.size(); ++i) {
      body += fmt::format(R"({}{{"shardId":{},"count":{}}})", i == 0 ? "" : ",", i,
                          is_missing(i) ? "null" : std::to_string(reply.parts[i]));
    }
    body += "]";
  }
  if (reply.partial) {
    Json missing = Json::array();
    for (const MissingPart& part : reply.missing) {
      missing.push_back({{"shardId", part.shard_id}, {"error", part.error}});
    }
    body += fmt::format(R"(,"partial":{},"missing":{})", !reply.missing.empty(),
                        missing.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return body + "}";
}

Result<TotalReply> ParseTotalReply(std::string_view body) {
  Json json = ParseJson(body);
  std::optional<int64_t> total = ReplyInt(json, "total");
  if (!total) return NotAReply("a total reply", body);
  TotalReply reply;
  reply.total = *total;
  reply.window_end = ReplyInt(json, "windowEnd").value_or(0);
  if (json.contains("shards")) {
    if (!json["shards"].is_array()) return NotAReply("a total reply", body);
    for (const Json& shard : json["shards"]) {
      std::optional<int64_t> count = ReplyInt(shard, "count");
      if (!count && !(shard.is_object() && shard.contains("count") && shard["count"].is_null())) {
        return NotAReply("a total reply", body);
      }
      reply.parts.push_back(count.value_or(0));
    }
  }
  if (json.contains("partial")) {
    if (!json["partial"].is_boolean() || !json.contains("missing") ||
        !json["missing"].is_array()) {
      return NotAReply("a total reply", body);
    }
    reply.partial = true;
    for (const Json& part : json["missing"]) {
      std::optional<int> shard_id = ReplyShardId(part);
      if (!shard_id || !part.contains("error") || !part["error"].is_string()) {
        return NotAReply("a total reply", body);
      }
      reply.missing.push_back({*shard_id, part["error"].get<std::string>()});
    }
  }
  return reply;
}

std::string FormatShardStates(Routing routing, const std::vector<ShardState>& states) {
  Json shards = Json::array();
  for (const ShardState& state : states) {
    Json shard = {{"shardId", state.id},
                  {"address", state.address},
                  {"state", state.up ? "up" : "down"},
                  {"since", state.since}};
    shard["lastError"] = state.last_error.empty() ? Json(nullptr) : Json(state.last_error);
    shard["count"] = state.count ? Json(*state.count) : Json(nullptr);
    shards.push_back(std::move(shard));
  }
  Json body = {{"routing", std::string(RoutingName(routing))}, {"shards", std::move(shards)}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::vector<ShardState>> ParseShardStates(std::string_view body) {
  Json json = ParseJson(body);
  if (!json.is_object() || !json.contains("shards") || !json["shards"].is_array()) {
    return NotAReply("a shard listing", body);
  }
  std::vector<ShardState> states;
  for (const Json& shard : json["shards"]) {
    std::optional<int> id = ReplyShardId(shard);
    std::optional<int64_t> since = ReplyInt(shard, "since");
    if (!id || !since || !shard.contains("address") || !shard["address"].is_string() ||
        !shard.contains("state") || !shard["state"].is_string()) {
      return NotAReply("a shard listing", body);
    }
    ShardState state;
    state.id = *id;
    state.address = shard["address"].get<std::string>();
    state.up = shard["state"] == "up";
    state.since = *since;
    if (shard.contains("lastError") && shard["lastError"].is_string()) {
      state.last_error = shard["lastError"].get<std::string>();
    }
    state.count = ReplyInt(shard, "count");
    states.push_back(std::move(state));
  }
  return states;
}

std::string FormatCounterParts(int shard_id, const std::vector<CounterPart>& parts) {
  std::string body = fmt::format(R"({{"shardId":{},"counters":[)", shard_id);
  body.reserve(body.size() + parts.size() * 48);
  for (size_t i = 0; i < parts.size(); ++i) {
    fmt::format_to(std::back_inserter(body), R"({}{{"counter":"{}","count":{}}})",
                   i == 0 ? "" : ",", parts[i].name, parts[i].count);
  }
  return body + "]}";
}

Result<std::vector<CounterPart>> ParseCounterParts(std::string_view body) {
  Json json = ParseJson(body);
  if (!json.is_object() || !json.contains("counters") || !json["counters"].is_array()) {
    return NotAReply("a counter listing", body);
  }
  std::vector<CounterPart> parts;
  parts.reserve(json["counters"].size());
  for (const Json& entry : json["counters"]) {
    std::optional<int64_t> count = ReplyInt(entry, "count");
    if (!count || !entry.contains("counter")) return NotAReply("a counter listing", body);
    Result<std::string> name = JsonToName(entry["counter"]);
    if (!name.ok()) return NotAReply("a counter listing", body);
    parts.push_back({*name, *count});
  }
  return parts;
}

Result<ShardListQuery> ParseShardListQuery(const std::optional<std::string>& prefix,
                                           const std::optional<std::string>& order,
                                           const std::optional<std::string>& limit,
                                           const std::optional<std::string>& after,
                                           const std::optional<std::string>& after_count) {
  ShardListQuery query;
  for (const auto& [text, name] : {std::pair{&prefix, "prefix"}, std::pair{&after, "after"}}) {
    if (!*text || (*text)->empty()) continue;
    if (Status valid = ValidateCounterName(**text); !valid.ok()) {
      return InvalidArgument(fmt::format("the parameter {}: {}", name, valid.message()));
    }
  }
  const std::string prefix_text = prefix.value_or("");
  if (order && *order != "name" && *order != "count") {
    return InvalidArgument("the parameter order is name or count");
  }
  if (!limit) {
    if (order || after || after_count) {
      return InvalidArgument("order, after and afterCount go with limit");
    }
    query.page.prefix = prefix_text;
    return query;
  }
  Result<int64_t> size = ParseIntParam(limit, "limit", 0, 1, kMaxShardPage);
  if (!size.ok()) return size.status();
  if (order && *order == "count") {
    query.kind = ShardListQuery::Kind::kRank;
    query.rank.prefix = prefix_text;
    query.rank.limit = static_cast<size_t>(*size);
    if (after.has_value() != after_count.has_value()) {
      return InvalidArgument("a cursor by count names both after and afterCount");
    }
    if (after_count) {
      Result<int64_t> count = ParseValue(*after_count);
      if (!count.ok())
        return InvalidArgument("the parameter afterCount: " + count.status().message());
      query.rank.from_start = false;
      query.rank.after = {*count, *after};
    }
    return query;
  }
  if (after_count) return InvalidArgument("afterCount goes with order=count");
  query.kind = ShardListQuery::Kind::kPage;
  query.page = {prefix_text, after.value_or(""), static_cast<size_t>(*size)};
  return query;
}

// Names hold only characters that need no escaping in a query.
std::string PageQueryString(const PageQuery& query) {
  std::string text = fmt::format("?prefix={}&limit={}", query.prefix, query.limit);
  if (!query.after.empty()) text += "&after=" + query.after;
  return text;
}

std::string RankQueryString(const RankQuery& query) {
  std::string text = fmt::format("?order=count&prefix={}&limit={}", query.prefix, query.limit);
  if (!query.from_start) {
    text += fmt::format("&after={}&afterCount={}", query.after.name, query.after.count);
  }
  return text;
}

Result<std::vector<std::string>> ParseCountsRequest(std::string_view body) {
  Result<Json> json = ParseObject(body, R"({"counters":["a","b"]})");
  if (!json.ok()) return json.status();
  for (const auto& [key, field] : json->items()) {
    if (key != "counters") {
      return InvalidArgument(
          fmt::format("unknown field \"{}\"; the only field is \"counters\"", key));
    }
  }
  if (!json->contains("counters") || !(*json)["counters"].is_array() ||
      (*json)["counters"].empty() || (*json)["counters"].size() > kMaxCountsNames) {
    return InvalidArgument(
        fmt::format(R"(name 1 to {} counters: {{"counters":["a","b"]}})", kMaxCountsNames));
  }
  std::vector<std::string> names;
  names.reserve((*json)["counters"].size());
  for (const Json& entry : (*json)["counters"]) {
    Result<std::string> name = JsonToName(entry);
    if (!name.ok()) {
      return InvalidArgument(
          fmt::format("counters[{}]: {}", names.size(), name.status().message()));
    }
    names.push_back(std::move(name).value());
  }
  return names;
}

std::string FormatCountsRequest(const std::vector<std::string>& names) {
  std::string body = R"({"counters":[)";
  for (size_t i = 0; i < names.size(); ++i) {
    body += fmt::format(R"({}"{}")", i == 0 ? "" : ",", names[i]);
  }
  return body + "]}";
}

std::string FormatCountsReply(int shard_id, const std::vector<int64_t>& counts) {
  std::string body = fmt::format(R"({{"shardId":{},"counts":[)", shard_id);
  for (size_t i = 0; i < counts.size(); ++i) {
    body += fmt::format("{}{}", i == 0 ? "" : ",", counts[i]);
  }
  return body + "]}";
}

Result<std::vector<int64_t>> ParseCountsReply(std::string_view body) {
  Json json = ParseJson(body);
  if (!json.is_object() || !json.contains("counts") || !json["counts"].is_array()) {
    return NotAReply("a counts reply", body);
  }
  std::vector<int64_t> counts;
  counts.reserve(json["counts"].size());
  for (const Json& entry : json["counts"]) {
    Result<int64_t> count = JsonToInt64(entry, "counts");
    if (!count.ok()) return NotAReply("a counts reply", body);
    counts.push_back(*count);
  }
  return counts;
}

Result<ListQuery> ParseListQuery(const std::optional<std::string>& prefix,
                                 const std::optional<std::string>& top,
                                 const std::optional<std::string>& limit,
                                 const std::optional<std::string>& after) {
  ListQuery query;
  if (prefix && !prefix->empty()) {
    if (Status valid = ValidateCounterName(*prefix); !valid.ok()) {
      return InvalidArgument("the parameter prefix: " + valid.message());
    }
    query.prefix = *prefix;
  }
  Result<int64_t> top_value = ParseIntParam(top, "top", 0, 1, ListQuery::kMaxLimit);
  if (!top_value.ok()) return top_value.status();
  Result<int64_t> limit_value = ParseIntParam(limit, "limit", query.limit, 1, ListQuery::kMaxLimit);
  if (!limit_value.ok()) return limit_value.status();
  query.top = static_cast<int>(*top_value);
  query.limit = static_cast<int>(*limit_value);
  if (after && !after->empty()) {
    if (Status valid = ValidateCounterName(*after); !valid.ok()) {
      return InvalidArgument("the parameter after: " + valid.message());
    }
    query.after = *after;
  }
  if (query.top > 0 && (limit || after)) {
    return InvalidArgument("top ranks by total and cannot be combined with limit or after");
  }
  return query;
}

std::string ListQueryString(const ListQuery& query) {
  std::string text = "?prefix=" + query.prefix;
  if (query.top > 0) return text + fmt::format("&top={}", query.top);
  text += fmt::format("&limit={}", query.limit);
  if (!query.after.empty()) text += "&after=" + query.after;
  return text;
}

std::string FormatCounterList(const CounterList& list) {
  // Appended piece by piece rather than through a format string, which fmt
  // parses again for every counter: that made 60% of a top=1000's time in
  // the server and a quarter of a page of 1000's. Names need no escaping
  // (core/counter_name.h).
  std::string body = R"({"counters":[)";
  body.reserve(body.size() + list.counters.size() * 48);
  for (size_t i = 0; i < list.counters.size(); ++i) {
    body += i == 0 ? R"({"counter":")" : R"(,{"counter":")";
    body += list.counters[i].name;
    body += R"(","total":)";
    body += fmt::format_int(list.counters[i].total).c_str();
    body += '}';
  }
  body += "]";
  if (!list.next.empty()) body += fmt::format(R"(,"next":"{}")", list.next);
  return body + "}";
}

Result<CounterList> ParseCounterList(std::string_view body) {
  Json json = ParseJson(body);
  if (!json.is_object() || !json.contains("counters") || !json["counters"].is_array()) {
    return NotAReply("a counter listing", body);
  }
  CounterList list;
  for (const Json& entry : json["counters"]) {
    std::optional<int64_t> total = ReplyInt(entry, "total");
    if (!total || !entry.contains("counter") || !entry["counter"].is_string()) {
      return NotAReply("a counter listing", body);
    }
    list.counters.push_back({entry["counter"].get<std::string>(), *total});
  }
  if (json.contains("next") && json["next"].is_string())
    list.next = json["next"].get<std::string>();
  return list;
}

Result<std::string> ParseResetRequest(std::string_view body) {
  Result<Json> json = ParseObject(body, R"({"counter":"pageviews"})");
  if (!json.ok()) return json.status();
  for (const auto& [key, field] : json->items()) {
    if (key != "counter") {
      return InvalidArgument(
          fmt::format("unknown field \"{}\"; the only field is \"counter\"", key));
    }
  }
  if (!json->contains("counter")) {
    return InvalidArgument(R"(say which counter to reset: {"counter":"pageviews"})");
  }
  return JsonToName((*json)["counter"]);
}

std::string FormatResetRequest(const std::string& name) {
  return fmt::format(R"({{"counter":"{}"}})", name);
}

std::string FormatResetReply(const std::string& name, int64_t removed) {
  return fmt::format(R"({{"counter":"{}","removed":{}}})", name, removed);
}

Result<int64_t> ParseResetReply(std::string_view body) {
  std::optional<int64_t> removed = ReplyInt(ParseJson(body), "removed");
  if (!removed) return NotAReply("a reset reply", body);
  return *removed;
}

std::string FormatError(std::string_view message) {
  // dump() with "replace" never throws on invalid UTF-8 in a message.
  return Json{{"error", std::string(message)}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string ParseErrorMessage(std::string_view body) {
  Json json = ParseJson(body);
  if (json.is_object() && json.contains("error") && json["error"].is_string()) {
    return json["error"].get<std::string>();
  }
  constexpr size_t kMaxShown = 200;
  std::string shown(body.substr(0, kMaxShown));
  for (char& c : shown) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (shown.empty()) return "an empty answer";
  return body.size() > kMaxShown ? shown + "..." : shown;
}

}  // namespace shardctl::core
