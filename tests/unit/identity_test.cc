#include "scry/identity.h"

#include "fixture.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace scry {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using test::FakeClock;
using test::Inode;
using test::ReadFixture;
using test::TempDir;
using test::WriteFile;

// Ids and uids used by the fixtures under tests/fixtures/identity.
const std::string kA = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
const std::string kB = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
const std::string kC = "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";
const std::string kD = "18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4";
const std::string kE = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";
const std::string kF = "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111";
const std::string kG = "cd0aa9856147b6c5b4ff2b7dfee5da20aa38253099ef1b4a64aced233c9afe29";
const std::string kH = "aaa9402664f1a41f40ebbc52c9993eb66aeb366602958fdfaa283b71e64db123";
const std::string kI = "de7d1b721a1e0632b7cf04edf5032c8ecffa9f9a08492152b926f1a5a7e765d7";
const std::string kJ = "189f40034be7a199f1fa9891668ee3ab6049f82d38c68be70f596eab2e1857b7";
const std::string kK = "8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a";
const std::string kL = "acac86c0e609ca906f632b0e2dacccb2b77d22b0621f20ebece1a4835b93f6f0";
const std::string kM = "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a";
const std::string kN = "1b16b1df538ba12dc3f97edbb85caa7050d46c148134290feba80f8236c83db9";
const std::string kO = "65c74c15a686187bb6bbf9958f494fc6b80068034a659a9ad44991b08c58f2d2";
const std::string kP = "148de9c5a7a44d19e56cd9ae1a554bf67847afb0c58f6e12fa29ac7ddfca9940";
const std::string kQ = "8e35c2cd3bf6641bdb0e2050b76932cbb2e6034a0ddacc1d9bea82a6ba57f7cf";
const std::string kR = "454349e422f05297191ead13e21d3db520e5abef52055e4964b82fb213f593a1";
const std::string kT = "e3b98a4da31a127d4bde6e43033f66ba274cab0eb7eb1c70ec41402bf6273dd8";
const std::string kU1 = "ffbf226c-6d48-402d-98f1-ca3cf364845a";
const std::string kU2 = "c8bb2c54-c06c-4fbf-a1e6-1c59290fa4c0";
const std::string kU3 = "5be17a95-7307-4746-a6ec-3cb210ebc301";
const std::string kU4 = "1b5943d3-3b72-47ae-b5e6-e2a39d784d13";
const std::string kU5 = "03a5b216-fbf7-4171-b129-d2fabd7d3a89";
const std::string kStatic = "a81259cef8e959c624df1d456e5d3297";

std::string Underscored(std::string uid) {
  std::replace(uid.begin(), uid.end(), '-', '_');
  return uid;
}

