#include "core/record.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include <fmt/format.h>

namespace shardctl::core {
namespace {

constexpr size_t kHeaderBytes = 12;  // length, its complement, CRC
constexpr size_t kFixedPayloadBytes = 1 + 8 + 8 + 8 + 2;
constexpr size_t kMaxNameBytes = 1024;  // names are at most 200; more is corruption
constexpr size_t kKeyFixedBytes = 8 + 8 + 2;  // key time, count, key length
constexpr size_t kMaxKeyBytes = 1024;         // keys are at most 255; more is corruption
constexpr size_t kMaxPayloadBytes =
    kFixedPayloadBytes + kMaxNameBytes + kKeyFixedBytes + kMaxKeyBytes;
constexpr size_t kGroupLengthBytes = 4;          // u32 items length, in kGroup records
constexpr size_t kMaxGroupItemBytes = 16 << 20;  // a share of a 64 KiB body packs smaller
constexpr size_t kMaxGroupPayloadBytes = kMaxPayloadBytes + kGroupLengthBytes + kMaxGroupItemBytes;

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

template <typename T>
void Put(std::string* out, T value) {
  static_assert(std::endian::native == std::endian::little, "the format is little-endian");
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out->append(bytes, sizeof(T));
}

template <typename T>
T Get(const char* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

bool ValidKind(uint8_t kind) { return kind >= 1 && kind <= 6; }

// Whether a record of `kind` may, or must, carry a key.
bool KeyFits(Record::Kind kind, bool has_key) {
  switch (kind) {
    case Record::Kind::kAdd:
    case Record::Kind::kGroup: return true;
    case Record::Kind::kKey:
    case Record::Kind::kAnyValueKey: return has_key;
    default: return !has_key;
  }
}

constexpr uint8_t kPackedKindMask = 0x0F;
constexpr uint8_t kPackedWindow = 0x10;
constexpr uint8_t kPackedKey = 0x20;

void PutVarint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

uint64_t ZigZag(int64_t value) {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}

int64_t UnZigZag(uint64_t value) {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

// Reads packed records, failing with the offset of the first thing that
// does not fit.
class Unpacker {
 public:
  explicit Unpacker(std::string_view data) : data_(data) {}

  bool done() const { return at_ >= data_.size(); }
  size_t at() const { return at_; }

  bool Byte(uint8_t* value) {
    if (at_ >= data_.size()) return false;
    *value = static_cast<uint8_t>(data_[at_++]);
    return true;
  }
  bool Varint(uint64_t* value) {
    *value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t byte = 0;
      if (!Byte(&byte)) return false;
      *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return shift < 63 || byte <= 1;
    }
    return false;
  }
  bool Signed(int64_t* value) {
    uint64_t raw = 0;
    if (!Varint(&raw)) return false;
    *value = UnZigZag(raw);
    return true;
  }
  bool Bytes(size_t length, std::string* out) {
    if (length > data_.size() - at_) return false;
    out->append(data_.data() + at_, length);
    at_ += length;
    return true;
  }

 private:
  std::string_view data_;
  size_t at_ = 0;
};

}  // namespace

void PackRecords(const std::vector<Record>& records, std::string* out) {
  std::string_view previous;
  for (const Record& record : records) {
    const bool windowed = record.window != 0 || record.window_start != 0;
    const bool keyed = !record.key.empty();
    out->push_back(static_cast<char>(static_cast<uint8_t>(record.kind) |
                                     (windowed ? kPackedWindow : 0) | (keyed ? kPackedKey : 0)));
    size_t shared = 0;
    const size_t most = std::min(previous.size(), record.name.size());
    while (shared < most && previous[shared] == record.name[shared]) ++shared;
    PutVarint(out, shared);
    PutVarint(out, record.name.size() - shared);
    out->append(record.name, shared);
    PutVarint(out, ZigZag(record.amount));
    if (record.kind == Record::Kind::kGroup) {
      PutVarint(out, record.items.size());
      out->append(record.items);
    }
    if (windowed) {
      PutVarint(out, ZigZag(record.window));
      PutVarint(out, ZigZag(record.window_start));
    }
    if (keyed) {
      PutVarint(out, ZigZag(record.key_time));
      PutVarint(out, ZigZag(record.count));
      PutVarint(out, record.key.size());
      out->append(record.key);
    }
    previous = record.name;
  }
}

Result<std::vector<Record>> UnpackRecords(std::string_view data) {
  std::vector<Record> records;
  Unpacker in(data);
  while (!in.done()) {
    const size_t start = in.at();
    auto corrupt = [&](std::string_view why) -> Status {
      return Internal(fmt::format("corrupt packed record at byte {}: {}", start, why));
    };
    uint8_t tag = 0;
    uint64_t shared = 0, rest = 0, key_length = 0;
    Record record;
    in.Byte(&tag);
    const uint8_t kind = tag & kPackedKindMask;
    const bool keyed = (tag & kPackedKey) != 0;
    if ((tag & ~(kPackedKindMask | kPackedWindow | kPackedKey)) != 0 || !ValidKind(kind) ||
        !KeyFits(static_cast<Record::Kind>(kind), keyed)) {
      return corrupt("unknown kind");
    }
    record.kind = static_cast<Record::Kind>(kind);
    const std::string_view previous =
        records.empty() ? std::string_view() : std::string_view(records.back().name);
    if (!in.Varint(&shared) || !in.Varint(&rest) || shared > previous.size() ||
        rest > kMaxNameBytes || shared + rest > kMaxNameBytes) {
      return corrupt("bad name length");
    }
    record.name.reserve(shared + rest);
    record.name.assign(previous.substr(0, shared));
    if (!in.Bytes(rest, &record.name) || !in.Signed(&record.amount)) {
      return corrupt("cut short");
    }
    uint64_t items_length = 0;
    if (record.kind == Record::Kind::kGroup &&
        (!in.Varint(&items_length) || items_length > kMaxGroupItemBytes ||
         !in.Bytes(items_length, &record.items))) {
      return corrupt("bad group");
    }
    if ((tag & kPackedWindow) != 0 &&
        (!in.Signed(&record.window) || !in.Signed(&record.window_start))) {
      return corrupt("cut short");
    }
    if (keyed &&
        (!in.Signed(&record.key_time) || !in.Signed(&record.count) || !in.Varint(&key_length) ||
         key_length == 0 || key_length > kMaxKeyBytes || !in.Bytes(key_length, &record.key))) {
      return corrupt("bad key");
    }
    records.push_back(std::move(record));
  }
  return records;
}

void PackGroupItem(std::string_view previous, std::string_view name, int64_t amount,
                   std::string* items) {
  size_t shared = 0;
  const size_t most = std::min(previous.size(), name.size());
  while (shared < most && previous[shared] == name[shared]) ++shared;
  items->push_back(static_cast<char>(Record::Kind::kAdd));
  PutVarint(items, shared);
  PutVarint(items, name.size() - shared);
  items->append(name.substr(shared));
  PutVarint(items, ZigZag(amount));
}

Result<std::vector<Record>> GroupIncrements(const Record& group) {
  Result<std::vector<Record>> increments = UnpackRecords(group.items);
  if (!increments.ok()) return increments;
  for (const Record& increment : *increments) {
    if (increment.kind != Record::Kind::kAdd || increment.window != 0 ||
        increment.window_start != 0 || !increment.key.empty() || increment.name.empty()) {
      return Internal("corrupt group record: it holds something other than increments");
    }
  }
  return increments;
}

uint32_t Crc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) crc = kCrcTable[(crc ^ byte) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

void EncodeRecord(const Record& record, std::string* out) {
  std::string payload;
  payload.reserve(kFixedPayloadBytes + record.name.size() + kGroupLengthBytes +
                  record.items.size() + kKeyFixedBytes + record.key.size());
  Put<uint8_t>(&payload, static_cast<uint8_t>(record.kind));
  Put<int64_t>(&payload, record.amount);
  Put<int64_t>(&payload, record.window);
  Put<int64_t>(&payload, record.window_start);
  Put<uint16_t>(&payload, static_cast<uint16_t>(record.name.size()));
  payload += record.name;
  if (record.kind == Record::Kind::kGroup) {
    Put<uint32_t>(&payload, static_cast<uint32_t>(record.items.size()));
    payload += record.items;
  }
  if (!record.key.empty()) {
    Put<int64_t>(&payload, record.key_time);
    Put<int64_t>(&payload, record.count);
    Put<uint16_t>(&payload, static_cast<uint16_t>(record.key.size()));
    payload += record.key;
  }
  Put<uint32_t>(out, static_cast<uint32_t>(payload.size()));
  Put<uint32_t>(out, ~static_cast<uint32_t>(payload.size()));
  Put<uint32_t>(out, Crc32c(payload));
  *out += payload;
}

Result<Scan> ScanRecords(std::string_view data) {
  Scan scan;
  // True when nothing but zeros follows `from`: what a crash leaves where a
  // file grew before its data reached the disk.
  auto only_zeros_from = [&data](size_t from) {
    return from >= data.size() || data.find_first_not_of('\0', from) == std::string_view::npos;
  };
  size_t at = 0;
  while (at < data.size()) {
    auto corrupt = [&](std::string_view why) -> Status {
      return Internal(fmt::format("corrupt record at byte {}: {}", at, why));
    };
    size_t left = data.size() - at;
    if (left < kHeaderBytes) {
      scan.torn_tail = true;
      break;
    }
    // The length is stored with its complement, so a damaged length is told
    // apart from a record that a crash cut short.
    uint32_t length = Get<uint32_t>(data.data() + at);
    uint32_t check = Get<uint32_t>(data.data() + at + 4);
    uint32_t crc = Get<uint32_t>(data.data() + at + 8);
    if (check != ~length || length < kFixedPayloadBytes || length > kMaxGroupPayloadBytes) {
      if (only_zeros_from(at + 4)) {  // at most the length got written
        scan.torn_tail = true;
        break;
      }
      return corrupt("damaged length");
    }
    if (left < kHeaderBytes + length) {
      scan.torn_tail = true;
      break;
    }
    std::string_view payload = data.substr(at + kHeaderBytes, length);
    if (Crc32c(payload) != crc) {
      if (only_zeros_from(at + kHeaderBytes + length)) {  // the last record, cut short
        scan.torn_tail = true;
        break;
      }
      return corrupt("checksum mismatch");
    }
    auto kind = static_cast<uint8_t>(payload[0]);
    const bool group = kind == static_cast<uint8_t>(Record::Kind::kGroup);
    uint16_t name_length = Get<uint16_t>(payload.data() + 25);
    size_t name_end = kFixedPayloadBytes + name_length;
    // A group's items follow its name; the key part, if any, follows them.
    size_t items_at = name_end + kGroupLengthBytes;
    size_t items_length = 0;
    if (group) {
      if (items_at > length) return corrupt("fields do not fit the record");
      items_length = Get<uint32_t>(payload.data() + name_end);
      if (items_length > length - items_at) return corrupt("fields do not fit the record");
      name_end = items_at + items_length;
    } else if (length > kMaxPayloadBytes) {
      return corrupt("damaged length");
    }
    // After the name: nothing, or the key part, which must fill the rest.
    bool has_key = length > name_end;
    uint16_t key_length = 0;
    if (has_key && length >= name_end + kKeyFixedBytes) {
      key_length = Get<uint16_t>(payload.data() + name_end + 16);
    }
    if (!ValidKind(kind) || name_end > length ||
        (has_key && (key_length == 0 || name_end + kKeyFixedBytes + key_length != length)) ||
        !KeyFits(static_cast<Record::Kind>(kind), has_key)) {
      return corrupt("fields do not fit the record");
    }
    Record record;
    record.kind = static_cast<Record::Kind>(kind);
    record.amount = Get<int64_t>(payload.data() + 1);
    record.window = Get<int64_t>(payload.data() + 9);
    record.window_start = Get<int64_t>(payload.data() + 17);
    record.name.assign(payload.data() + kFixedPayloadBytes, name_length);
    if (group) record.items.assign(payload.data() + items_at, items_length);
    if (has_key) {
      record.key_time = Get<int64_t>(payload.data() + name_end);
      record.count = Get<int64_t>(payload.data() + name_end + 8);
      record.key.assign(payload.data() + name_end + kKeyFixedBytes, key_length);
    }
    scan.records.push_back(std::move(record));
    at += kHeaderBytes + length;
    scan.valid_bytes = at;
  }
  return scan;
}

}  // namespace shardctl::core
