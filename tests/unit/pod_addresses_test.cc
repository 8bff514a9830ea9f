// Pod addresses from network namespaces: fib_trie and if_inet6 captured from a real namespace, and the
// address -> pod table over a fake node (cgroups, kubelet files, /proc).
#include "scry/pod_addresses.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "fixture.h"

namespace scry {
namespace {

using namespace scry::test;
using std::chrono::seconds;
namespace fs = std::filesystem;

TEST(PodAddresses, LocalIpv4AddressesFromFibTrieWithoutLoopback) {
  // two addresses on a veth, the subnet's broadcast and network entries, 127.0.0.0/8
  EXPECT_EQ(ParseFibTrieLocal(ReadFixture("netns/pod.fib_trie")),
            (std::set<std::string>{"10.244.1.17", "10.244.9.3"}));
  EXPECT_TRUE(ParseFibTrieLocal("").empty());
  EXPECT_TRUE(ParseFibTrieLocal("garbage\n/32 host LOCAL\n|-- not-an-address\n/32 host LOCAL\n").empty());
}

TEST(PodAddresses, GlobalIpv6AddressesFromIfInet6) {
  // link-local and loopback addresses are left out; the form is FormatAddress's (inet_ntop)
  EXPECT_EQ(ParseIfInet6(ReadFixture("netns/pod.if_inet6")), (std::set<std::string>{"fd00:10:244::11"}));
  EXPECT_TRUE(ParseIfInet6("short 01 40 00 80 eth0\n").empty());
}

// A pure v2 node: one pod with a container (its process's namespace has the fixture's addresses), one
// hostNetwork pod (its process sees the node's addresses).
class PodAddressesTable : public ::testing::Test {
 protected:
  static constexpr const char* kUid = "0c5d2f4e-8b1a-4f6e-9d3c-7a2b1e5f9c40";
  static constexpr const char* kHostUid = "7d1e2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b";
  const std::string kId = std::string(64, 'a');
  const std::string kHostId = std::string(64, 'b');

  void SetUp() override {
    WriteFile(host_.path() / "proc/1/mountinfo", ReadFixture("proc/mountinfo.v2"));
    WriteFile(host_.path() / "proc/1/net/fib_trie", "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 192.168.5.4\n"
                                                     "        /32 host LOCAL\n");
    Pod("web", "frontend-5f7c9", kUid, "app", kId, "100");
    Pod("kube-system", "node-agent-x2", kHostUid, "agent", kHostId, "200");
    WriteFile(host_.path() / "proc/100/net/fib_trie", ReadFixture("netns/pod.fib_trie"));
    WriteFile(host_.path() / "proc/100/net/if_inet6", ReadFixture("netns/pod.if_inet6"));
    WriteFile(host_.path() / "proc/200/net/fib_trie", "Main:\n     |-- 192.168.5.4\n        /32 host LOCAL\n");
    IdentityOptions o;
    o.host_root = host_.path().string();
    o.clock = clock_.Fn();
    resolver_ = std::make_shared<IdentityResolver>(o);
  }

  // The kubelet's files of a pod, and its container's cgroup holding one process.
  void Pod(const std::string& ns, const std::string& pod, const std::string& uid, const std::string& container,
           const std::string& id, const std::string& pid) {
    std::string systemd_uid = uid;  // the systemd cgroup driver writes the uid's dashes as underscores
    std::replace(systemd_uid.begin(), systemd_uid.end(), '-', '_');
    std::string slice = "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + systemd_uid + ".slice";
    WriteFile(host_.path() / "sys/fs/cgroup" / slice / ("cri-containerd-" + id + ".scope") / "cgroup.procs",
              pid + "\n");
    fs::path log = fs::path("var/log/pods") / (ns + "_" + pod + "_" + uid) / container / "0.log";
    WriteFile(host_.path() / log, "");
    fs::create_directories(host_.path() / "var/log/containers");
    fs::create_symlink("/" + log.string(),
                       host_.path() / "var/log/containers" / (pod + "_" + ns + "_" + container + "-" + id + ".log"));
  }

  TempDir host_;
  FakeClock clock_;
  std::shared_ptr<IdentityResolver> resolver_;
};

TEST_F(PodAddressesTable, PodsByAddressHostNetworkLeftOut) {
  PodAddresses pods(resolver_, seconds(10), clock_.Fn());
  EXPECT_EQ(pods.Pod("10.244.1.17"), "web/frontend-5f7c9");
  EXPECT_EQ(pods.Pod("10.244.9.3"), "web/frontend-5f7c9");
  EXPECT_EQ(pods.Pod("fd00:10:244::11"), "web/frontend-5f7c9");
  EXPECT_EQ(pods.Pod("192.168.5.4"), "");  // the node's address, not the hostNetwork pod's name
  EXPECT_EQ(pods.Pod("10.0.0.1"), "");
  EXPECT_EQ(pods.size(), 3u);
}

TEST_F(PodAddressesTable, RereadsOnlyAfterTheRefreshInterval) {
  PodAddresses pods(resolver_, seconds(10), clock_.Fn());
  EXPECT_EQ(pods.Pod("10.244.1.17"), "web/frontend-5f7c9");
  // the pod's process now sees another address
  WriteFile(host_.path() / "proc/100/net/fib_trie", "Main:\n     |-- 10.244.1.99\n        /32 host LOCAL\n");
  fs::remove(host_.path() / "proc/100/net/if_inet6");
  clock_.Advance(seconds(5));
  EXPECT_EQ(pods.Pod("10.244.1.17"), "web/frontend-5f7c9");
  EXPECT_EQ(pods.Pod("10.244.1.99"), "");
  clock_.Advance(seconds(6));
  EXPECT_EQ(pods.Pod("10.244.1.17"), "");
  EXPECT_EQ(pods.Pod("10.244.1.99"), "web/frontend-5f7c9");
}

}  // namespace
}  // namespace scry
