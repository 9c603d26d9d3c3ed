// Writes one scrape of the metrics scene in the text format and in OpenMetrics:
//   metrics-scrape <text-file> <openmetrics-file>
// tests.cmake runs `promtool check metrics` on both.
#include "support_metrics.hpp"

#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: metrics-scrape TEXT_FILE OPENMETRICS_FILE\n";
    return 2;
  }
  kysera::test::metrics_support::scene s;
  std::ofstream(argv[1], std::ios::binary) << kysera::infra::metrics::to_prometheus(s.reg);
  std::ofstream(argv[2], std::ios::binary) << kysera::infra::metrics::to_openmetrics(s.reg);
  return 0;
}
