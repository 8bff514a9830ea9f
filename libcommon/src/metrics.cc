#include "scry/metrics.h"

namespace scry {

prometheus::MetricFamily MakeFamily(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddCounter(prometheus::MetricFamily& family, Labels labels, double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  family.metric.push_back(std::move(m));
}

void AddGauge(prometheus::MetricFamily& family, Labels labels, double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  family.metric.push_back(std::move(m));
}

void AddHistogram(prometheus::MetricFamily& family, Labels labels, prometheus::ClientMetric::Histogram histogram) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.histogram = std::move(histogram);
  family.metric.push_back(std::move(m));
}

}  // namespace scry