// Builds the kubelet's files of tests/fixtures/identity/kubelet/node-files under a host root.
void BuildKubeletFiles(const fs::path& host) {
  std::istringstream in(ReadFixture("identity/kubelet/node-files"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto arrow = line.find(" -> ");
    if (arrow == std::string::npos) {
      WriteFile(host / line, "");
      continue;
    }
    fs::path link = host / line.substr(0, arrow);
    fs::create_directories(link.parent_path());
    fs::create_symlink(line.substr(arrow + 4), link);
  }
}

// ---------------------------------------------------------------- cgroup paths, per runtime and driver

struct Case {
  const char* fixture;
  std::string cgroup, container_id, runtime, pod_uid, qos, unit;
  bool kubernetes;
};
// Test names and messages show the fixture, not the struct's bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.fixture; }

class IdentityFromProcCgroupFixture : public ::testing::TestWithParam<Case> {};

TEST_P(IdentityFromProcCgroupFixture, Parses) {
  const Case& c = GetParam();
  Identity id = IdentityFromProcCgroup(ReadFixture(std::string("identity/proc-cgroup/") + c.fixture));
  EXPECT_EQ(id.cgroup, c.cgroup);
  EXPECT_EQ(id.container_id, c.container_id);
  EXPECT_EQ(id.runtime, c.runtime);
  EXPECT_EQ(id.pod_uid, c.pod_uid);
  EXPECT_EQ(id.qos, c.qos);
  EXPECT_EQ(id.unit, c.unit);
  EXPECT_EQ(id.kubernetes, c.kubernetes);
  EXPECT_EQ(id.cgroup_id, 0u);
  EXPECT_EQ(id.pod, "");  // names come from the kubelet's files, never from a path
  EXPECT_EQ(id.container, "");
}

const std::string kBurstableU1 =
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + Underscored(kU1) + ".slice";
const std::string kBestEffortU3 =
    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + Underscored(kU3) + ".slice";

INSTANTIATE_TEST_SUITE_P(
    Runtimes, IdentityFromProcCgroupFixture,
    ::testing::Values(
        // Kubernetes, containerd
        Case{"k8s-containerd-systemd.v2", kBurstableU1 + "/cri-containerd-" + kA + ".scope", kA, "containerd", kU1,
             "burstable", "", true},
        Case{"k8s-containerd-cgroupfs.v1", "/kubepods/burstable/pod" + kU2 + "/" + kB, kB, "", kU2, "burstable", "",
             true},
        Case{"k8s-besteffort-cgroupfs.v2", "/kubepods/besteffort/pod" + kU3 + "/" + kC, kC, "", kU3, "besteffort", "",
             true},
        Case{"k8s-guaranteed-cgroupfs.v2", "/kubepods/pod" + kU4 + "/" + kD, kD, "", kU4, "guaranteed", "", true},
        Case{"k8s-guaranteed-systemd.v2",
             "/kubepods.slice/kubepods-pod" + Underscored(kU5) + ".slice/cri-containerd-" + kE + ".scope", kE,
             "containerd", kU5, "guaranteed", "", true},
        Case{"k8s-static-pod.v2",
             "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kStatic + ".slice/cri-containerd-" +
                 kI + ".scope",
             kI, "containerd", kStatic, "burstable", "", true},
        Case{"k8s-containerd-colon.v2", kBestEffortU3 + ":cri-containerd:" + kJ, kJ, "containerd", kU3, "besteffort",
             "", true},
        // Kubernetes, CRI-O: the container, and conmon (the runtime's monitor: not a container)
        Case{"k8s-crio-systemd.v2", kBestEffortU3 + "/crio-" + kF + ".scope", kF, "cri-o", kU3, "besteffort", "", true},
        Case{"k8s-crio-conmon.v2", kBestEffortU3 + "/crio-conmon-" + kF + ".scope", "", "cri-o", kU3, "besteffort",
             "crio-conmon-" + kF + ".scope", true},
        Case{"k8s-crio-cgroupfs.v2", "/kubepods/burstable/pod" + kU2 + "/crio-" + kG, kG, "cri-o", kU2, "burstable", "",
             true},
        // Kubernetes, dockershim/cri-dockerd on a hybrid host
        Case{"k8s-docker-systemd.hybrid", kBurstableU1 + "/docker-" + kH + ".scope", kH, "docker", kU1, "burstable", "",
             true},
        // kind: the inner container of a node that is itself a docker container
        Case{"kind-nested.v2",
             "/system.slice/docker-" + kK +
                 ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                 "kubelet-kubepods-besteffort-pod" +
                 Underscored(kU5) + ".slice/cri-containerd-" + kL + ".scope",
             kL, "containerd", kU5, "besteffort", "", true},
        // a process in a pod's own slice: a pod, no container
        Case{"k8s-pod-slice.v2", kBurstableU1, "", "", kU1, "burstable",
             "kubepods-burstable-pod" + Underscored(kU1) + ".slice", true},
        // docker, nerdctl and podman without Kubernetes
        Case{"docker-systemd.v2", "/system.slice/docker-" + kM + ".scope", kM, "docker", "", "", "", false},
        Case{"docker-cgroupfs.v2", "/docker/" + kN, kN, "docker", "", "", "", false},
        Case{"docker-cgroupfs.hybrid", "/docker/" + kN, kN, "docker", "", "", "", false},
        Case{"docker-cgroupfs-v1only.hybrid", "/", kN, "docker", "", "", "", false},
        Case{"nerdctl-systemd.v2", "/system.slice/nerdctl-" + kA + ".scope", kA, "containerd", "", "", "", false},
        Case{"podman-systemd.v2", "/machine.slice/libpod-" + kO + ".scope/container", kO, "podman", "", "", "", false},
        Case{"podman-conmon.v2", "/machine.slice/libpod-conmon-" + kO + ".scope", "", "podman", "", "",
             "libpod-conmon-" + kO + ".scope", false},
        Case{"podman-rootless.v2", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kP + ".scope",
             kP, "podman", "", "", "", false},
        Case{"podman-cgroupfs.v1", "/libpod_parent/libpod-" + kP, kP, "podman", "", "", "", false},
        // host services and sessions: labelled by unit
        Case{"systemd-service.v2", "/system.slice/nginx.service", "", "", "", "", "nginx.service", false},
        Case{"systemd-service.hybrid", "/system.slice/nginx.service", "", "", "", "", "nginx.service", false},
        Case{"systemd-service.v1", "/system.slice/nginx.service", "", "", "", "", "nginx.service", false},
        Case{"containerd-service.v2", "/system.slice/containerd.service", "", "", "", "", "containerd.service", false},
        Case{"user-session.v2", "/user.slice/user-1000.slice/session-3.scope", "", "", "", "", "session-3.scope",
             false},
        Case{"user-service.v2", "/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service", "", "", "",
             "", "pipewire.service", false},
        Case{"getty.v2", "/system.slice/system-getty.slice/getty@tty1.service", "", "", "", "", "getty@tty1.service",
             false},
        Case{"init.v2", "/init.scope", "", "", "", "", "init.scope", false},
        Case{"kernel-thread.v2", "/", "", "", "", "", "", false},
        Case{"deleted.v2", "/system.slice/backup.service", "", "", "", "", "backup.service", false},
        // hybrid host whose job runner puts processes in a v1 memory cgroup only
        Case{"hybrid-v1-memory-job.hybrid", "/", "", "", "", "", "", false}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name = info.param.fixture;
      for (char& ch : name)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return name;
    });

TEST(IdentityParseCgroupPath, NormalizesThePath) {
  EXPECT_EQ(ParseCgroupPath("").cgroup, "/");
  EXPECT_EQ(ParseCgroupPath("/").cgroup, "/");
  EXPECT_EQ(ParseCgroupPath("system.slice//nginx.service/").cgroup, "/system.slice/nginx.service");
  EXPECT_EQ(ParseCgroupPath("/system.slice/foo.service (deleted)").cgroup, "/system.slice/foo.service");
}

TEST(IdentityParseCgroupPath, RejectsNearMissIds) {
  // 63 and 65 hex digits, upper case, and a 32-hex directory (a job runner's) are no container ids.
  EXPECT_EQ(ParseCgroupPath("/docker/" + kA.substr(1)).container_id, "");
  EXPECT_EQ(ParseCgroupPath("/docker/" + kA + "0").container_id, "");
  std::string upper = kA;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  EXPECT_EQ(ParseCgroupPath("/docker/" + upper).container_id, "");
  EXPECT_EQ(ParseCgroupPath("/jobs/5beac350e9a17f2d1c64e3bfef285de2").container_id, "");
  EXPECT_EQ(ParseCgroupPath("/system.slice/docker-" + kA.substr(2) + ".scope").container_id, "");
  EXPECT_EQ(ParseCgroupPath("/system.slice/docker.service").unit, "docker.service");
}

TEST(IdentityParseCgroupPath, PodDirectoriesOnlyBelowKubepods) {
  // "pod<uid>" outside a kubepods hierarchy is not a pod.
  EXPECT_EQ(ParseCgroupPath("/pod" + kU1 + "/" + kA).pod_uid, "");
  EXPECT_EQ(ParseCgroupPath("/kubepods/burstable/pod" + kU1 + "/" + kA).pod_uid, kU1);
  // A malformed uid is not a uid.
  EXPECT_EQ(ParseCgroupPath("/kubepods/burstable/pod" + kU1.substr(1) + "/" + kA).pod_uid, "");
  EXPECT_EQ(ParseCgroupPath("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podxyz.slice").pod_uid, "");
}

TEST(IdentityParseCgroupPath, QosLevelsWithoutPods) {
  Identity id = ParseCgroupPath("/kubepods.slice/kubepods-burstable.slice");
  EXPECT_TRUE(id.kubernetes);
  EXPECT_EQ(id.pod_uid, "");
  EXPECT_EQ(id.unit, "kubepods-burstable.slice");
}

TEST(IdentityParseCgroupPath, SubCgroupsOfAContainerBelongToIt) {
  Identity id = ParseCgroupPath("/system.slice/docker-" + kM + ".scope/init.scope");  // systemd inside docker
  EXPECT_EQ(id.container_id, kM);
  EXPECT_EQ(id.unit, "");
  id = ParseCgroupPath(kBurstableU1 + "/cri-containerd-" + kA + ".scope/worker");
  EXPECT_EQ(id.container_id, kA);
  EXPECT_EQ(id.pod_uid, kU1);
}

TEST(IdentityParseCgroupPath, PathsRelativeToAnotherCgroupNamespace) {
  // /proc/<pid>/cgroup read from inside a cgroup namespace shows ".." components.
  Identity id = ParseCgroupPath("/../../kubepods/besteffort/pod" + kU3 + "/" + kC);
  EXPECT_EQ(id.container_id, kC);
  EXPECT_EQ(id.pod_uid, kU3);
  EXPECT_EQ(id.qos, "besteffort");
}

TEST(IdentityParseCgroupPath, UnitOfADelegatedSubtree) {
  EXPECT_EQ(ParseCgroupPath("/system.slice/nginx.service/worker/0").unit, "nginx.service");
  EXPECT_EQ(ParseCgroupPath("/system.slice").unit, "system.slice");
  EXPECT_EQ(ParseCgroupPath("/custom/group").unit, "");
  EXPECT_EQ(ParseCgroupPath("/system.slice/.service").unit, "system.slice");
}

// ---------------------------------------------------------------- /proc/<pid>/cgroup

TEST(IdentityProcCgroup, SplitsV1AndV2Lines) {
  ProcCgroup pc = ParseProcCgroup(ReadFixture("identity/proc-cgroup/docker-cgroupfs.hybrid"));
  ASSERT_TRUE(pc.unified);
  EXPECT_EQ(*pc.unified, "/docker/" + kN);
  ASSERT_EQ(pc.v1.size(), 12u);
  EXPECT_EQ(pc.v1[0].hierarchy, 12);
  EXPECT_EQ(pc.v1[0].controllers, "hugetlb");
  EXPECT_EQ(pc.v1[4].controllers, "net_cls,net_prio");
  EXPECT_EQ(pc.v1[11].controllers, "name=systemd");
  EXPECT_EQ(pc.v1[11].path, "/docker/" + kN);
}

TEST(IdentityProcCgroup, PureV1HasNoUnifiedLine) {
  ProcCgroup pc = ParseProcCgroup(ReadFixture("identity/proc-cgroup/k8s-containerd-cgroupfs.v1"));
  EXPECT_FALSE(pc.unified);
  EXPECT_EQ(pc.v1.size(), 12u);
}

TEST(IdentityProcCgroup, SkipsMalformedLinesAndKeepsColonsInPaths) {
  ProcCgroup pc = ParseProcCgroup("garbage\nx:memory:/a\n4:memory:\n\n0::/a:b:c\r\n");
  ASSERT_TRUE(pc.unified);
  EXPECT_EQ(*pc.unified, "/a:b:c");
  EXPECT_TRUE(pc.v1.empty());
  EXPECT_EQ(IdentityFromProcCgroup("").cgroup, "");
}

TEST(IdentityProcCgroup, V1OnlyHostUsesTheSystemdHierarchyForUnits) {
  Identity id = IdentityFromProcCgroup("3:memory:/system.slice\n1:name=systemd:/system.slice/cron.service\n");
  EXPECT_EQ(id.cgroup, "/system.slice/cron.service");
  EXPECT_EQ(id.unit, "cron.service");
}

// ---------------------------------------------------------------- kubelet file names

TEST(KubeletNames, PodLogDirectories) {
  auto d = ParsePodLogDirName("kube-system_coredns-5d78c9869d-q8xkz_" + kU1);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pod_namespace, "kube-system");
  EXPECT_EQ(d->pod, "coredns-5d78c9869d-q8xkz");
  EXPECT_EQ(d->pod_uid, kU1);

  // Dots in pod names (static pods are named after the node), a static pod's hash as uid.
  d = ParsePodLogDirName("kube-system_etcd-node-1.example.com_" + kStatic);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pod, "etcd-node-1.example.com");
  EXPECT_EQ(d->pod_uid, kStatic);

  // Names that look like the other fields.
  d = ParsePodLogDirName("pod_namespace_" + kU2);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pod_namespace, "pod");
  EXPECT_EQ(d->pod, "namespace");
  d = ParsePodLogDirName("a_b_" + kU2);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pod, "b");

  EXPECT_FALSE(ParsePodLogDirName(kU1));                                 // kubelet < 1.14 layout: no names
  EXPECT_FALSE(ParsePodLogDirName("kube-system_coredns_" + kU1 + "_x"));  // too many fields
  EXPECT_FALSE(ParsePodLogDirName("kube-system_coredns"));
  EXPECT_FALSE(ParsePodLogDirName("_coredns_" + kU1));
  EXPECT_FALSE(ParsePodLogDirName("kube-system_CoreDNS_" + kU1));  // not a Kubernetes name
  EXPECT_FALSE(ParsePodLogDirName("kube-system_coredns_not-a-uid"));
  EXPECT_FALSE(ParsePodLogDirName("stray-directory"));
}

