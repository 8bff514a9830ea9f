// User side of scry_hist.h: log2 slots read from a BPF map -> a cumulative Prometheus histogram.
#pragma once

#include <linux/types.h>
#include <prometheus/client_metric.h>

#include <cstdint>

#include "scry_hist.h"

namespace scry {

struct HistogramShape {
  uint64_t unit;       // base units per step (e.g. 1000 ns)
  uint32_t min_log2;   // slot 0's bound is 2^min_log2 steps
  double divisor;      // base unit -> exported unit (1e9 for ns -> seconds)
};

constexpr HistogramShape kLatencySeconds{SCRY_LATENCY_UNIT_NS, SCRY_LATENCY_MIN_LOG2, 1e9};
constexpr HistogramShape kSizeBytes{SCRY_SIZE_UNIT_BYTES, SCRY_SIZE_MIN_LOG2, 1};
constexpr HistogramShape kWindow{SCRY_WINDOW_UNIT, SCRY_WINDOW_MIN_LOG2, 1};

// Upper bound of slot k in exported units; +Inf for the last slot.
double SlotUpperBound(const HistogramShape& shape, int slot);

prometheus::ClientMetric::Histogram ToPrometheus(const scry_hist& hist, const HistogramShape& shape);

// Adds b's counts and sum to a (merging series, e.g. into an overflow series).
void Merge(scry_hist& a, const scry_hist& b);

}  // namespace scry
