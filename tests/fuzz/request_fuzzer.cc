// libFuzzer target over everything that reads what a client (or a shard)
// sends: the JSON request parsers of core/protocol.h applied to an in-memory
// aggregator, the reply parsers, the HTTP framing, and whole HTTP requests
// served in process by the real aggregator and shard routes.
//
// The first byte of an input picks what the rest is fed to:
//   'i' POST /increment body      'r' POST /reset body
//   't' /total query string       'c' /counters query string
//   'p' a shard's or aggregator's reply, to every reply parser
//   'f' bytes received, to the HTTP request framing (and a chunked body
//       after its header, to the chunked decoder)
//   'a' bytes received by the aggregator's listener   's' ... by shard 1's
// Invariants, checked with abort() so that libFuzzer reports them: a refused
// request changes no count; an applied increment changes exactly its own
// counter's count by its value; what a parser accepts survives formatting
// and parsing again; error bodies are JSON; a chunked body decodes the same
// whatever pieces it arrives in.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/aggregator.h"
#include "core/int128.h"
#include "core/protocol.h"
#include "core/router.h"
#include "core/shard.h"
#include "net/aggregator_server.h"
#include "net/chunked_decoder.h"
#include "net/http_server.h"
#include "net/request_framing.h"
#include "net/shard_server.h"