TEST(KubeletNames, ContainerLogLinks) {
  auto c = ParseContainerLogName("coredns-5d78c9869d-q8xkz_kube-system_coredns-" + kA + ".log");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pod, "coredns-5d78c9869d-q8xkz");
  EXPECT_EQ(c->pod_namespace, "kube-system");
  EXPECT_EQ(c->container, "coredns");
  EXPECT_EQ(c->container_id, kA);

  // Container names with dashes (only the last '-' separates the id), dotted pod names.
  c = ParseContainerLogName("prometheus-k8s-0_monitoring_init-config-reloader-" + kQ + ".log");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->container, "init-config-reloader");
  c = ParseContainerLogName("api.v2-6d4cf56db6-x7k2p_team-a_istio-proxy-" + kT + ".log");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pod, "api.v2-6d4cf56db6-x7k2p");
  EXPECT_EQ(c->pod_namespace, "team-a");
  EXPECT_EQ(c->container, "istio-proxy");
  // A container named like a hex id.
  c = ParseContainerLogName("p_ns_" + kB.substr(0, 12) + "-" + kB + ".log");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->container, kB.substr(0, 12));
  EXPECT_EQ(c->container_id, kB);

  EXPECT_FALSE(ParseContainerLogName("coredns_kube-system_coredns-" + kA));           // no .log
  EXPECT_FALSE(ParseContainerLogName("coredns_kube-system_coredns-" + kA + ".log.1"));
  EXPECT_FALSE(ParseContainerLogName("coredns_kube-system_" + kA + ".log"));          // no container name
  EXPECT_FALSE(ParseContainerLogName("coredns_kube-system_coredns-" + kA.substr(1) + ".log"));
  EXPECT_FALSE(ParseContainerLogName("coredns_kube-system_x_coredns-" + kA + ".log"));  // too many fields
  EXPECT_FALSE(ParseContainerLogName("coredns-" + kA + ".log"));
  EXPECT_FALSE(ParseContainerLogName("not-a-kubelet-file.txt"));
}

