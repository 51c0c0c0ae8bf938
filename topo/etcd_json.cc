#include "topo/etcd_json.h"

#include <charconv>
#include <exception>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace shardctl::topo {
namespace {

using nlohmann::json;

constexpr std::string_view kBase64Digits =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Thrown while reading an answer, caught where the answer is parsed.
struct BadAnswer : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The int64 field `name` of `object`: a JSON string from etcd, absent for 0.
int64_t Int(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  const auto& text = it->get_ref<const std::string&>();
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw BadAnswer(fmt::format("\"{}\" is not an integer: {}", name, text));
  }
  return value;
}

// The bytes field `name` of `object`: base64, absent when empty.
std::string Bytes(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) return {};
  std::optional<std::string> bytes = DecodeBase64(it->get_ref<const std::string&>());
  if (!bytes) throw BadAnswer(fmt::format("\"{}\" is not base64", name));
  return std::move(*bytes);
}

core::KeyValue ToKeyValue(const json& kv) {
  return {Bytes(kv, "key"), Bytes(kv, "value"), Int(kv, "mod_revision"), Int(kv, "lease")};
}

// Parses `text` and reads it with `read`; an answer it cannot read is
// kUnavailable ("answered in error", for the CoordStore interface).
template <typename Read>
auto ReadAnswer(std::string_view text, Read read) -> decltype(read(json())) {
  try {
    return read(json::parse(text));
  } catch (const std::exception& e) {  // nlohmann's parse and type errors, BadAnswer
    return core::Unavailable(
        fmt::format("etcd answered something shardctl cannot read ({})", e.what()));
  }
}

// The key and range_end of a request on every key that starts with `prefix`.
json PrefixRange(const std::string& prefix) {
  // etcd refuses an empty key; from "\0" to the end is every key.
  return {{"key", EncodeBase64(prefix.empty() ? std::string(1, '\0') : prefix)},
          {"range_end", EncodeBase64(PrefixEnd(prefix))}};
}

std::string Txn(const std::string& key, int64_t expected_revision, json on_success) {
  json key64 = EncodeBase64(key);
  json compare = {{"key", key64},
                  {"target", "MOD"},
                  {"result", "EQUAL"},
                  {"mod_revision", std::to_string(expected_revision)}};
  json read_key = {{"requestRange", {{"key", key64}}}};
  json txn = {{"compare", json::array({std::move(compare)})},
              {"success", json::array({std::move(on_success)})},
              {"failure", json::array({std::move(read_key)})}};
  return txn.dump();
}

}  // namespace

std::string EncodeBase64(std::string_view bytes) {
  std::string text;
  text.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    size_t count = std::min<size_t>(bytes.size() - i, 3);
    uint32_t group = 0;
    for (size_t b = 0; b < 3; ++b) {
      group = group << 8 | (b < count ? static_cast<uint8_t>(bytes[i + b]) : 0u);
    }
    for (size_t d = 0; d < 4; ++d) {
      text += d <= count ? kBase64Digits[(group >> (18 - 6 * d)) & 63] : '=';
    }
  }
  return text;
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string bytes;
  bytes.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t group = 0;
    size_t padding = 0;
    for (size_t d = 0; d < 4; ++d) {
      char c = text[i + d];
      size_t value = kBase64Digits.find(c);
      if (c == '=' && d >= 2 && i + 4 == text.size()) {
        ++padding;  // "xx==" or "xxx=", at the very end only
        value = 0;
      } else if (value == std::string_view::npos || padding > 0) {
        return std::nullopt;
      }
      group = group << 6 | static_cast<uint32_t>(value);
    }
    for (size_t b = 0; b < 3 - padding; ++b) bytes += static_cast<char>(group >> (16 - 8 * b));
  }
  return bytes;
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<uint8_t>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string GetRequest(const std::string& key) { return json{{"key", EncodeBase64(key)}}.dump(); }

std::string ListRequest(const std::string& prefix) { return PrefixRange(prefix).dump(); }

