// Small builders for prometheus::MetricFamily, for collectors that turn BPF maps into metrics at scrape time.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace scry {

using Labels = std::vector<prometheus::ClientMetric::Label>;

prometheus::MetricFamily MakeFamily(std::string name, std::string help, prometheus::MetricType type);
void AddCounter(prometheus::MetricFamily& family, Labels labels, double value);
void AddGauge(prometheus::MetricFamily& family, Labels labels, double value);
void AddHistogram(prometheus::MetricFamily& family, Labels labels, prometheus::ClientMetric::Histogram histogram);

}  // namespace scry
