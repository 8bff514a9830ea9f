#include "sched_exporter.h"

int main(int argc, char** argv) {
  scry::sched::SchedExporter exporter;
  return scry::RunExporter(scry::sched::kInfo, exporter, argc, argv);
}
