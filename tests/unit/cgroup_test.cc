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

TEST(FindCgroup1Mount, FindsTheControllersHierarchy) {
  std::string hybrid = ReadFixture("proc/mountinfo.hybrid");
  EXPECT_EQ(FindCgroup1Mount(hybrid, "memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(FindCgroup1Mount(hybrid, "cpu"), "/sys/fs/cgroup/cpu");
  EXPECT_EQ(FindCgroup1Mount(hybrid, "mem"), "");  // whole option names only
  EXPECT_EQ(FindCgroup1Mount(ReadFixture("proc/mountinfo.v2"), "memory"), "");
  // Co-mounted controllers, e.g. "cpu,cpuacct".
  EXPECT_EQ(FindCgroup1Mount("32 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
                             "cpuacct"),
            "/sys/fs/cgroup/cpu,cpuacct");
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

TEST(ParseFlatKeyed, KeysAndValues) {
  auto stat = ParseFlatKeyed("cache 10706944\npgfault 48683\npgmajfault 0\nbad line here\nnovalue\n");
  EXPECT_EQ(stat.size(), 3u);
  EXPECT_EQ(stat["pgfault"], 48683u);
  EXPECT_EQ(stat["pgmajfault"], 0u);
}

// A host root with a mountinfo and cgroup directories stands in for the node.
class ControllerFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = std::filesystem::temp_directory_path() / ("scry-controller-" + std::to_string(getpid()));
    std::filesystem::create_directories(host_ / "proc/1");
  }
  void TearDown() override { std::filesystem::remove_all(host_); }
  void Write(const std::string& rel, const std::string& content) {
    std::filesystem::create_directories((host_ / rel).parent_path());
    std::ofstream(host_ / rel) << content;
  }
  std::filesystem::path host_;
};

TEST_F(ControllerFilesTest, HybridHostReadsTheV1HierarchyAtTheSamePath) {
  Write("proc/1/mountinfo", ReadFixture("proc/mountinfo.hybrid"));
  Write("sys/fs/cgroup/memory/batch/memory.stat", "pgfault 7\n");
  std::filesystem::create_directories(host_ / "sys/fs/cgroup/unified/batch");
  std::filesystem::create_directories(host_ / "sys/fs/cgroup/unified/no-memcg");
  CgroupControllerFiles files("memory", host_.string(), (host_ / "sys/fs/cgroup/unified").string());
  EXPECT_TRUE(files.available());
  EXPECT_TRUE(files.v1());
  EXPECT_EQ(files.Read("/batch", "memory.stat"), "pgfault 7\n");
  EXPECT_EQ(files.Read("/no-memcg", "memory.stat"), std::nullopt);  // charged to an ancestor
  CgroupControllerFiles none("nosuch", host_.string(), (host_ / "sys/fs/cgroup/unified").string());
  EXPECT_FALSE(none.available());
  EXPECT_EQ(none.Read("/batch", "memory.stat"), std::nullopt);
}

TEST_F(ControllerFilesTest, PureV2HostReadsTheCgroupItselfWhereTheControllerIsEnabled) {
  Write("proc/1/mountinfo", ReadFixture("proc/mountinfo.v2"));
  std::string root = (host_ / "sys/fs/cgroup").string();
  Write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
  Write("sys/fs/cgroup/kubepods.slice/memory.stat", "pgfault 9\n");
  std::filesystem::create_directories(host_ / "sys/fs/cgroup/init.scope");
  CgroupControllerFiles files("memory", host_.string(), root);
  EXPECT_TRUE(files.available());
  EXPECT_FALSE(files.v1());
  EXPECT_EQ(files.Read("/kubepods.slice", "memory.stat"), "pgfault 9\n");
  EXPECT_EQ(files.Read("/init.scope", "memory.stat"), std::nullopt);
  EXPECT_EQ(files.Read("/", "memory.stat"), std::nullopt);  // the v2 root has none
  EXPECT_FALSE(CgroupControllerFiles("hugetlb", host_.string(), root).available());
}

}  // namespace
}  // namespace scry
