#include "net_exporter.h"

int main(int argc, char** argv) {
  scry::net::NetExporter exporter;
  return scry::RunExporter(scry::net::kInfo, exporter, argc, argv);
}
