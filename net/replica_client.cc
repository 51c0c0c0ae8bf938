#include "net/replica_client.h"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/protocol.h"
#include "core/record.h"
#include "net/http_shard_client.h"
#include "net/url.h"

namespace shardctl::net {
namespace {

// Splits "<numbers>\n<records>" into the numbers and the decoded records.
core::Result<std::vector<core::Record>> SplitAnswer(const std::string& body,
                                                    std::vector<uint64_t>* numbers,
                                                    size_t count) {
  size_t line_end = body.find('\n');
  if (line_end == std::string::npos) {
    return core::Status(core::Code::kBadGateway, "a replication answer without its first line");
  }
  const char* at = body.data();
  const char* end = body.data() + line_end;
  for (size_t i = 0; i < count; ++i) {
    while (at < end && *at == ' ') ++at;
    uint64_t value = 0;
    auto [next, error] = std::from_chars(at, end, value);
    if (error != std::errc()) {
      return core::Status(core::Code::kBadGateway, "a replication answer's first line is not numbers");
    }
    numbers->push_back(value);
    at = next;
  }
  core::Result<core::Scan> scan = core::ScanRecords(std::string_view(body).substr(line_end + 1));
  if (!scan.ok()) return scan.status();
  if (scan->torn_tail) {
    return core::Status(core::Code::kBadGateway, "a replication answer was cut short");
  }
  return std::move(scan->records);
}

core::Status Refused(const std::string& address, const HttpReply& reply) {
  core::Code code = reply.status == 421   ? core::Code::kMoved
                    : reply.status == 409 ? core::Code::kOutOfRange
                                          : core::Code::kBadGateway;
  return core::Status(code, fmt::format("{} answered {}: {}", address, reply.status,
                                        core::ParseErrorMessage(reply.body)));
}

}  // namespace

std::string FormatFollowerStart(uint64_t log_id, uint64_t next) {
  return fmt::format("{} {}\n", log_id, next);
}

std::string FormatBatchStart(uint64_t first) { return fmt::format("{}\n", first); }

core::Result<std::shared_ptr<HttpClient>> HttpReplicaSource::ClientFor(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = clients_.find(address);
  if (it != clients_.end()) return it->second;
  core::Result<Url> url = ParseUrl(address);
  if (!url.ok()) return url.status();
  auto client = std::make_shared<HttpClient>(*url, options_);
  clients_[address] = client;
  return client;
}

core::Result<core::HostedShards::FollowerStart> HttpReplicaSource::Start(const std::string& address,
                                                                        int shard, int64_t epoch,
                                                                        const std::string& me) {
  core::Result<std::shared_ptr<HttpClient>> client = ClientFor(address);
  if (!client.ok()) return client.status();
  core::Result<HttpReply> reply =
      (*client)->Post(fmt::format("/shards/{}/follow", shard), nlohmann::json{{"node", me}}.dump(),
                      {{std::string(kEpochHeader), std::to_string(epoch)}});
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return Refused(address, *reply);
  std::vector<uint64_t> numbers;
  core::Result<std::vector<core::Record>> records = SplitAnswer(reply->body, &numbers, 2);
  if (!records.ok()) return records.status();
  return core::HostedShards::FollowerStart{
      .snapshot = std::move(*records), .log_id = numbers[0], .next = numbers[1]};
}

core::Result<core::ReplicaBatch> HttpReplicaSource::Fetch(const std::string& address, int shard,
                                                         int64_t epoch, const std::string& me,
                                                         uint64_t log_id, uint64_t from,
                                                         std::chrono::milliseconds wait) {
  core::Result<std::shared_ptr<HttpClient>> client = ClientFor(address);
  if (!client.ok()) return client.status();
  core::Result<HttpReply> reply = (*client)->Get(
      fmt::format("/shards/{}/replicate?node={}&log={}&from={}&wait={}", shard, me, log_id, from,
                  wait.count()),
      {{std::string(kEpochHeader), std::to_string(epoch)}});
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return Refused(address, *reply);
  std::vector<uint64_t> numbers;
  core::Result<std::vector<core::Record>> records = SplitAnswer(reply->body, &numbers, 1);
  if (!records.ok()) return records.status();
  return core::ReplicaBatch{.first = numbers[0], .records = std::move(*records)};
}

}  // namespace shardctl::net