std::string CompareAndSetRequest(const std::string& key, int64_t expected_revision,
                                 const std::string& value, core::LeaseId lease) {
  json put = {{"key", EncodeBase64(key)}, {"value", EncodeBase64(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  return Txn(key, expected_revision, {{"requestPut", std::move(put)}});
}

std::string CompareAndDeleteRequest(const std::string& key, int64_t expected_revision) {
  return Txn(key, expected_revision, {{"requestDeleteRange", {{"key", EncodeBase64(key)}}}});
}

std::string CommitIfUnchangedRequest(const std::string& prefix, int64_t revision,
                                     const std::vector<core::KeyWrite>& writes) {
  json compare = PrefixRange(prefix);
  compare["target"] = "MOD";
  compare["result"] = "LESS";
  compare["mod_revision"] = std::to_string(revision + 1);
  json success = json::array();
  for (const core::KeyWrite& write : writes) {
    json key = EncodeBase64(write.key);
    if (write.value) {
      success.push_back(
          {{"requestPut", {{"key", std::move(key)}, {"value", EncodeBase64(*write.value)}}}});
    } else {
      success.push_back({{"requestDeleteRange", {{"key", std::move(key)}}}});
    }
  }
  return json{{"compare", json::array({std::move(compare)})}, {"success", std::move(success)}}
      .dump();
}

std::string GrantRequest(int64_t ttl_seconds) {
  return json{{"TTL", std::to_string(ttl_seconds)}}.dump();
}

std::string LeaseRequest(core::LeaseId lease) { return json{{"ID", std::to_string(lease)}}.dump(); }

std::string WatchRequest(const std::string& prefix, int64_t start_revision) {
  json create = PrefixRange(prefix);
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  return json{{"create_request", std::move(create)}}.dump();
}

core::Result<core::KeyRange> ParseRange(std::string_view body) {
  return ReadAnswer(body, [](const json& answer) -> core::Result<core::KeyRange> {
    core::KeyRange range;
    range.revision = Int(answer.at("header"), "revision");
    for (const json& kv : answer.value("kvs", json::array())) range.kvs.push_back(ToKeyValue(kv));
    return range;
  });
}

core::Result<core::CasResult> ParseTxn(std::string_view body, bool read_on_failure) {
  return ReadAnswer(body, [read_on_failure](const json& answer) -> core::Result<core::CasResult> {
    if (answer.value("succeeded", false)) {
      return core::CasResult{true, Int(answer.at("header"), "revision")};
    }
    if (!read_on_failure) return core::CasResult{false, 0};
    // The failure branch read the key: its revision, or no kvs if absent.
    const json& range = answer.at("responses").at(0).at("response_range");
    json kvs = range.value("kvs", json::array());
    return core::CasResult{false, kvs.empty() ? 0 : Int(kvs.at(0), "mod_revision")};
  });
}

core::Result<core::LeaseId> ParseGrant(std::string_view body) {
  return ReadAnswer(body, [](const json& answer) -> core::Result<core::LeaseId> {
    std::string error = answer.value("error", "");
    if (!error.empty()) return core::Unavailable("etcd granted no lease: " + error);
    core::LeaseId lease = Int(answer, "ID");
    if (lease == 0) throw BadAnswer("no lease ID");
    return lease;
  });
}

core::Status ParseKeepAlive(std::string_view body) {
  // A stream of one message: {"result":{...}} or {"error":{...}}.
  return ReadAnswer(body.substr(0, body.find('\n')), [](const json& answer) -> core::Status {
    if (answer.contains("error")) {
      return core::Unavailable("etcd refused the keepalive: " + answer["error"].dump());
    }
    const json& result = answer.at("result");
    if (Int(result, "TTL") > 0) return {};
    return core::InvalidArgument(
        fmt::format("lease {} has expired or never existed: grant a new one", Int(result, "ID")));
  });
}

core::Status ParseError(int http_status, std::string_view body) {
  std::string message;
  int code = 0;
  try {
    json answer = json::parse(body);
    message = answer.value("message", "");
    code = answer.value("code", 0);
  } catch (const std::exception&) {  // not etcd's error JSON: a proxy, a wrong path
    message = std::string(body.substr(0, 200));
  }
  constexpr int kGrpcDeadlineExceeded = 4;
  constexpr int kGrpcNotFound = 5;  // for the calls EtcdStore makes: "requested lease not found"
  if (code == kGrpcNotFound) {
    return core::InvalidArgument(
        fmt::format("etcd: {} (the lease expired or never existed: grant a new one)", message));
  }
  if (code == kGrpcDeadlineExceeded || message.find("timed out") != std::string::npos) {
    return core::Status(
        core::Code::kTimeout,
        fmt::format("etcd: {} (the request may or may not have been applied)", message));
  }
  return core::Unavailable(fmt::format("etcd answered HTTP {}: {}", http_status, message));
}

core::Result<WatchMessage> ParseWatchMessage(std::string_view line) {
  return ReadAnswer(line, [](const json& message) -> core::Result<WatchMessage> {
    if (message.contains("error")) {
      return core::Unavailable("etcd ended the watch: " + message["error"].dump());
    }
    const json& result = message.at("result");
    if (result.value("canceled", false)) {
      if (int64_t compacted = Int(result, "compact_revision"); compacted > 0) {
        return core::OutOfRange(fmt::format(
            "etcd compacted its history up to revision {}, past the watch's start: read again "
            "and watch anew",
            compacted));
      }
      return core::Unavailable("etcd canceled the watch: " + result.value("cancel_reason", ""));
    }
    WatchMessage parsed;
    parsed.created = result.value("created", false);
    for (const json& event : result.value("events", json::array())) {
      core::KeyValue kv = ToKeyValue(event.at("kv"));
      if (event.value("type", "PUT") == "DELETE") {  // PUT, enum 0, is left out
        parsed.events.push_back(
            {core::WatchEvent::Type::kDelete, core::KeyValue{kv.key, "", kv.mod_revision, 0}});
      } else {
        parsed.events.push_back({core::WatchEvent::Type::kPut, std::move(kv)});
      }
    }
    return parsed;
  });
}

}  // namespace shardctl::topo