namespace shardctl {
namespace {

constexpr int kShards = 3;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

void Check(bool holds, const char* what) {
  if (!holds) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// Three in-memory shards behind an aggregator, as `serve --role all` runs
// them, with counts near both ends of int64 so that overflow is reachable.
struct Cluster {
  Cluster() {
    std::vector<std::unique_ptr<core::ShardClient>> clients;
    for (int id = 0; id < kShards; ++id) {
      // A fixed clock: a window ending mid-input would look like a changed count.
      shards.push_back(std::make_unique<core::Shard>(id, [] { return int64_t{1'800'000'000}; }));
      clients.push_back(std::make_unique<core::LocalShardClient>(*shards.back()));
    }
    aggregator = std::make_unique<core::Aggregator>(std::move(clients));
    Seed({.value = kMax - 3});                                          // shard 1
    Seed({.value = kMin + 2});                                          // shard 2
    Seed({.value = 6, .counter = {.name = "views"}});                   // shard 0
    Seed({.value = kMax - 2, .counter = {.name = "a", .window = 60}});  // shard 1
  }
  void Seed(const core::IncrementRequest& request) {
    Check(aggregator->Increment(request).ok(), "seeding the cluster");
  }

  // Every count of every shard: plain counters by listing, the windowed
  // counters seeded above by name.
  std::vector<std::map<std::string, int64_t>> State() const {
    std::vector<std::map<std::string, int64_t>> state;
    for (const auto& shard : shards) {
      std::map<std::string, int64_t> counts;
      for (const core::CounterPart& part : shard->List("")) counts[part.name] = part.count;
      counts["a@60"] = shard->Count({.name = "a", .window = 60}).count;
      counts["@size"] = static_cast<int64_t>(shard->size());
      state.push_back(std::move(counts));
    }
    return state;
  }

  std::vector<std::unique_ptr<core::Shard>> shards;
  std::unique_ptr<core::Aggregator> aggregator;
};

// "k=v&k2=v2" as httplib hands parameters to handlers (first value wins;
// no percent-decoding here: the fuzzer can send any byte directly).
std::map<std::string, std::string> SplitQuery(std::string_view query) {
  std::map<std::string, std::string> params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key(pair.substr(0, eq));
    std::string value(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    params.emplace(std::move(key), std::move(value));
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
  }
  return params;
}

std::optional<std::string> Param(const std::map<std::string, std::string>& params,
                                 const std::string& name) {
  auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  return it->second;
}

// An error answer is a JSON object whose "error" is a string.
void CheckErrorJson(std::string_view message) {
  nlohmann::json body = nlohmann::json::parse(core::FormatError(message), nullptr, false);
  Check(body.is_object() && body.size() == 1 && body.contains("error") && body["error"].is_string(),
        "an error body that is not {\"error\":\"...\"}");
}

void CheckErrorBody(const core::Status& status) {
  Check(status.code() == core::Code::kInvalidArgument, "a bad request that is not a 400");
  Check(!status.message().empty(), "an error without a message");
  CheckErrorJson(status.message());
}

void FuzzIncrement(std::string_view body) {
  core::Result<core::IncrementRequest> parsed = core::ParseIncrementRequest(body);
  Cluster cluster;
  auto before = cluster.State();
  if (!parsed.ok()) {
    CheckErrorBody(parsed.status());
    return;
  }
  // What the aggregator forwards to a shard is what the client sent.
  core::Result<core::IncrementRequest> again =
      core::ParseIncrementRequest(core::FormatIncrementRequest(*parsed));
  Check(again.ok() && again->value == parsed->value && again->counter == parsed->counter,
        "an increment request that does not survive formatting");

  const core::CounterRef& counter = parsed->counter;
  core::Result<core::TotalReply> total_before = cluster.aggregator->Total(counter);
  core::Result<core::IncrementReply> reply = cluster.aggregator->Increment(*parsed);
  auto after = cluster.State();
  if (!reply.ok()) {
    Check(reply.status().code() == core::Code::kOutOfRange, "an increment failed otherwise");
    Check(after == before, "a refused increment changed a count");
    return;
  }
  Check(reply->shard_id == core::ShardFor(parsed->value, kShards), "routed to the wrong shard");
  core::CountReply count = cluster.shards[reply->shard_id]->Count(counter);
  Check(count.count == reply->count, "the reply's count is not the shard's");
  // Every other shard is unchanged.
  for (int id = 0; id < kShards; ++id) {
    if (id != reply->shard_id) Check(after[id] == before[id], "another shard changed");
  }
  core::Result<core::TotalReply> total_after = cluster.aggregator->Total(counter);
  if (total_before.ok() && total_after.ok()) {
    core::Int128 expected = static_cast<core::Int128>(total_before->total) + parsed->value;
    Check(expected == total_after->total, "the total moved by other than the value");
  }
  Check(core::ParseIncrementReply(core::FormatIncrementReply(*reply, counter)).ok(),
        "an increment reply that does not parse");
}

void FuzzReset(std::string_view body) {
  core::Result<std::string> name = core::ParseResetRequest(body);
  Cluster cluster;
  auto before = cluster.State();
  if (!name.ok()) {
    CheckErrorBody(name.status());
    Check(cluster.State() == before, "a refused reset changed a count");
    return;
  }
  Check(core::ParseResetRequest(core::FormatResetRequest(*name)).ok(),
        "a reset request that does not survive formatting");
  core::Result<int64_t> removed = cluster.aggregator->Reset(*name);
  Check(removed.ok() || removed.status().code() == core::Code::kInternal, "reset failed");
  core::Result<core::TotalReply> total = cluster.aggregator->Total({.name = *name});
  Check(total.ok() && total->total == 0, "a reset counter still counts");
}

void FuzzTotalQuery(std::string_view query) {
  auto params = SplitQuery(query);
  core::Result<core::CounterRef> counter =
      core::ParseCounterQuery(Param(params, "counter"), Param(params, "window"));
  if (!counter.ok()) {
    CheckErrorBody(counter.status());
    return;
  }
  Cluster cluster;
  auto before = cluster.State();
  core::Result<core::TotalReply> total = cluster.aggregator->Total(*counter);
  Check(cluster.State() == before, "a total changed a count");
  if (!total.ok()) {
    Check(total.status().code() == core::Code::kInternal, "a total failed otherwise");
    return;
  }
  core::Result<core::TotalReply> again =
      core::ParseTotalReply(core::FormatTotalReply(*total, *counter, true));
  Check(again.ok() && again->total == total->total && again->parts == total->parts,
        "a total reply that does not survive formatting");
}

void FuzzCountersQuery(std::string_view query) {
  auto params = SplitQuery(query);
  core::Result<core::ListQuery> list =
      core::ParseListQuery(Param(params, "prefix"), Param(params, "top"), Param(params, "limit"),
                           Param(params, "after"));
  if (!list.ok()) {
    CheckErrorBody(list.status());
    return;
  }
  Cluster cluster;
  core::Result<core::CounterList> listed = cluster.aggregator->List(*list);
  if (!listed.ok()) return;
  Check(listed->counters.size() <= static_cast<size_t>(list->top > 0 ? list->top : list->limit),
        "a listing longer than asked");
  core::Result<core::CounterList> again = core::ParseCounterList(core::FormatCounterList(*listed));
  Check(again.ok() && again->counters == listed->counters && again->next == listed->next,
        "a listing that does not survive formatting");
}

// A shard (to the aggregator) or an aggregator (to the CLI) could answer anything.
void FuzzReplies(std::string_view body) {
  (void)core::ParseIncrementReply(body);
  (void)core::ParseCountReply(body);
  (void)core::ParseTotalReply(body);
  (void)core::ParseCounterList(body);
  (void)core::ParseResetReply(body);
  core::Result<std::vector<core::CounterPart>> parts = core::ParseCounterParts(body);
  if (parts.ok()) {
    core::Result<std::vector<core::CounterPart>> again =
        core::ParseCounterParts(core::FormatCounterParts(0, *parts));
    Check(again.ok() && *again == *parts, "counter parts that do not survive formatting");
  }
  CheckErrorJson(core::ParseErrorMessage(body));
}

// Decodes `encoded`, a chunked body, in pieces cut at `cuts` (ascending).
struct Decoded {
  net::ChunkedDecoder::State state;
  std::string data;
  size_t used = 0;
};
Decoded DecodeInPieces(std::string_view encoded, const std::vector<size_t>& cuts) {
  net::ChunkedDecoder decoder;
  Decoded decoded;
  size_t from = 0;
  for (size_t cut : cuts) {
    if (decoder.state() != net::ChunkedDecoder::State::kMore) break;
    decoded.used += decoder.Decode(encoded.substr(from, cut - from), &decoded.data);
    from = cut;
  }
  decoded.state = decoder.state();
  Check(decoder.data_bytes() == decoded.data.size(), "data counted that was not decoded");
  Check(decoder.announced_data_bytes() >= decoder.data_bytes(), "less announced than decoded");
  if (decoded.state != net::ChunkedDecoder::State::kBad) {
    Check(decoder.data_bytes() + decoder.framing_bytes() == decoded.used,
          "bytes used that are neither data nor framing");
  }
  return decoded;
}

void FuzzChunkedBody(std::string_view encoded) {
  using State = net::ChunkedDecoder::State;
  const size_t size = encoded.size();
  Decoded whole = DecodeInPieces(encoded, {size});
  Check(whole.used <= size, "more used than given");
  if (whole.state == State::kMore) Check(whole.used == size, "a body still going that left bytes");
  for (const std::vector<size_t>& cuts :
       {std::vector<size_t>{size / 2, size}, std::vector<size_t>{size / 3, 2 * size / 3, size}}) {
    Decoded pieces = DecodeInPieces(encoded, cuts);
    Check(pieces.state == whole.state, "a body decoded otherwise in pieces");
    Check(pieces.data == whole.data, "a body whose data differs in pieces");
    if (whole.state != State::kBad) Check(pieces.used == whole.used, "a body of another length");
  }
  net::ChunkedDecoder dropping;
  size_t used = dropping.Decode(encoded, nullptr);
  Check(dropping.state() == whole.state && dropping.data_bytes() == whole.data.size(),
        "a body decoded otherwise when its data is dropped");
  if (whole.state != State::kBad) Check(used == whole.used, "a dropped body of another length");
}

void FuzzFraming(std::string_view received) {
  constexpr size_t kMaxHeader = 16 * 1024;
  constexpr size_t kMaxBody = 64 * 1024;
  net::RequestFrame frame = net::FrameRequest(received, kMaxHeader, kMaxBody);
  size_t end = net::FindHeaderEnd(received);
  if (frame.kind == net::RequestFrame::Kind::kComplete) {
    Check(end != std::string_view::npos && end <= frame.length, "a request without a header");
    Check(frame.length <= received.size(), "a request longer than what arrived");
    Check(frame.length - end <= kMaxBody, "a body over the limit");
  }
  if (frame.kind == net::RequestFrame::Kind::kChunked) {
    Check(end != std::string_view::npos && frame.length == end && frame.header_length == end,
          "a chunked request framed beyond its header");
    FuzzChunkedBody(received.substr(end));
  }
  // Resuming the search anywhere before the end finds the same end.
  for (size_t from : {received.size() / 2, received.size() / 3, size_t{1}}) {
    if (from > received.size()) continue;
    if (net::FindHeaderEnd(received.substr(0, from)) == std::string_view::npos) {
      Check(net::FindHeaderEnd(received, from) == end, "a resumed search found another end");
    }
  }
}

// Whole HTTP requests, as bytes on one connection, served by the real routes.
void FuzzHttp(std::string_view received, bool aggregator) {
  Cluster cluster;
  auto before = cluster.State();
  net::HttpServer server;
  if (aggregator) {
    net::RegisterAggregatorRoutes(*cluster.aggregator, server);
  } else {
    net::RegisterShardRoutes(*cluster.shards[1], server);
  }
  std::string answers = server.ServeBytesForTesting(received);
  if (!answers.empty()) Check(answers.starts_with("HTTP/1.1 "), "an answer that is not HTTP");
  // Only a 200 can have changed anything.
  if (answers.find("HTTP/1.1 200 ") == std::string::npos) {
    Check(cluster.State() == before, "a refused request changed a count");
  }
}

}  // namespace
}  // namespace shardctl

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0]) {
    case 'i': shardctl::FuzzIncrement(payload); break;
    case 'r': shardctl::FuzzReset(payload); break;
    case 't': shardctl::FuzzTotalQuery(payload); break;
    case 'c': shardctl::FuzzCountersQuery(payload); break;
    case 'p': shardctl::FuzzReplies(payload); break;
    case 'f': shardctl::FuzzFraming(payload); break;
    case 'a': shardctl::FuzzHttp(payload, /*aggregator=*/true); break;
    case 's': shardctl::FuzzHttp(payload, /*aggregator=*/false); break;
    default: break;
  }
  return 0;
}
