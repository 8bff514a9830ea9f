// Shared by the unit tests: captured inputs under tests/fixtures/, temporary trees, a fake clock.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

namespace scry::test {

inline std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(SCRY_TEST_FIXTURES) + "/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << content;
}

inline uint64_t Inode(const std::filesystem::path& p) {
  struct stat st;
  EXPECT_EQ(stat(p.c_str(), &st), 0) << p;
  return st.st_ino;
}

// A temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "scry-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Time that moves only when told to: retention tests step through time without sleeping.
struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  std::function<std::chrono::steady_clock::time_point()> Fn() {
    return [this] { return now; };
  }
  void Advance(std::chrono::seconds s) { now += s; }
};

}  // namespace scry::test
