// Pod names from the kubelet's /pods answer (a PodList fixture), and the PodNames cache over a source.
#include "scry/kubelet_api.h"

#include <gtest/gtest.h>

#include "fixture.h"
#include "scry/errors.h"

namespace scry {
namespace {

using namespace scry::test;
using std::chrono::seconds;

const std::string kApp = "8e35c2cd3bf6641bdb0e2050b76932cbb2e6034a0ddacc1d9bea82a6ba57f7cf";
const std::string kMigrate = "1f0e5b7c2d9a4e6b8c3f1a2d5e7b9c0d4f6a8b1c3e5d7f9a0b2c4d6e8f1a3b5c";
const std::string kEnvoy = "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8";
const std::string kDebugger = "3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d";
const std::string kEphemeral = "6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c";

TEST(ParsePodList, PodsByUidAndStartedContainersById) {
  PodListing l = ParsePodList(ReadFixture("kubelet/pods.json"));
  // the item without a name and the item that is not an object are left out
  ASSERT_EQ(l.pods.size(), 4u);
  const auto& cart = l.pods.at("5be17a95-7307-4746-a6ec-3cb210ebc301");
  EXPECT_EQ(cart.pod, "cart-7d4b9c-x2k8p");
  EXPECT_EQ(cart.pod_namespace, "shop");
  EXPECT_EQ(cart.containers, (std::vector<std::string>{"app", "envoy", "migrate"}));
  // a pod whose container has not started: named, but no container id to map
  EXPECT_EQ(l.pods.at("0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f").pod, "db-0");
  EXPECT_EQ(cart.addresses, (std::vector<std::string>{"10.244.3.17", "fd00:10:244:3::11"}));
  EXPECT_FALSE(cart.host_network);
  const auto& proxy = l.pods.at("9f8e7d6c-5b4a-4392-8180-7f6e5d4c3b2a");
  EXPECT_TRUE(proxy.host_network);
  EXPECT_EQ(proxy.addresses, (std::vector<std::string>{"192.168.7.3"}));  // podIP alone, no podIPs
  EXPECT_TRUE(l.pods.at("0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f").addresses.empty());  // pending: no IP yet
  // static pods have 32-hex uids
  EXPECT_EQ(l.pods.at("b3c1a0f2e4d6c8b9a7f5e3d1c2b4a6f8").pod, "etcd-node-3");

  // containers, init containers and ephemeral containers, runtime prefix dropped; "cri-o://DEADBEEF" is
  // not a container id
  ASSERT_EQ(l.containers.size(), 5u);
  const auto& app = l.containers.at(kApp);
  EXPECT_EQ(app.container, "app");
  EXPECT_EQ(app.pod, "cart-7d4b9c-x2k8p");
  EXPECT_EQ(app.pod_namespace, "shop");
  EXPECT_EQ(app.pod_uid, "5be17a95-7307-4746-a6ec-3cb210ebc301");
  EXPECT_EQ(app.container_id, kApp);
  EXPECT_EQ(l.containers.at(kMigrate).container, "migrate");
  EXPECT_EQ(l.containers.at(kEnvoy).container, "envoy");
  EXPECT_EQ(l.containers.at(kDebugger).pod, "kube-proxy-lz7q2");
  EXPECT_EQ(l.containers.at(kEphemeral).container, "debug-x1");
}

TEST(ParsePodList, EmptyNodesAndBadAnswers) {
  EXPECT_TRUE(ParsePodList(R"({"kind":"PodList","items":[]})").pods.empty());
  EXPECT_TRUE(ParsePodList(R"({"kind":"PodList","metadata":{},"items":null})").pods.empty());
  EXPECT_THROW(ParsePodList("Unauthorized"), std::runtime_error);
  EXPECT_THROW(ParsePodList(R"({"kind":"Status","status":"Failure"})"), std::runtime_error);
  EXPECT_THROW(ParsePodList("[]"), std::runtime_error);
  EXPECT_THROW(ParsePodList(R"({"items":{}})"), std::runtime_error);
  EXPECT_THROW(ParsePodList(R"({"items":[)"), std::runtime_error);
}

TEST(KubeletApi, OnlyHttpUrls) {
  for (const char* url : {"127.0.0.1:10250/pods", "ftp://127.0.0.1/pods", "file:///etc/passwd", "/pods"}) {
    KubeletApiOptions options;
    options.url = url;
    EXPECT_THROW(KubeletApi api(options), UsageError) << url;
  }
}

TEST(PodNames, AFailedListingKeepsWhatIsKnownAndRetentionStillApplies) {
  FakeClock clock;
  std::optional<PodListing> answer = ParsePodList(ReadFixture("kubelet/pods.json"));
  PodNames names([&] { return answer; }, seconds(5), seconds(60), clock.Fn());
  ASSERT_TRUE(names.FindContainer(kApp));
  EXPECT_EQ(names.refreshes(), 1u);

  // The source fails (kubelet unreachable): nothing is forgotten, however long it lasts.
  answer.reset();
  clock.Advance(seconds(600));
  EXPECT_FALSE(names.FindContainer(std::string(64, 'f')));  // a miss lists again
  EXPECT_EQ(names.refreshes(), 2u);
  EXPECT_EQ(names.FindContainer(kApp)->container, "app");
  EXPECT_EQ(names.FindPod("0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")->pod, "db-0");

  // The source answers without the cart pod: kept for the retention time, then gone.
  answer = ParsePodList(R"({"items":[]})");
  clock.Advance(seconds(5));
  names.Refresh();
  EXPECT_TRUE(names.FindContainer(kApp));
  clock.Advance(seconds(60));
  names.Refresh();
  EXPECT_FALSE(names.FindContainer(kApp));
  EXPECT_FALSE(names.FindPod("5be17a95-7307-4746-a6ec-3cb210ebc301"));
}

}  // namespace
}  // namespace scry
