#include "scry/decoders.h"

#include <gtest/gtest.h>

#include "fixture.h"

#include <fstream>
#include <sstream>

namespace scry {
namespace {

using test::ReadFixture;

TEST(KernelDev, SplitsMajorAndMinor) {
  uint32_t kdev = (259u << 20) | 2u;
  EXPECT_EQ(KernelDevMajor(kdev), 259u);
  EXPECT_EQ(KernelDevMinor(kdev), 2u);
  EXPECT_EQ(KernelDevMinor((7u << 20) | 0xfffffu), 0xfffffu);
}

TEST(DiskNames, ParsesDiskstats) {
  auto names = DiskNames::Parse(ReadFixture("proc/diskstats.nvme"));
  EXPECT_EQ(names.at({259, 0}), "nvme0n1");
  EXPECT_EQ(names.at({259, 2}), "nvme0n1p2");
  EXPECT_EQ(names.at({253, 0}), "dm-0");
  EXPECT_EQ(names.at({7, 0}), "loop0");
  EXPECT_EQ(names.at({254, 0}), "vda");
  EXPECT_EQ(names.size(), 6u);
}

TEST(DiskNames, NamesFromAFileAndFallsBackToNumbers) {
  DiskNames disks(std::string(SCRY_TEST_FIXTURES) + "/proc/diskstats.nvme");
  EXPECT_EQ(disks.Name(259, 0), "nvme0n1");
  EXPECT_EQ(disks.Name(8, 16), "8:16");
}

TEST(DiskNames, RealDiskstatsOfAVirtualMachine) {
  auto names = DiskNames::Parse(ReadFixture("proc/diskstats.vm"));
  EXPECT_EQ(names.at({7, 0}), "loop0");
  EXPECT_EQ(names.at({254, 0}), "vda");
}

TEST(ErrnoName, KnownAndUnknown) {
  EXPECT_EQ(ErrnoName(28), "ENOSPC");
  EXPECT_EQ(ErrnoName(-5), "EIO");
  EXPECT_EQ(ErrnoName(110), "ETIMEDOUT");
  EXPECT_EQ(ErrnoName(95), "EOPNOTSUPP");
  EXPECT_EQ(ErrnoName(4000), "errno_4000");
}

}  // namespace
}  // namespace scry
