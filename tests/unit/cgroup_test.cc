#include "scry/cgroup.h"

#include <gtest/gtest.h>

#include "fixture.h"
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace scry {
namespace {

using test::ReadFixture;

TEST(FindCgroup2Mount, HybridLayout) {
  EXPECT_EQ(FindCgroup2Mount(ReadFixture("proc/mountinfo.hybrid")), "/sys/fs/cgroup/unified");
}

TEST(FindCgroup2Mount, PureV2Layout) {
  EXPECT_EQ(FindCgroup2Mount(ReadFixture("proc/mountinfo.v2")), "/sys/fs/cgroup");
}

TEST(FindCgroup2Mount, NoneOnPureV1) {
  EXPECT_EQ(FindCgroup2Mount("31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"), "");
}

// A directory tree stands in for a cgroup v2 mount: ids are directory inodes there too.
TEST(CgroupPaths, ResolvesDirectoryInodesAndSeesNewOnes) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("scry-cgroup-test-" + std::to_string(getpid()));
  fs::create_directories(root / "system.slice" / "nginx.service");
  auto inode = [](const fs::path& p) {
    struct stat st;
    stat(p.c_str(), &st);
    return static_cast<uint64_t>(st.st_ino);
  };
  CgroupPaths paths(root.string(), std::chrono::seconds(0), std::chrono::seconds(0));
  EXPECT_EQ(paths.Path(inode(root)), "/");
  EXPECT_EQ(paths.Path(inode(root / "system.slice" / "nginx.service")), "/system.slice/nginx.service");

  fs::create_directories(root / "kubepods.slice");
  EXPECT_EQ(paths.Path(inode(root / "kubepods.slice")), "/kubepods.slice");

  uint64_t gone = inode(root / "system.slice" / "nginx.service");
  fs::remove(root / "system.slice" / "nginx.service");
  EXPECT_EQ(paths.Path(gone), std::nullopt);
  EXPECT_EQ(paths.unresolved(), 1u);
  fs::remove_all(root);
}

TEST(CgroupPaths, KeepsTheLabelOfADeadCgroupForTheRetentionTime) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("scry-cgroup-retain-" + std::to_string(getpid()));
  fs::create_directories(root / "job");
  struct stat st;
  stat((root / "job").c_str(), &st);
  CgroupPaths paths(root.string(), std::chrono::seconds(0), std::chrono::seconds(3600));
  EXPECT_EQ(paths.Path(st.st_ino), "/job");
  fs::remove(root / "job");
  EXPECT_EQ(paths.Path(st.st_ino), "/job");  // dead, still labelled
  EXPECT_EQ(paths.unresolved(), 0u);
  fs::remove_all(root);
}

}  // namespace
}  // namespace scry
