#include "core/protocol.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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
    // Integers too large for uint64 arrive as doubles.
    constexpr double kTwoTo63 = 9223372036854775808.0;
    if (std::isfinite(number) && std::trunc(number) == number &&
        (number >= kTwoTo63 ||
         number <= -kTwoTo63)) {  // -2^63 as an int64 literal stays an integer
      return InvalidArgument(fmt::format("\"{}\" is outside the 64-bit integer range", field));
    }
    return InvalidArgument(fmt::format("\"{}\" must be an integer, not {}", field, value.dump()));
  }
  return InvalidArgument(
      fmt::format("\"{}\" must be an integer, not {}", field, value.type_name()));
}

Status NotAReply(std::string_view what, std::string_view body) {
  return {Code::kBadGateway, fmt::format("expected {} but got: {}", what, ParseErrorMessage(body))};
}

}  // namespace

Result<IncrementRequest> ParseIncrementRequest(std::string_view body) {
  IncrementRequest request;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return request;
  Json json = ParseJson(body);
  if (json.is_discarded()) {
    return InvalidArgument("the body is not valid JSON; send an object such as {\"value\":5}");
  }
  if (!json.is_object()) {
    return InvalidArgument(fmt::format(
        "the body must be a JSON object such as {{\"value\":5}}, not {}", json.type_name()));
  }
  for (const auto& [key, field] : json.items()) {
    if (key == "value") {
      Result<int64_t> value = JsonToInt64(field, "value");
      if (!value.ok()) return value.status();
      request.value = *value;
    } else {
      return InvalidArgument(fmt::format("unknown field \"{}\"; the only field is \"value\"", key));
    }
  }
  return request;
}

std::string FormatIncrementRequest(const IncrementRequest& request) {
  return fmt::format(R"({{"value":{}}})", request.value);
}

std::string FormatIncrementReply(const IncrementReply& reply) {
  return fmt::format(R"({{"success":true,"shardId":{},"count":{}}})", reply.shard_id, reply.count);
}

Result<IncrementReply> ParseIncrementReply(std::string_view body) {
  Json json = ParseJson(body);
  if (!json.is_object() || !json.contains("success") || json["success"] != true ||
      !json.contains("shardId") || !json.contains("count")) {
    return NotAReply("an increment reply", body);
  }
  Result<int64_t> shard_id = JsonToInt64(json["shardId"], "shardId");
  Result<int64_t> count = JsonToInt64(json["count"], "count");
  if (!shard_id.ok() || !count.ok() || *shard_id < 0 ||
      *shard_id > std::numeric_limits<int>::max()) {
    return NotAReply("an increment reply", body);
  }
  return IncrementReply{static_cast<int>(*shard_id), *count};
}

std::string FormatCountReply(int shard_id, int64_t count) {
  return fmt::format(R"({{"shardId":{},"count":{}}})", shard_id, count);
}

Result<int64_t> ParseCountReply(std::string_view body) {
  Json json = ParseJson(body);
  if (!json.is_object() || !json.contains("count")) return NotAReply("a count reply", body);
  Result<int64_t> count = JsonToInt64(json["count"], "count");
  if (!count.ok()) return NotAReply("a count reply", body);
  return *count;
}

std::string FormatTotalReply(int64_t total) { return fmt::format(R"({{"total":{}}})", total); }

Result<int64_t> ParseTotalReply(std::string_view body) {
  Json json = ParseJson(body);
  if (!json.is_object() || !json.contains("total")) return NotAReply("a total reply", body);
  Result<int64_t> total = JsonToInt64(json["total"], "total");
  if (!total.ok()) return NotAReply("a total reply", body);
  return *total;
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