// ---------------------------------------------------------------- kubelet files under a host root

TEST(KubeletFiles, IndexesPodsByUidAndContainersById) {
  TempDir host;
  BuildKubeletFiles(host.path());
  KubeletFiles kubelet(host.path().string(), seconds(0), seconds(0));

  auto pod = kubelet.FindPod(kU2);
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->pod, "prometheus-k8s-0");
  EXPECT_EQ(pod->pod_namespace, "monitoring");
  EXPECT_EQ(pod->containers, (std::vector<std::string>{"config-reloader", "init-config-reloader", "prometheus"}));
  pod = kubelet.FindPod(kStatic);
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->pod, "etcd-node-1.example.com");

  auto c = kubelet.FindContainer(kQ);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pod, "prometheus-k8s-0");
  EXPECT_EQ(c->container, "init-config-reloader");
  EXPECT_EQ(c->pod_uid, kU2);  // from the link's target
  c = kubelet.FindContainer(kT);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pod, "api.v2-6d4cf56db6-x7k2p");
  EXPECT_EQ(c->pod_namespace, "team-a");
  EXPECT_EQ(c->container, "istio-proxy");
  EXPECT_EQ(c->pod_uid, kU4);

  EXPECT_FALSE(kubelet.FindContainer(kD));  // no link for it
  EXPECT_FALSE(kubelet.FindPod(kU5));
}

TEST(KubeletFiles, UidFromTheOnlyPodOfThatNameWhenTheLinkIsNotReadable) {
  TempDir host;
  WriteFile(host.path() / "var/log/pods" / ("default_web_" + kU1) / "app/0.log", "");
  WriteFile(host.path() / "var/log/containers" / ("web_default_app-" + kA + ".log"), "a file, not a link");
  KubeletFiles kubelet(host.path().string(), seconds(0), seconds(0));
  auto c = kubelet.FindContainer(kA);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->container, "app");
  EXPECT_EQ(c->pod_uid, kU1);
}

TEST(KubeletFiles, RefreshesOnlyOnMissesAndAtMostOncePerInterval) {
  TempDir host;
  BuildKubeletFiles(host.path());
  FakeClock clock;
  KubeletFiles kubelet(host.path().string(), seconds(10), seconds(60), clock.Fn());

  ASSERT_TRUE(kubelet.FindPod(kU1));
  EXPECT_EQ(kubelet.refreshes(), 1u);
  ASSERT_TRUE(kubelet.FindPod(kU2));  // hit: no re-read
  EXPECT_EQ(kubelet.refreshes(), 1u);

  // A new pod: not seen until the interval has passed, then found by the next miss.
  WriteFile(host.path() / "var/log/pods" / ("default_new-pod_" + kU5) / "main/0.log", "");
  EXPECT_FALSE(kubelet.FindPod(kU5));
  EXPECT_EQ(kubelet.refreshes(), 1u);
  clock.Advance(seconds(10));
  auto pod = kubelet.FindPod(kU5);
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->pod, "new-pod");
  EXPECT_EQ(kubelet.refreshes(), 2u);

  // A deleted pod keeps its names for the retention time (counted from the re-read that missed it).
  fs::remove_all(host.path() / "var/log/pods" / ("default_new-pod_" + kU5));
  clock.Advance(seconds(10));
  EXPECT_FALSE(kubelet.FindPod("00000000-0000-0000-0000-000000000000"));  // a miss makes it re-read
  EXPECT_EQ(kubelet.refreshes(), 3u);
  EXPECT_TRUE(kubelet.FindPod(kU5));
  clock.Advance(seconds(59));
  kubelet.Refresh();
  EXPECT_TRUE(kubelet.FindPod(kU5));
  clock.Advance(seconds(1));
  kubelet.Refresh();
  EXPECT_FALSE(kubelet.FindPod(kU5));
}

TEST(KubeletFiles, NoDirectoriesNoEntries) {
  TempDir host;
  KubeletFiles kubelet(host.path().string(), seconds(0), seconds(0));
  EXPECT_FALSE(kubelet.FindPod(kU1));
  EXPECT_FALSE(kubelet.FindContainer(kA));
}

// ---------------------------------------------------------------- finding the cgroup v2 tree of a host

TEST(IdentityHostCgroupRoot, FromTheHostsMountinfo) {
  TempDir host;
  WriteFile(host.path() / "proc/1/mountinfo", ReadFixture("proc/mountinfo.v2"));
  fs::create_directories(host.path() / "sys/fs/cgroup");
  EXPECT_EQ(FindHostCgroup2Root(host.path().string()), (host.path() / "sys/fs/cgroup").string());
}

