// Reading the captured inputs under tests/fixtures/.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace scry::test {

inline std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(SCRY_TEST_FIXTURES) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace scry::test
