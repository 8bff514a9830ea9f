#include "block_exporter.h"

int main(int argc, char** argv) {
  scry::block::BlockExporter exporter;
  return scry::RunExporter(scry::block::kInfo, exporter, argc, argv);
}