TEST(IdentityHostCgroupRoot, HybridHost) {
  TempDir host;
  WriteFile(host.path() / "proc/1/mountinfo", ReadFixture("proc/mountinfo.hybrid"));
  fs::create_directories(host.path() / "sys/fs/cgroup/unified");
  EXPECT_EQ(FindHostCgroup2Root(host.path().string() + "/"), (host.path() / "sys/fs/cgroup/unified").string());
}

TEST(IdentityHostCgroupRoot, NoneWithoutMountinfoOrCgroup2) {
  TempDir host;
  fs::create_directories(host.path() / "sys/fs/cgroup");  // a plain directory is no cgroup2 file system
  EXPECT_EQ(FindHostCgroup2Root(host.path().string()), "");
}

// ---------------------------------------------------------------- CgroupPaths extensions used here

TEST(CgroupPathsLookup, TellsDeadFromAliveAndFollowsAFakeClock) {
  TempDir root;
  fs::create_directories(root.path() / "job");
  uint64_t id = Inode(root.path() / "job");
  FakeClock clock;
  CgroupPaths paths(root.path().string(), seconds(1), seconds(30), clock.Fn());
  auto e = paths.Lookup(id);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->path, "/job");
  EXPECT_TRUE(e->alive);

  fs::remove(root.path() / "job");
  EXPECT_TRUE(paths.Lookup(id)->alive);  // no rescan within the interval
  clock.Advance(seconds(1));
  e = paths.Lookup(id);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->alive);
  clock.Advance(seconds(29));
  EXPECT_TRUE(paths.Lookup(id));
  clock.Advance(seconds(1));
  EXPECT_FALSE(paths.Lookup(id));
  EXPECT_FALSE(paths.Known(id));
  EXPECT_EQ(paths.unresolved(), 0u);  // Lookup does not count
  EXPECT_EQ(paths.Path(id), std::nullopt);
  EXPECT_EQ(paths.unresolved(), 1u);  // Path still does
}

// ---------------------------------------------------------------- the resolver, end to end

// A fake node: host root with the kubelet's files, /proc/1/mountinfo of a pure v2 host and a cgroup v2
// tree (directories) at sys/fs/cgroup with the fixtures' paths.
class IdentityResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BuildKubeletFiles(host_.path());
    WriteFile(host_.path() / "proc/1/mountinfo", ReadFixture("proc/mountinfo.v2"));
    for (const char* f : {"k8s-containerd-systemd.v2", "k8s-containerd-cgroupfs.v1", "k8s-crio-systemd.v2",
                          "k8s-crio-conmon.v2", "k8s-static-pod.v2", "k8s-guaranteed-cgroupfs.v2",
                          "k8s-pod-slice.v2", "k8s-guaranteed-systemd.v2", "docker-systemd.v2", "systemd-service.v2",
                          "user-session.v2"}) {
      Identity id = IdentityFromProcCgroup(ReadFixture(std::string("identity/proc-cgroup/") + f));
      fs::create_directories(Cgroup(id.cgroup));
    }
    // The prometheus pod's other containers (cgroupfs driver).
    fs::create_directories(Cgroup("/kubepods/burstable/pod" + kU2 + "/" + kQ));
  }
  fs::path Cgroup(const std::string& path) const {
    return host_.path() / "sys/fs/cgroup" / fs::path(path).relative_path();
  }
  uint64_t Id(const std::string& path) const { return Inode(Cgroup(path)); }
  IdentityOptions Options() {
    IdentityOptions o;
    o.host_root = host_.path().string();
    o.rescan_interval = seconds(1);
    o.retention = seconds(60);
    o.kubelet_refresh_interval = seconds(5);
    o.forget_after = seconds(600);
    o.clock = clock_.Fn();
    return o;
  }

  TempDir host_;
  FakeClock clock_;
};

