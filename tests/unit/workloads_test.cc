#include "scry/workloads.h"

#include <gtest/gtest.h>

#include "fixture.h"
#include "scry/errors.h"

namespace scry {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using test::FakeClock;
using test::Inode;
using test::ReadFixture;
using test::TempDir;
using test::WriteFile;

const std::string kId = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";

ProcessFilter Parse(const std::string& pids, const std::string& comm = "", const std::string& cmdline = "",
                    const std::string& ids = "", const std::string& pods = "") {
  return ParseProcessFilter(pids, comm, cmdline, ids, pods);
}

std::string Label(const Labels& labels, const std::string& name) {
  for (const auto& l : labels)
    if (l.name == name) return l.value;
  return "<none>";
}

TEST(ProcessFilter, EmptyObservesEverything) {
  EXPECT_TRUE(Parse("").empty());
  EXPECT_TRUE(Parse(" , ").empty());
}

TEST(ProcessFilter, PidsCommAndCmdline) {
  auto f = Parse("12, 34", "nginx|redis-server", "--port 63[0-9]+");
  EXPECT_FALSE(f.empty());
  EXPECT_TRUE(f.has_process_filters());
  EXPECT_FALSE(f.has_cgroup_filters());
  EXPECT_TRUE(f.MatchesProcess(12, "bash", ""));
  EXPECT_TRUE(f.MatchesProcess(99, "nginx", ""));
  EXPECT_FALSE(f.MatchesProcess(99, "nginx-worker", ""));  // the name must match in full
  EXPECT_TRUE(f.MatchesProcess(99, "x", "/usr/bin/redis-server --port 6379"));
  EXPECT_FALSE(f.MatchesProcess(99, "x", "/usr/bin/redis-server --port 7000"));
  EXPECT_EQ(f.text, "pid=12, 34 comm=nginx|redis-server cmdline=--port 63[0-9]+");
}

TEST(ProcessFilter, ContainerIdsByPrefixWithOrWithoutRuntimePrefix) {
  auto f = Parse("", "", "", "containerd://" + kId.substr(0, 12) + "," + std::string(64, 'b'));
  Identity id;
  id.container_id = kId;
  EXPECT_TRUE(f.MatchesIdentity(id));
  id.container_id = std::string(64, 'b');
  EXPECT_TRUE(f.MatchesIdentity(id));
  id.container_id = std::string(64, 'c');
  EXPECT_FALSE(f.MatchesIdentity(id));
  id.container_id = "";
  EXPECT_FALSE(f.MatchesIdentity(id));
}

TEST(ProcessFilter, PodsWithAndWithoutNamespace) {
  auto f = Parse("", "", "", "", "kube-system/coredns-5d78c9869d-x7kq2,web-0");
  Identity id;
  id.pod = "coredns-5d78c9869d-x7kq2";
  id.pod_namespace = "kube-system";
  EXPECT_TRUE(f.MatchesIdentity(id));
  id.pod_namespace = "default";
  EXPECT_FALSE(f.MatchesIdentity(id));
  id.pod = "web-0";
  EXPECT_TRUE(f.MatchesIdentity(id));
}

TEST(ProcessFilter, BadValuesAreUsageErrors) {
  EXPECT_THROW(Parse("12x"), UsageError);
  EXPECT_THROW(Parse("-3"), UsageError);
  EXPECT_THROW(Parse("", "("), UsageError);
  EXPECT_THROW(Parse("", "", "[a-"), UsageError);
  EXPECT_THROW(Parse("", "", "", "abc"), UsageError);                  // too short
  EXPECT_THROW(Parse("", "", "", std::string(12, 'g')), UsageError);   // not hex
  EXPECT_THROW(Parse("", "", "", "", "a/b/c"), UsageError);
  EXPECT_THROW(Parse("", "", "", "", "/pod"), UsageError);
}

// A pure v2 node with two service cgroups and one container.
class WorkloadSeriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(host_.path() / "proc/1/mountinfo", ReadFixture("proc/mountinfo.v2"));
    for (const char* p : {"system.slice/a.service", "system.slice/b.service", "system.slice/c.service"})
      fs::create_directories(Cgroup(p));
    fs::create_directories(Cgroup("system.slice/docker-" + kId + ".scope/sub"));
    IdentityOptions o;
    o.host_root = host_.path().string();
    o.retention = seconds(60);
    o.forget_after = seconds(600);
    o.clock = clock_.Fn();
    resolver_ = std::make_shared<IdentityResolver>(o);
  }
  fs::path Cgroup(const std::string& path) const { return host_.path() / "sys/fs/cgroup" / path; }
  uint64_t Id(const std::string& path) const { return Inode(Cgroup(path)); }

  TempDir host_;
  FakeClock clock_;
  std::shared_ptr<IdentityResolver> resolver_;
};

