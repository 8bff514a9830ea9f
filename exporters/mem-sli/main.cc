#include "mem_sli_exporter.h"

int main(int argc, char** argv) {
  scry::mem::MemExporter exporter;
  return scry::RunExporter(scry::mem::kInfo, exporter, argc, argv);
}