TEST_F(IdentityResolverTest, ResolvesCgroupIdsToPodsContainersAndUnits) {
  IdentityResolver resolver(Options());
  EXPECT_EQ(resolver.cgroup_root(), (host_.path() / "sys/fs/cgroup").string());

  std::string coredns = kBurstableU1 + "/cri-containerd-" + kA + ".scope";
  auto r = resolver.Resolve(Id(coredns));
  EXPECT_EQ(r.status, IdentityResolver::Status::kLive);
  EXPECT_EQ(r.identity.cgroup_id, Id(coredns));
  EXPECT_EQ(r.identity.cgroup, coredns);
  EXPECT_EQ(r.identity.container_id, kA);
  EXPECT_EQ(r.identity.runtime, "containerd");
  EXPECT_EQ(r.identity.pod_uid, kU1);
  EXPECT_EQ(r.identity.pod, "coredns-5d78c9869d-q8xkz");
  EXPECT_EQ(r.identity.pod_namespace, "kube-system");
  EXPECT_EQ(r.identity.container, "coredns");
  EXPECT_EQ(r.identity.qos, "burstable");

  r = resolver.Resolve(Id("/kubepods/burstable/pod" + kU2 + "/" + kB));  // cgroupfs driver
  EXPECT_EQ(r.identity.pod, "prometheus-k8s-0");
  EXPECT_EQ(r.identity.pod_namespace, "monitoring");
  EXPECT_EQ(r.identity.container, "prometheus");
  r = resolver.Resolve(Id("/kubepods/burstable/pod" + kU2 + "/" + kQ));
  EXPECT_EQ(r.identity.container, "init-config-reloader");

  r = resolver.Resolve(Id(kBestEffortU3 + "/crio-" + kF + ".scope"));  // CRI-O
  EXPECT_EQ(r.identity.runtime, "cri-o");
  EXPECT_EQ(r.identity.pod, "busybox-sleep");
  EXPECT_EQ(r.identity.pod_namespace, "default");
  EXPECT_EQ(r.identity.container, "sleeper");

  r = resolver.Resolve(Id(kBestEffortU3 + "/crio-conmon-" + kF + ".scope"));  // conmon: the pod, no container
  EXPECT_EQ(r.identity.container_id, "");
  EXPECT_EQ(r.identity.pod, "busybox-sleep");
  EXPECT_EQ(r.identity.container, "");

  r = resolver.Resolve(Id("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kStatic +
                          ".slice/cri-containerd-" + kI + ".scope"));  // static pod
  EXPECT_EQ(r.identity.pod, "etcd-node-1.example.com");
  EXPECT_EQ(r.identity.container, "etcd");

  // No /var/log/containers link for this container: pod and namespace from /var/log/pods, no name.
  r = resolver.Resolve(Id("/kubepods/pod" + kU4 + "/" + kD));
  EXPECT_EQ(r.identity.pod, "api.v2-6d4cf56db6-x7k2p");
  EXPECT_EQ(r.identity.pod_namespace, "team-a");
  EXPECT_EQ(r.identity.container, "");
  EXPECT_EQ(r.identity.qos, "guaranteed");

  // A pod the kubelet's files do not know: uid only.
  r = resolver.Resolve(
      Id("/kubepods.slice/kubepods-pod" + Underscored(kU5) + ".slice/cri-containerd-" + kE + ".scope"));
  EXPECT_EQ(r.status, IdentityResolver::Status::kLive);
  EXPECT_EQ(r.identity.pod_uid, kU5);
  EXPECT_EQ(r.identity.pod, "");

  r = resolver.Resolve(Id(kBurstableU1));  // the pod's own slice
  EXPECT_EQ(r.identity.container_id, "");
  EXPECT_EQ(r.identity.pod, "coredns-5d78c9869d-q8xkz");

  r = resolver.Resolve(Id("/system.slice/docker-" + kM + ".scope"));  // docker, no Kubernetes
  EXPECT_EQ(r.identity.container_id, kM);
  EXPECT_EQ(r.identity.runtime, "docker");
  EXPECT_EQ(r.identity.pod, "");

  r = resolver.Resolve(Id("/system.slice/nginx.service"));
  EXPECT_EQ(r.identity.unit, "nginx.service");
  EXPECT_EQ(r.identity.container_id, "");
  r = resolver.Resolve(Id("/user.slice/user-1000.slice/session-3.scope"));
  EXPECT_EQ(r.identity.unit, "session-3.scope");
  r = resolver.Resolve(Id("/"));
  EXPECT_EQ(r.identity.cgroup, "/");

  EXPECT_EQ(resolver.unresolved(), 0u);
}

TEST_F(IdentityResolverTest, ResolvesPidsFromTheHostsProc) {
  IdentityResolver resolver(Options());
  std::string coredns = kBurstableU1 + "/cri-containerd-" + kA + ".scope";
  WriteFile(host_.path() / "proc/4242/cgroup", ReadFixture("identity/proc-cgroup/k8s-containerd-systemd.v2"));
  WriteFile(host_.path() / "proc/4243/cgroup", ReadFixture("identity/proc-cgroup/systemd-service.hybrid"));
  WriteFile(host_.path() / "proc/4244/cgroup", ReadFixture("identity/proc-cgroup/k8s-containerd-cgroupfs.v1"));

  auto r = resolver.ResolvePid(4242);
  EXPECT_EQ(r.status, IdentityResolver::Status::kLive);
  EXPECT_EQ(r.identity.cgroup_id, Id(coredns));
  EXPECT_EQ(r.identity.container, "coredns");
  EXPECT_EQ(r.identity.pod_namespace, "kube-system");
  // Same answer as through the cgroup id.
  EXPECT_EQ(resolver.Resolve(Id(coredns)).identity, r.identity);

  r = resolver.ResolvePid(4243);
  EXPECT_EQ(r.identity.cgroup_id, Id("/system.slice/nginx.service"));
  EXPECT_EQ(r.identity.unit, "nginx.service");

  r = resolver.ResolvePid(4244);  // v1 only: no v2 path, so no cgroup id, but names all the same
  EXPECT_EQ(r.identity.cgroup_id, 0u);
  EXPECT_EQ(r.identity.container, "prometheus");

  EXPECT_EQ(resolver.ResolvePid(999999).status, IdentityResolver::Status::kUnknown);
  EXPECT_EQ(resolver.unresolved(), 0u);
}

TEST_F(IdentityResolverTest, DeadCgroupKeepsItsLabelsForTheRetentionThenGoes) {
  IdentityResolver resolver(Options());
  std::string path = kBestEffortU3 + "/crio-" + kF + ".scope";
  uint64_t id = Id(path);
  ASSERT_EQ(resolver.Resolve(id).status, IdentityResolver::Status::kLive);

  // The container and its pod go, and so do the kubelet's files.
  fs::remove(Cgroup(path));
  fs::remove_all(host_.path() / "var/log/containers" / ("busybox-sleep_default_sleeper-" + kF + ".log"));
  fs::remove_all(host_.path() / "var/log/pods" / ("default_busybox-sleep_" + kU3));
  clock_.Advance(seconds(1));
  auto r = resolver.Resolve(id);
  EXPECT_EQ(r.status, IdentityResolver::Status::kDead);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.identity.pod, "busybox-sleep");
  EXPECT_EQ(r.identity.container, "sleeper");

  clock_.Advance(seconds(59));
  EXPECT_EQ(resolver.Resolve(id).status, IdentityResolver::Status::kDead);
  clock_.Advance(seconds(1));
  r = resolver.Resolve(id);
  EXPECT_EQ(r.status, IdentityResolver::Status::kGone);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.identity, Identity{});
  EXPECT_EQ(resolver.Resolve(id).status, IdentityResolver::Status::kGone);  // still recognized: stale BPF entries
  EXPECT_EQ(resolver.unresolved(), 0u);

  clock_.Advance(seconds(600));  // forgotten after forget_after
  EXPECT_EQ(resolver.Resolve(id).status, IdentityResolver::Status::kUnknown);
  EXPECT_EQ(resolver.unresolved(), 1u);
}

