#include "scry/procnet.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <filesystem>

#include "fixture.h"

namespace scry {
namespace {

TEST(ProcNetStats, ParsesCapturedNetstat) {
  auto stats = ParseProcNetStats(test::ReadFixture("proc/netstat.6_18"));
  ASSERT_TRUE(stats.count("TcpExt"));
  ASSERT_TRUE(stats.count("IpExt"));
  EXPECT_TRUE(stats["TcpExt"].count("ListenOverflows"));
  EXPECT_TRUE(stats["TcpExt"].count("ListenDrops"));
  EXPECT_TRUE(stats["TcpExt"].count("TCPTimeouts"));
}

TEST(ProcNetStats, ValuesByPositionAndNegativeFields) {
  auto stats = ParseProcNetStats(
      "Tcp: RtoAlgorithm MaxConn RetransSegs\nTcp: 1 -1 42\nUdp: InDatagrams RcvbufErrors\nUdp: 7 3\n");
  EXPECT_EQ(stats["Tcp"]["RetransSegs"], 42u);
  EXPECT_EQ(static_cast<int64_t>(stats["Tcp"]["MaxConn"]), -1);
  EXPECT_EQ(stats["Udp"]["RcvbufErrors"], 3u);
}

TEST(ProcNetStats, SkipsMalformedPairs) {
  auto stats = ParseProcNetStats("TcpExt: A B\nTcpExt: 1\nIpExt: X\nIpExt: y\nMPTcpExt: M\nMPTcpExt: 5");
  EXPECT_FALSE(stats.count("TcpExt"));  // counts differ
  EXPECT_FALSE(stats.count("IpExt"));   // not a number
  EXPECT_EQ(stats["MPTcpExt"]["M"], 5u);  // no trailing newline
  EXPECT_TRUE(ParseProcNetStats("").empty());
}

TEST(FormatAddress, V4V6AndMapped) {
  uint8_t a[16] = {};
  inet_pton(AF_INET, "10.1.2.3", a);
  EXPECT_EQ(FormatAddress(AF_INET, a), "10.1.2.3");
  uint8_t b[16];
  inet_pton(AF_INET6, "fd00::1", b);
  EXPECT_EQ(FormatAddress(AF_INET6, b), "fd00::1");
  inet_pton(AF_INET6, "::ffff:192.168.0.9", b);
  EXPECT_EQ(FormatAddress(AF_INET6, b), "192.168.0.9");
  EXPECT_EQ(FormatAddress(0, b), "");
}

TEST(LabelCap, FirstComeSlotsPerGroupAndOverflow) {
  LabelCap cap(2, "other");
  cap.Begin();
  EXPECT_EQ(cap.Map("w1", "a"), "a");
  EXPECT_EQ(cap.Map("w1", "b"), "b");
  EXPECT_EQ(cap.Map("w1", "c"), "other");
  EXPECT_EQ(cap.Map("w2", "c"), "c");  // per group
  cap.End();
  EXPECT_EQ(cap.slots(), 3u);
  // sticky: a keeps its slot while seen, c stays in other
  cap.Begin();
  EXPECT_EQ(cap.Map("w1", "c"), "other");
  EXPECT_EQ(cap.Map("w1", "a"), "a");
  cap.End();  // b was not seen: its slot is free
  cap.Begin();
  EXPECT_EQ(cap.Map("w1", "c"), "c");
  EXPECT_EQ(cap.Map("w1", "b"), "other");
  cap.End();
  cap.Begin();
  cap.End();  // nothing seen: every slot goes
  EXPECT_EQ(cap.slots(), 0u);
}

TEST(EnumLabel, StripsPrefixAndLowers) {
  EXPECT_EQ(EnumLabel("SKB_DROP_REASON_NO_SOCKET", "SKB_DROP_REASON_"), "no_socket");
  EXPECT_EQ(EnumLabel("TCP_CLOSE", "SKB_"), "tcp_close");
}

TEST(KernelEnumNames, SkbDropReasonFromRunningKernel) {
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) GTEST_SKIP() << "no kernel BTF";
  auto names = KernelEnumNames("skb_drop_reason");
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names[2], "SKB_DROP_REASON_NOT_SPECIFIED");
  EXPECT_TRUE(KernelEnumNames("no_such_enum_anywhere").empty());
}

}  // namespace
}  // namespace scry
