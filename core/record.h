// Record: one change to a shard's counters, as the journal and the snapshot
// keep it, and its binary encoding: length-prefixed, with a CRC-32C, so that
// a torn tail is detected and anything else corrupt is refused. Pure
// functions; thread-safe.
//
// Encoding of one record (little-endian):
//   u32 payload length | u32 its bitwise complement | u32 CRC-32C of the payload | payload
//   payload: u8 kind | i64 amount | i64 window | i64 window start |
//            u16 name length | name bytes
//            [ | i64 key time | i64 count | u16 key length | key bytes ]
// The bracketed part, added in store format 2, is there exactly when the
// record carries an idempotency key; the payload length tells. Records of
// format 1 (no key) are encoded as they always were, so old journals and
// snapshots read as before. Store format 3 added the kind kAnyValueKey;
// store format 5 the kind kGroup, whose payload holds, after the (empty)
// name, u32 items length | items bytes, then the optional key part.
#ifndef SHARDCTL_CORE_RECORD_H_
#define SHARDCTL_CORE_RECORD_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace shardctl::core {

struct Record {
  enum class Kind : uint8_t {
    kAdd = 1,     // add `amount` to the counter
    kRemove = 2,  // add `amount` (minus what the counter held), then forget it if at 0
    kSet = 3,     // the counter holds `amount` (snapshots)
    kKey = 4,     // remember `key` for an earlier increment of `amount` (snapshots)
    // Remember `key` for an earlier increment of the counter, whatever its
    // value: a retry with any value gets the first answer (`count`). What
    // `cluster reshard` leaves in every new shard, where a retry's value may
    // be split otherwise than the first time. `amount` is unused (0).
    kAnyValueKey = 5,
    // Many increments applied as one (a batch's share of many counters):
    // `items` holds them packed (PackGroupItem), all in `window` at `window_start`; `name` is
    // empty, `amount` is the share's fingerprint (for its key) and, with a key, `count` how many
    // increments it holds.
    kGroup = 6,
  };
  Kind kind = Kind::kAdd;
  std::string name;
  int64_t window = 0;
  int64_t window_start = 0;
  int64_t amount = 0;
  // An increment's idempotency key: optional for kAdd, required for kKey and
  // kAnyValueKey, never on the others. With it, when the key was first seen (seconds since
  // the Unix epoch) and the count right after the increment: its answer.
  std::string key = {};  // (each new field has a default: older code leaves it out)
  int64_t key_time = 0;
  int64_t count = 0;
  std::string items = {};  // kGroup only: its increments, packed
  bool operator==(const Record&) const = default;
};

// Appends the encoding of `record` to *out.
void EncodeRecord(const Record& record, std::string* out);

// What ScanRecords found in a byte string.
struct Scan {
  std::vector<Record> records;
  size_t valid_bytes = 0;  // the length of the prefix that holds `records`
  bool torn_tail = false;  // bytes after that prefix are an incomplete last record
};

// Decodes the records in `data`. A last record cut short by a crash (too
// short for its length, or failing its checksum with only zeros after it) is
// a torn tail: reported, not an error. Anything else undecodable (a damaged
// length, a checksum failing before other data) is corruption: returns
// kInternal with the offset, so nothing is silently lost.
Result<Scan> ScanRecords(std::string_view data);

// Packed records, the body of a snapshot since store format 4 (a snapshot
// file carries one checksum of its own, so its records need none each):
//   per record: u8 kind | 0x10 if it has a window | 0x20 if it has a key,
//               varint bytes shared with the previous record's name,
//               varint length of the rest of the name, those bytes,
//               zigzag varint amount,
//               [zigzag varint window, zigzag varint window start]
//               [zigzag varint key time, zigzag varint count,
//                varint key length, key bytes]
// About 13 bytes for a counter named like "c:0500000" (48 as EncodeRecord's).
void PackRecords(const std::vector<Record>& records, std::string* out);
// Reads what PackRecords wrote, or kInternal naming the byte where it stops
// making sense.
Result<std::vector<Record>> UnpackRecords(std::string_view data);

// Appends one increment to a kGroup record's items, packed as PackRecords
// packs a kAdd record of `name` and `amount`; `previous` is the name
// appended before it ("" for the first).
void PackGroupItem(std::string_view previous, std::string_view name, int64_t amount,
                   std::string* items);
// The increments a kGroup record holds (kAdd records: name and amount), or
// kInternal if its items are corrupt.
Result<std::vector<Record>> GroupIncrements(const Record& group);

// CRC-32C (Castagnoli) of `data`.
uint32_t Crc32c(std::string_view data);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_RECORD_H_
