#include "scry/histogram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace scry {
namespace {

TEST(Log2, CeilOfSmallValues) {
  EXPECT_EQ(scry_log2_ceil(0), 0u);
  EXPECT_EQ(scry_log2_ceil(1), 0u);
  EXPECT_EQ(scry_log2_ceil(2), 1u);
  EXPECT_EQ(scry_log2_ceil(3), 2u);
  EXPECT_EQ(scry_log2_ceil(4), 2u);
  EXPECT_EQ(scry_log2_ceil(5), 3u);
  EXPECT_EQ(scry_log2_ceil(1ULL << 40), 40u);
  EXPECT_EQ(scry_log2_ceil((1ULL << 40) + 1), 41u);
  EXPECT_EQ(scry_log2_ceil(~0ULL), 64u);
}

TEST(Log2, FloorMatchesDefinitionForEveryPowerAndNeighbour) {
  for (int k = 0; k < 64; k++) {
    uint64_t p = 1ULL << k;
    EXPECT_EQ(scry_log2_floor(p), static_cast<uint32_t>(k));
    if (k > 1) {
      EXPECT_EQ(scry_log2_floor(p - 1), static_cast<uint32_t>(k - 1));
    }
    if (k > 0 && k < 63) {
      EXPECT_EQ(scry_log2_floor(p + 1), static_cast<uint32_t>(k));
    }
  }
}

// Latency: slot k holds v with 2^(k-1) us < v <= 2^k us.
TEST(HistSlot, LatencyBoundsAreInclusive) {
  EXPECT_EQ(scry_hist_slot(0, 1000, 0), 0u);      // 0 lands in the first bucket
  EXPECT_EQ(scry_hist_slot(1, 1000, 0), 0u);      // 1 ns <= 1 us
  EXPECT_EQ(scry_hist_slot(1000, 1000, 0), 0u);   // exactly 1 us
  EXPECT_EQ(scry_hist_slot(1001, 1000, 0), 1u);   // just above 1 us -> le 2 us
  EXPECT_EQ(scry_hist_slot(2000, 1000, 0), 1u);   // exactly 2 us
  EXPECT_EQ(scry_hist_slot(2001, 1000, 0), 2u);   // -> le 4 us
  EXPECT_EQ(scry_hist_slot(1024000, 1000, 0), 10u);  // exactly 1024 us
  EXPECT_EQ(scry_hist_slot(1024001, 1000, 0), 11u);
}

TEST(HistSlot, OverflowIsClampedIntoTheLastSlot) {
  const uint64_t last_finite_ns = (1ULL << (SCRY_HIST_SLOTS - 2)) * 1000;  // 2^26 us
  EXPECT_EQ(scry_hist_slot(last_finite_ns, 1000, 0), static_cast<uint32_t>(SCRY_HIST_SLOTS - 2));
  EXPECT_EQ(scry_hist_slot(last_finite_ns + 1, 1000, 0), static_cast<uint32_t>(SCRY_HIST_SLOTS - 1));
  EXPECT_EQ(scry_hist_slot(~0ULL, 1000, 0), static_cast<uint32_t>(SCRY_HIST_SLOTS - 1));
}

// The slot by definition: ceil(v / unit) steps, ceil(log2) of that, less min_log2, clamped.
uint32_t SlotByDivision(uint64_t v, uint64_t unit, uint32_t min_log2) {
  uint64_t steps = v / unit + (v % unit != 0);
  uint32_t l = scry_log2_ceil(steps);
  if (l <= min_log2) return 0;
  l -= min_log2;
  return l < SCRY_HIST_SLOTS ? l : SCRY_HIST_SLOTS - 1;
}

TEST(HistSlot, MatchesTheDefinitionAtEveryBoundAndNeighbour) {
  for (auto [unit, min_log2] : {std::pair<uint64_t, uint32_t>{1000, 0}, {1, 9}, {1, 0}, {3, 2}, {1024, 0}, {999, 1}})
    for (int k = 0; k < 64; k++)
      for (uint64_t base : {uint64_t{1} << k, unit << (k < 50 ? k : 50)})
        for (int64_t d = -2; d <= 2; d++) {
          uint64_t v = base + static_cast<uint64_t>(d);
          ASSERT_EQ(scry_hist_slot(v, unit, min_log2), SlotByDivision(v, unit, min_log2))
              << "v=" << v << " unit=" << unit << " min_log2=" << min_log2;
        }
}

TEST(HistSlot, SizesStartAt512Bytes) {
  EXPECT_EQ(scry_hist_slot(0, 1, 9), 0u);
  EXPECT_EQ(scry_hist_slot(1, 1, 9), 0u);
  EXPECT_EQ(scry_hist_slot(512, 1, 9), 0u);
  EXPECT_EQ(scry_hist_slot(513, 1, 9), 1u);
  EXPECT_EQ(scry_hist_slot(4096, 1, 9), 3u);
  EXPECT_EQ(scry_hist_slot(4097, 1, 9), 4u);
  EXPECT_EQ(scry_hist_slot(1 << 20, 1, 9), 11u);
}

TEST(SlotUpperBound, ExportedInBaseUnits) {
  EXPECT_DOUBLE_EQ(SlotUpperBound(kLatencySeconds, 0), 1e-6);
  EXPECT_DOUBLE_EQ(SlotUpperBound(kLatencySeconds, 1), 2e-6);
  EXPECT_DOUBLE_EQ(SlotUpperBound(kLatencySeconds, 10), 0.001024);
  EXPECT_DOUBLE_EQ(SlotUpperBound(kLatencySeconds, 26), 67.108864);
  EXPECT_TRUE(std::isinf(SlotUpperBound(kLatencySeconds, SCRY_HIST_SLOTS - 1)));
  EXPECT_DOUBLE_EQ(SlotUpperBound(kSizeBytes, 0), 512);
  EXPECT_DOUBLE_EQ(SlotUpperBound(kSizeBytes, 3), 4096);
}

TEST(ToPrometheus, CumulativeBucketsExactSumAndCount) {
  scry_hist h{};
  // 3 requests of 4096 B, 1 of 1 MiB, 2 of 0 B (flushes)
  h.slots[scry_hist_slot(4096, 1, 9)] += 3;
  h.slots[scry_hist_slot(1 << 20, 1, 9)] += 1;
  h.slots[scry_hist_slot(0, 1, 9)] += 2;
  h.sum = 3 * 4096 + (1 << 20);
  auto p = ToPrometheus(h, kSizeBytes);
  ASSERT_EQ(p.bucket.size(), static_cast<size_t>(SCRY_HIST_SLOTS));
  EXPECT_EQ(p.sample_count, 6u);
  EXPECT_DOUBLE_EQ(p.sample_sum, 3 * 4096.0 + 1048576.0);
  EXPECT_EQ(p.bucket[0].cumulative_count, 2u);   // le 512
  EXPECT_EQ(p.bucket[2].cumulative_count, 2u);   // le 2048
  EXPECT_EQ(p.bucket[3].cumulative_count, 5u);   // le 4096
  EXPECT_EQ(p.bucket[10].cumulative_count, 5u);  // le 512 KiB
  EXPECT_EQ(p.bucket[11].cumulative_count, 6u);  // le 1 MiB
  EXPECT_EQ(p.bucket.back().cumulative_count, 6u);
  EXPECT_TRUE(std::isinf(p.bucket.back().upper_bound));
  for (size_t i = 1; i < p.bucket.size(); i++) EXPECT_GE(p.bucket[i].cumulative_count, p.bucket[i - 1].cumulative_count);
}

TEST(ToPrometheus, LatencySumInSeconds) {
  scry_hist h{};
  h.slots[scry_hist_slot(1500, 1000, 0)]++;                        // 1.5 us -> le 2 us
  h.slots[scry_hist_slot(3'000'000'000ULL, 1000, 0)]++;            // 3 s -> le 4.194304 s
  h.slots[scry_hist_slot(100'000'000'000ULL, 1000, 0)]++;          // 100 s -> +Inf only
  h.sum = 1500 + 3'000'000'000ULL + 100'000'000'000ULL;
  auto p = ToPrometheus(h, kLatencySeconds);
  EXPECT_EQ(p.sample_count, 3u);
  EXPECT_DOUBLE_EQ(p.sample_sum, 103.0000015);
  EXPECT_EQ(p.bucket[0].cumulative_count, 0u);
  EXPECT_EQ(p.bucket[1].cumulative_count, 1u);
  EXPECT_EQ(p.bucket[22].cumulative_count, 2u);  // le 4.194304
  EXPECT_DOUBLE_EQ(p.bucket[22].upper_bound, 4.194304);
  EXPECT_EQ(p.bucket[SCRY_HIST_SLOTS - 2].cumulative_count, 2u);
  EXPECT_EQ(p.bucket[SCRY_HIST_SLOTS - 1].cumulative_count, 3u);
}

TEST(Merge, AddsCountsAndSums) {
  scry_hist a{}, b{};
  a.slots[1] = 2; a.sum = 10;
  b.slots[1] = 3; b.slots[5] = 1; b.sum = 7;
  Merge(a, b);
  EXPECT_EQ(a.slots[1], 5u);
  EXPECT_EQ(a.slots[5], 1u);
  EXPECT_EQ(a.sum, 17u);
}

}  // namespace
}  // namespace scry