TEST_F(IdentityResolverTest, ZeroRetentionForgetsADeadCgroupAtTheNextWalk) {
  IdentityOptions o = Options();
  o.retention = seconds(0);
  o.rescan_interval = seconds(0);
  o.clock = {};  // the real clock: nothing here waits
  IdentityResolver resolver(o);
  uint64_t id = Id("/system.slice/nginx.service");
  EXPECT_EQ(resolver.Resolve(id).status, IdentityResolver::Status::kLive);
  fs::remove(Cgroup("/system.slice/nginx.service"));
  EXPECT_EQ(resolver.Resolve(id).status, IdentityResolver::Status::kGone);
  EXPECT_EQ(resolver.cached(), 0u);
  EXPECT_EQ(resolver.unresolved(), 0u);
}

TEST_F(IdentityResolverTest, CachedIdentitiesOfGoneCgroupsArePrunedWithoutBeingLookedUp) {
  IdentityResolver resolver(Options());
  uint64_t nginx = Id("/system.slice/nginx.service");
  uint64_t session = Id("/user.slice/user-1000.slice/session-3.scope");
  resolver.Resolve(nginx);
  resolver.Resolve(session);
  EXPECT_EQ(resolver.cached(), 2u);
  fs::remove(Cgroup("/user.slice/user-1000.slice/session-3.scope"));
  clock_.Advance(seconds(61));
  resolver.Resolve(nginx);  // walks (session-3 dies), prunes
  clock_.Advance(seconds(61));
  resolver.Resolve(nginx);  // walks (session-3's retention ends), prunes
  EXPECT_EQ(resolver.cached(), 1u);
  EXPECT_EQ(resolver.Resolve(session).status, IdentityResolver::Status::kGone);
}

TEST_F(IdentityResolverTest, UnknownIdsAreCountedOnceAndOnlyAfterAWalkThatCouldHaveSeenThem) {
  IdentityResolver resolver(Options());
  uint64_t nginx = Id("/system.slice/nginx.service");
  resolver.Resolve(nginx);  // first walk, at t0

  // A cgroup born after that walk: unknown for now, but not counted (no walk since its first lookup).
  fs::create_directories(Cgroup("/system.slice/late.service"));
  uint64_t late = Id("/system.slice/late.service");
  clock_.now += std::chrono::milliseconds(500);
  EXPECT_EQ(resolver.Resolve(late).status, IdentityResolver::Status::kUnknown);
  EXPECT_EQ(resolver.unresolved(), 0u);
  clock_.now += std::chrono::milliseconds(500);
  EXPECT_EQ(resolver.Resolve(late).status, IdentityResolver::Status::kLive);
  EXPECT_EQ(resolver.unresolved(), 0u);

  // An id no walk finds: counted once, however often it is looked up.
  const uint64_t bogus = 0xdeadbeefcafeULL;
  EXPECT_EQ(resolver.Resolve(bogus).status, IdentityResolver::Status::kUnknown);  // this lookup walked
  EXPECT_EQ(resolver.unresolved(), 1u);
  for (int i = 0; i < 5; i++) {
    clock_.Advance(seconds(1));
    EXPECT_EQ(resolver.Resolve(bogus).status, IdentityResolver::Status::kUnknown);
  }
  EXPECT_EQ(resolver.Resolve(bogus + 1).status, IdentityResolver::Status::kUnknown);
  EXPECT_EQ(resolver.unresolved(), 2u);
}

TEST_F(IdentityResolverTest, KubeletNamesThatAppearLaterAreFilledIn) {
  IdentityResolver resolver(Options());
  fs::path link = host_.path() / "var/log/containers" / ("coredns-5d78c9869d-q8xkz_kube-system_coredns-" + kA + ".log");
  std::string target = fs::read_symlink(link).string();
  fs::remove(link);
  uint64_t id = Id(kBurstableU1 + "/cri-containerd-" + kA + ".scope");
  auto r = resolver.Resolve(id);
  EXPECT_EQ(r.identity.pod, "coredns-5d78c9869d-q8xkz");  // from the pod directory
  EXPECT_EQ(r.identity.container, "");

  fs::create_symlink(target, link);  // the kubelet writes the link
  r = resolver.Resolve(id);
  EXPECT_EQ(r.identity.container, "");  // not re-read before the refresh interval
  clock_.Advance(seconds(5));
  r = resolver.Resolve(id);
  EXPECT_EQ(r.identity.container, "coredns");
}

TEST_F(IdentityResolverTest, ExplicitCgroupRootAndNoCgroupV2) {
  fs::remove(host_.path() / "proc/1/mountinfo");  // nothing to discover: the root is given
  IdentityOptions o = Options();
  o.cgroup_root = (host_.path() / "sys/fs/cgroup").string();
  IdentityResolver resolver(o);
  EXPECT_EQ(resolver.cgroup_root(), o.cgroup_root);
  auto r = resolver.Resolve(Id("/kubepods/burstable/pod" + kU2 + "/" + kB));
  EXPECT_EQ(r.identity.container, "prometheus");

  TempDir empty_host;
  o = Options();
  o.host_root = empty_host.path().string();
  IdentityResolver none(o);
  EXPECT_EQ(none.cgroup_root(), "");
  EXPECT_EQ(none.Resolve(12345).status, IdentityResolver::Status::kUnknown);
  EXPECT_EQ(none.unresolved(), 1u);
}

// This process on this machine, through the real /proc and cgroup tree.
TEST(IdentityResolverOnThisHost, ResolvesItself) {
  IdentityResolver resolver;
  if (resolver.cgroup_root().empty()) GTEST_SKIP() << "no cgroup v2 hierarchy";
  auto r = resolver.ResolvePid(getpid());
  ASSERT_EQ(r.status, IdentityResolver::Status::kLive);
  std::ifstream in("/proc/self/cgroup");
  std::stringstream s;
  s << in.rdbuf();
  ASSERT_TRUE(ParseProcCgroup(s.str()).unified);
  EXPECT_EQ(r.identity.cgroup, ParseCgroupPath(*ParseProcCgroup(s.str()).unified).cgroup);
  ASSERT_NE(r.identity.cgroup_id, 0u);
  auto by_id = resolver.Resolve(r.identity.cgroup_id);
  EXPECT_EQ(by_id.status, IdentityResolver::Status::kLive);
  EXPECT_EQ(by_id.identity.cgroup, r.identity.cgroup);
}

