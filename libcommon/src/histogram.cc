#include "scry/histogram.h"

#include <cmath>
#include <limits>

namespace scry {

double SlotUpperBound(const HistogramShape& shape, int slot) {
  if (slot >= SCRY_HIST_SLOTS - 1) return std::numeric_limits<double>::infinity();
  // Integer first, one division last: 2^k * 1000 / 1e9 is the double nearest to 2^k us.
  double base_units = std::ldexp(static_cast<double>(shape.unit), static_cast<int>(shape.min_log2) + slot);
  return base_units / shape.divisor;
}

prometheus::ClientMetric::Histogram ToPrometheus(const scry_hist& hist, const HistogramShape& shape) {
  prometheus::ClientMetric::Histogram out;
  uint64_t cumulative = 0;
  out.bucket.reserve(SCRY_HIST_SLOTS);
  for (int k = 0; k < SCRY_HIST_SLOTS; k++) {
    cumulative += hist.slots[k];
    out.bucket.push_back({cumulative, SlotUpperBound(shape, k)});
  }
  out.sample_count = cumulative;
  out.sample_sum = static_cast<double>(hist.sum) / shape.divisor;
  return out;
}

void Merge(scry_hist& a, const scry_hist& b) {
  for (int k = 0; k < SCRY_HIST_SLOTS; k++) a.slots[k] += b.slots[k];
  a.sum += b.sum;
}

}  // namespace scry
