#include "core/record.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

namespace shardctl::core {
namespace {

using ::testing::HasSubstr;

using test::kMax;
using test::kMin;
constexpr size_t kHeaderBytes = 12;  // u32 length, its complement, u32 CRC before every payload

Record Make(Record::Kind kind, std::string name, int64_t window, int64_t window_start,
            int64_t amount) {
  return Record{kind, std::move(name), window, window_start, amount};
}

std::string Encode(const std::vector<Record>& records) {
  std::string out;
  for (const Record& record : records) EncodeRecord(record, &out);
  return out;
}

// Three small records: a plain add, a windowed remove, a set.
std::vector<Record> ThreeRecords() {
  return {Make(Record::Kind::kAdd, "hits", 0, 0, 5),
          Make(Record::Kind::kRemove, "api", 60, 1'700'000'040, -7),
          Make(Record::Kind::kSet, "default", 0, 0, 42)};
}

// --- Crc32c ----------------------------------------------------------------

TEST(Crc32cTest, MatchesTheStandardCheckValue) { EXPECT_EQ(Crc32c("123456789"), 0xE3069283u); }

TEST(Crc32cTest, OfNothingIsZero) { EXPECT_EQ(Crc32c(""), 0u); }

TEST(Crc32cTest, MatchesKnownVectorsOfZerosAndOnes) {
  // From RFC 3720, appendix B.4 (iSCSI).
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
}

// --- EncodeRecord and ScanRecords round trip --------------------------------

TEST(RecordTest, EncodingIsLengthItsComplementCrcAndTheLittleEndianPayload) {
  std::string out;
  EncodeRecord(Make(Record::Kind::kAdd, "ab", 0, 0, 1), &out);
  ASSERT_EQ(out.size(), kHeaderBytes + 27 + 2);
  EXPECT_EQ(out.substr(0, 4), std::string("\x1D\0\0\0", 4));        // payload length 29
  EXPECT_EQ(out.substr(4, 4), std::string("\xE2\xFF\xFF\xFF", 4));  // its complement
  EXPECT_EQ(out[12], '\x01');                                       // kind kAdd
  EXPECT_EQ(out.substr(13, 8), std::string("\x01\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(out.substr(37, 2), std::string("\x02\0", 2));  // name length
  EXPECT_EQ(out.substr(39), "ab");
  uint32_t crc = Crc32c(std::string_view(out).substr(kHeaderBytes));
  std::string crc_bytes(4, '\0');
  for (int i = 0; i < 4; ++i) crc_bytes[i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  EXPECT_EQ(out.substr(8, 4), crc_bytes);
}

TEST(RecordTest, EncodeAppendsToWhatIsThere) {
  std::string out = "prefix";
  EncodeRecord(Make(Record::Kind::kAdd, "x", 0, 0, 1), &out);
  EXPECT_TRUE(out.starts_with("prefix"));
  EXPECT_EQ(out.size(), 6 + kHeaderBytes + 27 + 1);
}

TEST(RecordTest, RoundTripsEveryKindAndExtremeValues) {
  std::vector<Record> records;
  for (Record::Kind kind : {Record::Kind::kAdd, Record::Kind::kRemove, Record::Kind::kSet}) {
    for (int64_t amount : {int64_t{0}, int64_t{1}, int64_t{-1}, kMax, kMin}) {
      records.push_back(Make(kind, "c", 0, 0, amount));
    }
    for (int64_t window : {int64_t{1}, int64_t{60}, int64_t{7 * 24 * 3600}, kMax}) {
      for (int64_t start : {int64_t{0}, int64_t{-60}, kMin, kMax, int64_t{1'700'000'000}}) {
        records.push_back(Make(kind, "windowed", window, start, kMin + 1));
      }
    }
  }
  std::string data = Encode(records);
  Result<Scan> scan = ScanRecords(data);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_EQ(scan->records, records);
  EXPECT_EQ(scan->valid_bytes, data.size());
  EXPECT_FALSE(scan->torn_tail);
}

TEST(RecordTest, RoundTripsNamesOfEveryLengthUpTo200Bytes) {
  for (size_t length = 0; length <= 200; ++length) {
    std::string name;
    // Every byte value shows up somewhere, '\0' and 0xFF included.
    for (size_t i = 0; i < length; ++i) name += static_cast<char>((i * 37 + length) & 0xFF);
    std::vector<Record> records = {Make(Record::Kind::kAdd, name, 0, 0, 3),
                                   Make(Record::Kind::kRemove, name, 5, 10, -3),
                                   Make(Record::Kind::kSet, name, 0, 0, 9)};
    std::string data = Encode(records);
    EXPECT_EQ(data.size(), 3 * (kHeaderBytes + 27 + length));
    Result<Scan> scan = ScanRecords(data);
    ASSERT_TRUE(scan.ok()) << "name length " << length << ": " << scan.status().message();
    EXPECT_EQ(scan->records, records) << "name length " << length;
    EXPECT_EQ(scan->valid_bytes, data.size());
    EXPECT_FALSE(scan->torn_tail);
  }
}

// --- ScanRecords: empty input and torn tails ---------------------------------

TEST(ScanRecordsTest, EmptyInputHoldsNoRecordsAndNoTornTail) {
  Result<Scan> scan = ScanRecords("");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_TRUE(scan->records.empty());
  EXPECT_EQ(scan->valid_bytes, 0u);
  EXPECT_FALSE(scan->torn_tail);
}

TEST(ScanRecordsTest, LastRecordCutAtEveryByteIsATornTail) {
  std::vector<Record> records = ThreeRecords();
  std::string before = Encode({records[0], records[1]});
  std::string last = Encode({records[2]});
  for (size_t cut = 1; cut < last.size(); ++cut) {
    std::string data = before + last.substr(0, cut);
    Result<Scan> scan = ScanRecords(data);
    ASSERT_TRUE(scan.ok()) << "cut at " << cut << ": " << scan.status().message();
    EXPECT_EQ(scan->records, (std::vector<Record>{records[0], records[1]})) << "cut at " << cut;
    EXPECT_EQ(scan->valid_bytes, before.size()) << "cut at " << cut;
    EXPECT_TRUE(scan->torn_tail) << "cut at " << cut;
  }
}

TEST(ScanRecordsTest, OnlyRecordCutAtEveryByteIsATornTailWithNothingValid) {
  std::string only = Encode({Make(Record::Kind::kAdd, std::string(200, 'n'), 60, 120, kMax)});
  for (size_t cut = 1; cut < only.size(); ++cut) {
    Result<Scan> scan = ScanRecords(std::string_view(only).substr(0, cut));
    ASSERT_TRUE(scan.ok()) << "cut at " << cut << ": " << scan.status().message();
    EXPECT_TRUE(scan->records.empty()) << "cut at " << cut;
    EXPECT_EQ(scan->valid_bytes, 0u) << "cut at " << cut;
    EXPECT_TRUE(scan->torn_tail) << "cut at " << cut;
  }
}

TEST(ScanRecordsTest, FlippedByteInTheLastRecordsCrcOrPayloadIsATornTail) {
  std::vector<Record> records = ThreeRecords();
  std::string before = Encode({records[0], records[1]});
  std::string last = Encode({records[2]});
  // Bytes 8.. are the CRC and the payload; a flipped length (or its
  // complement) is checked below.
  for (size_t at = 8; at < last.size(); ++at) {
    std::string data = before + last;
    data[before.size() + at] ^= '\xFF';
    Result<Scan> scan = ScanRecords(data);
    ASSERT_TRUE(scan.ok()) << "flipped byte " << at << ": " << scan.status().message();
    EXPECT_EQ(scan->records, (std::vector<Record>{records[0], records[1]})) << "byte " << at;
    EXPECT_EQ(scan->valid_bytes, before.size()) << "byte " << at;
    EXPECT_TRUE(scan->torn_tail) << "byte " << at;
  }
}

TEST(ScanRecordsTest, FlippedLengthOfTheLastRecordNeverYieldsIt) {
  // A length made longer runs past the end (a torn tail); one made impossible
  // is refused. Either way the records before it stay and the last never shows.
  std::vector<Record> records = ThreeRecords();
  std::string before = Encode({records[0], records[1]});
  std::string last = Encode({records[2]});
  for (size_t at = 0; at < 8; ++at) {
    std::string data = before + last;
    data[before.size() + at] ^= '\xFF';
    Result<Scan> scan = ScanRecords(data);
    if (scan.ok()) {
      EXPECT_EQ(scan->records, (std::vector<Record>{records[0], records[1]})) << "byte " << at;
      EXPECT_TRUE(scan->torn_tail) << "byte " << at;
    } else {
      EXPECT_EQ(scan.status().code(), Code::kInternal) << "byte " << at;
      EXPECT_THAT(scan.status().message(), HasSubstr(std::to_string(before.size())))
          << "byte " << at;
    }
  }
}

TEST(ScanRecordsTest, FlippedByteInARecordBeforeTheLastIsCorruptionAtItsOffset) {
  std::vector<Record> records = ThreeRecords();
  std::string first = Encode({records[0]});
  std::string second = Encode({records[1]});
  std::string third = Encode({records[2]});
  // In the second record (at offset first.size()), every byte: length, CRC, payload.
  for (size_t at = 0; at < second.size(); ++at) {
    std::string data = first + second + third;
    data[first.size() + at] ^= '\xFF';
    Result<Scan> scan = ScanRecords(data);
    if (scan.ok()) {
      ADD_FAILURE() << "flipped byte " << at << " was accepted: torn_tail " << scan->torn_tail
                    << ", " << scan->records.size() << " records, valid_bytes " << scan->valid_bytes
                    << " of " << data.size();
      continue;
    }
    EXPECT_EQ(scan.status().code(), Code::kInternal) << "byte " << at;
    EXPECT_THAT(scan.status().message(), HasSubstr(std::to_string(first.size()))) << "byte " << at;
  }
}

TEST(ScanRecordsTest, FlippedByteInTheFirstOfManyRecordsIsCorruptionAtOffsetZero) {
  std::vector<Record> records;
  for (int i = 0; i < 100; ++i) records.push_back(Make(Record::Kind::kAdd, "many", 0, 0, i));
  std::string data = Encode(records);
  size_t record_bytes = data.size() / records.size();
  for (size_t at = 0; at < record_bytes; ++at) {
    std::string copy = data;
    copy[at] ^= '\xFF';
    Result<Scan> scan = ScanRecords(copy);
    ASSERT_FALSE(scan.ok()) << "flipped byte " << at << " was accepted";
    EXPECT_EQ(scan.status().code(), Code::kInternal);
    EXPECT_THAT(scan.status().message(), HasSubstr("byte 0"));
  }
}

TEST(ScanRecordsTest, UnknownKindWithAValidChecksumIsCorruption) {
  std::string good = Encode({Make(Record::Kind::kAdd, "k", 0, 0, 1)});
  // Rebuild the record with kind 9 and a matching CRC.
  std::string payload = good.substr(kHeaderBytes);
  payload[0] = 9;
  uint32_t crc = Crc32c(payload);
  std::string bad = good.substr(0, 8);
  for (int i = 0; i < 4; ++i) bad += static_cast<char>((crc >> (8 * i)) & 0xFF);
  bad += payload;
  Result<Scan> scan = ScanRecords(good + bad);
  ASSERT_FALSE(scan.ok());
  EXPECT_EQ(scan.status().code(), Code::kInternal);
  EXPECT_THAT(scan.status().message(), HasSubstr(std::to_string(good.size())));
}

TEST(ScanRecordsTest, TrailingZerosAfterValidRecordsAreATornTail) {
  std::vector<Record> records = ThreeRecords();
  std::string valid = Encode(records);
  // A crash can leave the file longer than what was written, filled with zeros:
  // a few bytes, a record's worth, or a whole page of a group-commit batch.
  for (size_t zeros : {size_t{1}, size_t{4}, size_t{7}, size_t{8}, size_t{35}, size_t{512},
                       size_t{1058}, size_t{1059}, size_t{4096}}) {
    std::string data = valid + std::string(zeros, '\0');
    Result<Scan> scan = ScanRecords(data);
    if (!scan.ok()) {
      ADD_FAILURE() << zeros << " zeros: " << scan.status().message();
      continue;
    }
    EXPECT_EQ(scan->records, records) << zeros << " zeros";
    EXPECT_EQ(scan->valid_bytes, valid.size()) << zeros << " zeros";
    EXPECT_TRUE(scan->torn_tail) << zeros << " zeros";
  }
}

TEST(ScanRecordsTest, BatchTornAtAPageBoundaryIsATornTail) {
  // A crash during a write of many records can keep the first page and lose
  // the next: the file then holds a record's header and the start of its
  // payload, then zeros up to the end of the page.
  std::vector<Record> records = ThreeRecords();
  std::string valid = Encode(records);
  std::string batch;
  for (int i = 0; i < 100; ++i) EncodeRecord(Make(Record::Kind::kAdd, "batch", 0, 0, i), &batch);
  for (size_t kept : {size_t{10}, size_t{20}, size_t{200}, size_t{1010}}) {
    std::string data = valid + batch.substr(0, kept);
    data.resize(valid.size() + 4096, '\0');
    Result<Scan> scan = ScanRecords(data);
    if (!scan.ok()) {
      ADD_FAILURE() << kept << " bytes of the batch kept: " << scan.status().message();
      continue;
    }
    EXPECT_TRUE(scan->torn_tail) << kept << " bytes kept";
    ASSERT_GE(scan->records.size(), records.size()) << kept << " bytes kept";
    EXPECT_EQ(std::vector<Record>(scan->records.begin(), scan->records.begin() + 3), records);
  }
}

TEST(ScanRecordsTest, OnlyZerosAreATornTailWithNothingValid) {
  Result<Scan> scan = ScanRecords(std::string(100, '\0'));
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_TRUE(scan->records.empty());
  EXPECT_EQ(scan->valid_bytes, 0u);
  EXPECT_TRUE(scan->torn_tail);
}

TEST(ScanRecordsTest, GarbageThatIsNotZerosAfterValidRecordsIsCorruption) {
  std::string valid = Encode(ThreeRecords());
  // An impossible length (0xFFFFFFFF) followed by more bytes than any record.
  std::string data = valid + std::string(2000, '\xFF');
  Result<Scan> scan = ScanRecords(data);
  ASSERT_FALSE(scan.ok());
  EXPECT_EQ(scan.status().code(), Code::kInternal);
  EXPECT_THAT(scan.status().message(), HasSubstr(std::to_string(valid.size())));
}

// --- Idempotency keys (format 2) and format 1 compatibility ------------------

Record Keyed(Record::Kind kind, std::string name, int64_t amount, std::string key,
             int64_t key_time, int64_t count, int64_t window = 0, int64_t window_start = 0) {
  Record record = Make(kind, std::move(name), window, window_start, amount);
  record.key = std::move(key);
  record.key_time = key_time;
  record.count = count;
  return record;
}

// A record around `payload`: its length, the length's complement, its CRC.
std::string Framed(const std::string& payload) {
  std::string out;
  uint32_t length = static_cast<uint32_t>(payload.size());
  for (uint32_t field : {length, ~length, Crc32c(payload)}) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>((field >> (8 * i)) & 0xFF);
  }
  return out + payload;
}

TEST(RecordTest, FormatOneRecordWrittenByAnOlderShardctlStillDecodes) {
  // kAdd of 5 to "hits", window 60 starting at 1700000040, as format 1 wrote it.
  const std::string v1(
      "\x1F\x00\x00\x00\xE0\xFF\xFF\xFF\xAC\xA6\x5E\xD2\x01\x05\x00\x00\x00\x00\x00\x00\x00\x3C"
      "\x00\x00\x00\x00\x00\x00\x00\x28\xF1\x53\x65\x00\x00\x00\x00\x04\x00\x68\x69\x74\x73",
      43);
  Result<Scan> scan = ScanRecords(v1 + v1);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  Record expected = Make(Record::Kind::kAdd, "hits", 60, 1'700'000'040, 5);
  EXPECT_EQ(scan->records, (std::vector<Record>{expected, expected}));
  EXPECT_TRUE(scan->records[0].key.empty());
  // And a record without a key is still encoded exactly as format 1 did.
  std::string encoded;
  EncodeRecord(expected, &encoded);
  EXPECT_EQ(encoded, v1);
}

TEST(RecordTest, KeyedRecordAppendsKeyTimeCountAndKeyAfterTheName) {
  std::string out;
  EncodeRecord(Keyed(Record::Kind::kAdd, "ab", 1, "key", 0x0102, -1), &out);
  ASSERT_EQ(out.size(), kHeaderBytes + 27 + 2 + 18 + 3);
  EXPECT_EQ(out.substr(0, 4), std::string("\x32\0\0\0", 4));  // payload length 50
  EXPECT_EQ(out.substr(39, 2), "ab");
  EXPECT_EQ(out.substr(41, 8), std::string("\x02\x01\0\0\0\0\0\0", 8));  // key time
  EXPECT_EQ(out.substr(49, 8), std::string(8, '\xFF'));                  // count -1
  EXPECT_EQ(out.substr(57, 2), std::string("\x03\0", 2));                // key length
  EXPECT_EQ(out.substr(59), "key");
}

TEST(RecordTest, KeyedRecordsRoundTripAmongUnkeyedOnes) {
  std::vector<Record> records = {
      Make(Record::Kind::kAdd, "hits", 0, 0, 1),
      Keyed(Record::Kind::kAdd, "hits", 5, "8e03978e-40d5-43e8-bc93-6894a57f9324", 1'700'000'000,
            6),
      Keyed(Record::Kind::kAdd, "api", kMin, std::string(255, '~'), kMax, kMin, 60,
            1'700'000'040),
      Keyed(Record::Kind::kKey, "default", -3, " ", kMin, kMax),
      Make(Record::Kind::kSet, "hits", 0, 0, 6),
  };
  std::string data = Encode(records);
  Result<Scan> scan = ScanRecords(data);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_EQ(scan->records, records);
  EXPECT_EQ(scan->valid_bytes, data.size());
  EXPECT_FALSE(scan->torn_tail);
}

TEST(RecordTest, AnyValueKeyRecordIsKindFiveAndRoundTrips) {
  const Record any = Keyed(Record::Kind::kAnyValueKey, "hits", 0, "order-1", 1'700'000'000, 9,
                           60, 1'700'000'040);
  std::string out;
  EncodeRecord(any, &out);
  EXPECT_EQ(out[kHeaderBytes], '\x05');
  Result<Scan> scan = ScanRecords(out);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_EQ(scan->records, std::vector<Record>{any});
}

TEST(ScanRecordsTest, KeyedLastRecordCutAtEveryByteIsATornTail) {
  std::string first = Encode({Make(Record::Kind::kAdd, "a", 0, 0, 1)});
  std::string keyed = Encode({Keyed(Record::Kind::kAdd, "a", 2, "retry-me", kMax, 3)});
  for (size_t cut = 1; cut < keyed.size(); ++cut) {
    Result<Scan> scan = ScanRecords(first + keyed.substr(0, cut));
    ASSERT_TRUE(scan.ok()) << "cut at " << cut << ": " << scan.status().message();
    EXPECT_EQ(scan->records.size(), 1u) << "cut at " << cut;
    EXPECT_EQ(scan->valid_bytes, first.size());
    EXPECT_TRUE(scan->torn_tail);
  }
}

TEST(ScanRecordsTest, KeyPartThatDoesNotFitIsCorruptionEvenWithAValidChecksum) {
  const std::string base = Encode({Make(Record::Kind::kAdd, "k", 0, 0, 1)}).substr(kHeaderBytes);
  auto key_part = [](uint16_t length, const std::string& key) {
    std::string part(16, '\x01');  // key time, count
    part += static_cast<char>(length & 0xFF);
    part += static_cast<char>(length >> 8);
    return part + key;
  };
  auto with_kind = [&](char kind) {
    std::string payload = base;
    payload[0] = kind;
    return payload;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"one stray byte after the name", base + "x"},
      {"a key part cut short", base + key_part(3, "ke")},
      {"a key part with bytes beyond its key", base + key_part(3, "keyz")},
      {"an empty key", base + key_part(0, "")},
      {"a key on a kSet", with_kind(3) + key_part(3, "key")},
      {"a key on a kRemove", with_kind(2) + key_part(3, "key")},
      {"a kKey without a key", with_kind(4)},
      {"a kAnyValueKey without a key", with_kind(5)},
      {"a kind no shardctl writes", with_kind(6) + key_part(3, "key")},
  };
  const std::string good = Encode(ThreeRecords());
  for (const auto& [what, payload] : cases) {
    Result<Scan> scan = ScanRecords(Framed(payload) + good);
    ASSERT_FALSE(scan.ok()) << what;
    EXPECT_EQ(scan.status().code(), Code::kInternal) << what;
    EXPECT_THAT(scan.status().message(), HasSubstr("byte 0")) << what;
  }
}

// --- Packed records (snapshots since store format 4) -------------------------

std::vector<Record> EveryShapeOfRecord() {
  return {
      {Record::Kind::kSet, "c:0500000", 0, 0, 7},
      {Record::Kind::kSet, "c:0500001", 0, 0, -1},
      {Record::Kind::kSet, "c:05", 0, 0, kMax},  // shares all it has with the one before
      {Record::Kind::kSet, "other", 0, 0, kMin},
      {Record::Kind::kSet, "api:x", 60, 1764720000, 3},
      {Record::Kind::kSet, "api:x", 3600, kMin, kMax},
      {Record::Kind::kKey, "api:x", 60, 1764720000, 2, "key-1", 1764720001, 5},
      {Record::Kind::kAnyValueKey, std::string(200, 'n'), 0, 0, 0, std::string(255, 'k'), kMax,
       kMin},
      {Record::Kind::kAdd, "a", 0, 0, 0, "k", 0, 0},
      {Record::Kind::kRemove, "a", 0, 0, -4},
  };
}

TEST(PackedRecordsTest, RoundTripWhateverTheirFields) {
  std::string packed;
  PackRecords(EveryShapeOfRecord(), &packed);
  Result<std::vector<Record>> unpacked = UnpackRecords(packed);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status().message();
  EXPECT_EQ(*unpacked, EveryShapeOfRecord());
  Result<std::vector<Record>> none = UnpackRecords("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(PackedRecordsTest, ACounterLikeTheBenchmarksTakesAFewBytes) {
  std::string packed;
  PackRecords({{Record::Kind::kSet, "c:0500000", 0, 0, 1}}, &packed);
  std::string encoded;
  EncodeRecord({Record::Kind::kSet, "c:0500000", 0, 0, 1}, &encoded);
  EXPECT_EQ(packed.size(), 1u + 1 + 1 + 9 + 1);
  EXPECT_EQ(encoded.size(), 48u);
}

TEST(PackedRecordsTest, WhatIsCutShortOrMakesNoSenseIsRefusedNamingTheByte) {
  std::string packed;
  PackRecords(EveryShapeOfRecord(), &packed);
  // Cut anywhere inside the last record: that record is refused.
  std::string before_last;
  std::vector<Record> all = EveryShapeOfRecord();
  PackRecords(std::vector<Record>(all.begin(), all.end() - 1), &before_last);
  for (size_t cut = before_last.size() + 1; cut < packed.size(); ++cut) {
    Result<std::vector<Record>> unpacked = UnpackRecords(std::string_view(packed).substr(0, cut));
    ASSERT_FALSE(unpacked.ok()) << cut;
    EXPECT_THAT(unpacked.status().message(),
                HasSubstr(fmt::format("at byte {}", before_last.size())));
  }
  for (const std::string& bad : {std::string("\x07\x00\x01a\x02"),  // kind 7
                                 std::string("\x43\x00\x01a\x02"),  // an unknown flag
                                 std::string("\x03\x01\x01a\x02"),  // shares with nothing
                                 std::string("\x24\x00\x01a\x02"),  // kKey's key missing
                                 std::string("\x04\x00\x01a\x02"),  // kKey without key flag
                                 std::string("\x03\x00\x01a\xff\xff\xff\xff\xff\xff"
                                             "\xff\xff\xff\xff\x01")}) {  // 11-byte varint
    Result<std::vector<Record>> unpacked = UnpackRecords(bad);
    ASSERT_FALSE(unpacked.ok()) << testing::PrintToString(bad);
    EXPECT_EQ(unpacked.status().code(), Code::kInternal);
  }
}

// --- Group records (store format 5) ---------------------------------------------

// A group of `increments` (name, amount) in `window` at `window_start`.
Record Group(const std::vector<std::pair<std::string, int64_t>>& increments, int64_t window = 0,
             int64_t window_start = 0) {
  Record group;
  group.kind = Record::Kind::kGroup;
  group.window = window;
  group.window_start = window_start;
  group.amount = 12345;
  std::string_view previous;
  for (const auto& [name, amount] : increments) {
    PackGroupItem(previous, name, amount, &group.items);
    previous = name;
  }
  return group;
}

TEST(GroupRecordTest, RoundTripsThroughTheJournalEncodingAndPackingWithAndWithoutKey) {
  Record plain = Group({{"c:0000001", 1}, {"c:0000002", kMax}, {"a", kMin}, {"a", -3}});
  Record keyed = Group({{"api:x", 2}}, 60, 1764720000);
  keyed.key = "batch-1";
  keyed.key_time = 1764720001;
  keyed.count = 1;
  std::vector<Record> records = {plain, ThreeRecords()[0], keyed};
  Result<Scan> scan = ScanRecords(Encode(records));
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_FALSE(scan->torn_tail);
  EXPECT_EQ(scan->records, records);
  std::string packed;
  PackRecords(records, &packed);
  Result<std::vector<Record>> unpacked = UnpackRecords(packed);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status().message();
  EXPECT_EQ(*unpacked, records);
}

TEST(GroupRecordTest, GroupIncrementsGivesBackEveryIncrementInOrder) {
  Result<std::vector<Record>> increments =
      GroupIncrements(Group({{"c:0000001", 1}, {"c:0000002", -2}, {"b", kMin}}));
  ASSERT_TRUE(increments.ok()) << increments.status().message();
  EXPECT_EQ(*increments, (std::vector<Record>{Make(Record::Kind::kAdd, "c:0000001", 0, 0, 1),
                                              Make(Record::Kind::kAdd, "c:0000002", 0, 0, -2),
                                              Make(Record::Kind::kAdd, "b", 0, 0, kMin)}));
}

TEST(GroupRecordTest, ALargeGroupIsOneRecordAndItsTailCutShortIsTorn) {
  std::vector<std::pair<std::string, int64_t>> many;
  for (int i = 0; i < 20000; ++i) many.emplace_back(fmt::format("c:{:07}", i), i);
  const Record group = Group(many);
  EXPECT_GT(group.items.size(), 65536u);  // more than a name's u16 length could say
  const std::string encoded = Encode({ThreeRecords()[0], group});
  Result<Scan> scan = ScanRecords(encoded);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  ASSERT_EQ(scan->records.size(), 2u);
  EXPECT_EQ(scan->records[1], group);
  for (size_t cut : {encoded.size() - 1, encoded.size() - group.items.size()}) {
    Result<Scan> torn = ScanRecords(std::string_view(encoded).substr(0, cut));
    ASSERT_TRUE(torn.ok()) << torn.status().message();
    EXPECT_TRUE(torn->torn_tail);
    EXPECT_EQ(torn->records.size(), 1u);
  }
}

TEST(GroupRecordTest, ItemsThatAreNotIncrementsOrAreCutShortAreCorrupt) {
  Record group = Group({{"a", 1}, {"b", 2}});
  Record cut = group;
  cut.items.pop_back();
  EXPECT_EQ(GroupIncrements(cut).status().code(), Code::kInternal);
  Record keyed_item = group;
  keyed_item.items.clear();
  PackRecords({{Record::Kind::kAdd, "a", 0, 0, 1, "key", 1, 1}}, &keyed_item.items);
  EXPECT_EQ(GroupIncrements(keyed_item).status().code(), Code::kInternal);
  Record set_item = group;
  set_item.items.clear();
  PackRecords({Make(Record::Kind::kSet, "a", 0, 0, 1)}, &set_item.items);
  Result<std::vector<Record>> refused = GroupIncrements(set_item);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("other than increments"));
}

TEST(GroupRecordTest, AGroupWhoseItemsLengthOverrunsItsRecordIsCorrupt) {
  Record group = Group({{"a", 1}});
  std::string encoded = Encode({group, ThreeRecords()[0]});
  // The u32 items length sits after the 27 fixed bytes of the payload.
  const uint32_t overrun = 1000;
  std::memcpy(encoded.data() + kHeaderBytes + 27, &overrun, 4);
  const uint32_t crc = Crc32c(std::string_view(encoded).substr(
      kHeaderBytes, encoded.size() - kHeaderBytes - Encode({ThreeRecords()[0]}).size()));
  std::memcpy(encoded.data() + 8, &crc, 4);
  Result<Scan> scan = ScanRecords(encoded);
  ASSERT_FALSE(scan.ok());
  EXPECT_THAT(scan.status().message(), HasSubstr("byte 0"));
}

}  // namespace
}  // namespace shardctl::core