TEST_F(WorkloadSeriesTest, ContainersByIdServicesByCgroup) {
  WorkloadSeries series(resolver_, 10, clock_.Fn());
  series.Begin();
  auto a = series.Label(Id("system.slice/a.service"));
  ASSERT_EQ(a.action, WorkloadSeries::Action::kExport);
  EXPECT_EQ(Label(a.labels, "cgroup"), "/system.slice/a.service");
  EXPECT_EQ(Label(a.labels, "container_id"), "");
  // A container's sub-cgroup is the container.
  auto c = series.Label(Id("system.slice/docker-" + kId + ".scope/sub"));
  ASSERT_EQ(c.action, WorkloadSeries::Action::kExport);
  EXPECT_EQ(Label(c.labels, "container_id"), kId);
  EXPECT_EQ(Label(c.labels, "cgroup"), "");
  EXPECT_EQ(c.labels, series.Label(Id("system.slice/docker-" + kId + ".scope")).labels);
  series.End();
}

TEST_F(WorkloadSeriesTest, CapFoldsTheRestIntoOtherAndSlotsAreSticky) {
  WorkloadSeries series(resolver_, 2, clock_.Fn());
  auto label = [&](const char* path) { return Label(series.Label(Id(path)).labels, "cgroup"); };
  series.Begin();
  EXPECT_EQ(label("system.slice/a.service"), "/system.slice/a.service");
  EXPECT_EQ(label("system.slice/b.service"), "/system.slice/b.service");
  EXPECT_EQ(label("system.slice/c.service"), "other");
  series.End();
  // Next scrape, c first: a and b keep their slots.
  series.Begin();
  EXPECT_EQ(label("system.slice/c.service"), "other");
  EXPECT_EQ(label("system.slice/b.service"), "/system.slice/b.service");
  EXPECT_EQ(label("system.slice/a.service"), "/system.slice/a.service");
  series.End();
  // a has no entries any more: its slot goes to the next workload that asks.
  series.Begin();
  EXPECT_EQ(label("system.slice/b.service"), "/system.slice/b.service");
  series.End();
  series.Begin();
  EXPECT_EQ(label("system.slice/c.service"), "/system.slice/c.service");
  series.End();
}

TEST_F(WorkloadSeriesTest, DeadCgroupKeepsItsLabelsThenItsEntriesAreDeleted) {
  WorkloadSeries series(resolver_, 10, clock_.Fn());
  uint64_t id = Id("system.slice/c.service");
  series.Begin();
  EXPECT_EQ(series.Label(id).action, WorkloadSeries::Action::kExport);
  series.End();
  fs::remove(Cgroup("system.slice/c.service"));
  clock_.Advance(seconds(2));
  series.Begin();
  auto dead = series.Label(id);
  EXPECT_EQ(dead.action, WorkloadSeries::Action::kExport);  // retained for the last scrapes
  EXPECT_EQ(Label(dead.labels, "cgroup"), "/system.slice/c.service");
  series.End();
  clock_.Advance(seconds(61));
  series.Begin();
  EXPECT_EQ(series.Label(id).action, WorkloadSeries::Action::kDelete);
  series.End();
}

TEST_F(WorkloadSeriesTest, UnknownIdsAreSkippedThenDeletedAndCountedOnce) {
  WorkloadSeries series(resolver_, 10, clock_.Fn());
  const uint64_t unknown = 0x7fffffff01;
  series.Begin();
  EXPECT_EQ(series.Label(unknown).action, WorkloadSeries::Action::kSkip);
  clock_.Advance(seconds(2));
  EXPECT_EQ(series.Label(unknown).action, WorkloadSeries::Action::kSkip);
  series.End();
  EXPECT_EQ(resolver_->unresolved(), 1u);
  clock_.Advance(seconds(60));
  series.Begin();
  EXPECT_EQ(series.Label(unknown).action, WorkloadSeries::Action::kDelete);
  series.End();
  EXPECT_EQ(resolver_->unresolved(), 1u);
}

TEST_F(WorkloadSeriesTest, OtherHasOnlyTheCgroupLabelSet) {
  auto other = WorkloadSeries::OtherLabels();
  ASSERT_EQ(other.size(), kIdentityLabelNames.size());
  for (size_t i = 0; i < other.size(); i++) {
    EXPECT_EQ(other[i].name, kIdentityLabelNames[i]);
    EXPECT_EQ(other[i].value, other[i].name == "cgroup" ? "other" : "");
  }
}

TEST_F(WorkloadSeriesTest, AliveCgroupsForTheFilter) {
  std::set<std::string> paths;
  for (const auto& id : resolver_->AliveCgroups()) paths.insert(id.cgroup);
  EXPECT_TRUE(paths.count("/system.slice/a.service"));
  EXPECT_TRUE(paths.count("/system.slice/docker-" + kId + ".scope/sub"));
  ProcessFilter f = Parse("", "", "", kId.substr(0, 16));
  int matched = 0;
  for (const auto& id : resolver_->AliveCgroups()) matched += f.MatchesIdentity(id);
  EXPECT_EQ(matched, 2);  // the container's cgroup and its sub-cgroup
}

}  // namespace
}  // namespace scry