// Real cgroup v2 directories with a kubepods-style path on this machine (the controller-less
// /sys/fs/cgroup/unified of this hybrid host, or /sys/fs/cgroup on a pure v2 one), a real process in
// the container's cgroup, and the kernel's own cgroup id (the file handle of the directory, which is
// what bpf_get_current_cgroup_id returns) compared with the inode CgroupPaths uses. Needs root.
TEST(IdentityResolverOnThisHost, RealKubepodsCgroupWithAProcess) {
  IdentityOptions o;
  o.rescan_interval = seconds(0);
  o.retention = seconds(0);
  IdentityResolver resolver(o);
  if (resolver.cgroup_root().empty()) GTEST_SKIP() << "no cgroup v2 hierarchy";
  std::string top = "/scry-identity-test-" + std::to_string(getpid());
  std::string path = top + kBestEffortU3 + "/cri-containerd-" + kA + ".scope";
  fs::path dir = fs::path(resolver.cgroup_root()) / fs::path(path).relative_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) GTEST_SKIP() << "cannot create cgroups here: " << ec.message();
  auto cleanup = [&] {
    for (int i = 0; i < 100; i++) {
      fs::path d = dir;
      bool ok = true;
      while (d.string().size() > resolver.cgroup_root().size() + 1 && ok) {
        ok = rmdir(d.c_str()) == 0 || errno == ENOENT;
        if (d.filename() == fs::path(top).filename()) break;
        d = d.parent_path();
      }
      if (ok) return;
      usleep(10000);
    }
  };

  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(child, 0);
  bool moved = static_cast<bool>(std::ofstream(dir / "cgroup.procs") << child << std::endl);

  struct {
    file_handle handle;
    uint64_t id;
  } fh{};
  fh.handle.handle_bytes = sizeof(uint64_t);
  int mount_id;
  bool have_handle = name_to_handle_at(AT_FDCWD, dir.c_str(), &fh.handle, &mount_id, 0) == 0;

  auto by_pid = resolver.ResolvePid(child);
  auto by_id = resolver.Resolve(Inode(dir));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  if (!moved) {
    cleanup();
    GTEST_SKIP() << "cannot move a process into a cgroup here";
  }

  EXPECT_EQ(by_pid.status, IdentityResolver::Status::kLive);
  EXPECT_EQ(by_pid.identity.cgroup, path);
  EXPECT_EQ(by_pid.identity.container_id, kA);
  EXPECT_EQ(by_pid.identity.pod_uid, kU3);
  EXPECT_EQ(by_pid.identity.cgroup_id, Inode(dir));
  EXPECT_TRUE(have_handle) << "name_to_handle_at on a cgroup2 directory: " << strerror(errno);
  EXPECT_EQ(fh.id, Inode(dir)) << "cgroup id (file handle) and directory inode differ";
  EXPECT_EQ(by_id.status, IdentityResolver::Status::kLive);
  EXPECT_EQ(by_id.identity.cgroup, path);
  EXPECT_EQ(by_id.identity.container_id, kA);

  uint64_t id = Inode(dir);
  cleanup();
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_EQ(resolver.Resolve(id).status, IdentityResolver::Status::kGone);  // zero retention
}

// ---------------------------------------------------------------- labels

std::map<std::string, std::string> AsMap(const Labels& labels) {
  std::map<std::string, std::string> m;
  for (const auto& l : labels) m[l.name] = l.value;
  return m;
}

TEST(IdentityLabels, FiveLabelsInAFixedOrder) {
  Labels labels = IdentityLabels(Identity{});
  ASSERT_EQ(labels.size(), 5u);
  for (size_t i = 0; i < labels.size(); i++) EXPECT_EQ(labels[i].name, kIdentityLabelNames[i]);
  for (const auto& l : labels) EXPECT_EQ(l.value, "");
}

TEST(IdentityLabels, ContainerHasNoCgroupLabel) {
  Identity id = ParseCgroupPath(kBurstableU1 + "/cri-containerd-" + kA + ".scope");
  id.pod = "coredns-5d78c9869d-q8xkz";
  id.pod_namespace = "kube-system";
  id.container = "coredns";
  EXPECT_EQ(AsMap(IdentityLabels(id)), (std::map<std::string, std::string>{{"container_id", kA},
                                                                           {"container", "coredns"},
                                                                           {"pod", "coredns-5d78c9869d-q8xkz"},
                                                                           {"namespace", "kube-system"},
                                                                           {"cgroup", ""}}));
}

TEST(IdentityLabels, ContainerOutsideKubernetes) {
  Identity id = ParseCgroupPath("/system.slice/docker-" + kM + ".scope");
  EXPECT_EQ(AsMap(IdentityLabels(id)), (std::map<std::string, std::string>{
                                           {"container_id", kM}, {"container", ""}, {"pod", ""}, {"namespace", ""},
                                           {"cgroup", ""}}));
}

TEST(IdentityLabels, ServicesSessionsAndPodSlicesAreLabelledByCgroup) {
  auto labels = AsMap(IdentityLabels(ParseCgroupPath("/system.slice/nginx.service")));
  EXPECT_EQ(labels["cgroup"], "/system.slice/nginx.service");
  EXPECT_EQ(labels["container_id"], "");
  EXPECT_EQ(AsMap(IdentityLabels(ParseCgroupPath("/user.slice/user-1000.slice/session-3.scope")))["cgroup"],
            "/user.slice/user-1000.slice/session-3.scope");
  EXPECT_EQ(AsMap(IdentityLabels(ParseCgroupPath("/")))["cgroup"], "/");

  Identity pod = ParseCgroupPath(kBurstableU1);
  pod.pod = "coredns-5d78c9869d-q8xkz";
  pod.pod_namespace = "kube-system";
  labels = AsMap(IdentityLabels(pod));
  EXPECT_EQ(labels["cgroup"], kBurstableU1);
  EXPECT_EQ(labels["pod"], "coredns-5d78c9869d-q8xkz");
  EXPECT_EQ(labels["container"], "");
}

}  // namespace
}  // namespace scry
