// scry-mem-sli's pure helpers: label values, per-CPU sums, the OOM kill log line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "../../exporters/mem-sli/mem_sli_decode.h"

namespace scry::mem {
namespace {

std::string Field(const log::Fields& f, const std::string& key) {
  auto it = std::find_if(f.begin(), f.end(), [&](const auto& kv) { return kv.first == key; });
  return it == f.end() ? "<absent>" : it->second;
}

TEST(MemSliDecode, LabelValues) {
  EXPECT_STREQ(StallKindName(MEM_STALL_MEMCG_RECLAIM), "memcg");
  EXPECT_STREQ(StallKindName(MEM_STALL_DIRECT_RECLAIM), "direct");
  EXPECT_STREQ(StallKindName(MEM_STALL_COMPACTION), "compaction");
  EXPECT_STREQ(StallKindName(MEM_STALL_SWAPIN), "swapin");
  EXPECT_STREQ(OomScopeName(MEM_OOM_MEMCG), "memcg");
  EXPECT_STREQ(OomScopeName(MEM_OOM_GLOBAL), "global");
  EXPECT_STREQ(MapKindName(MEM_MAP_ANON), "anon");
  EXPECT_STREQ(MapKindName(MEM_MAP_SHARED), "shared");
  EXPECT_STREQ(MapKindName(MEM_MAP_FILE), "file");
}

TEST(MemSliDecode, SumsEveryCpusCounters) {
  std::vector<mem_cgroup_stats> cpus(3);
  cpus[0].faults = 5;
  cpus[2].faults = 7;
  cpus[1].mapped[MEM_MAP_SHARED] = 4096;
  cpus[2].mapped[MEM_MAP_SHARED] = 8192;
  cpus[0].unmapped = 1;
  cpus[1].brk_grown = 10;
  cpus[2].brk_shrunk = 3;
  cpus[1].major_faults = 2;
  auto s = Sum(cpus);
  EXPECT_EQ(s.faults, 12u);
  EXPECT_EQ(s.major_faults, 2u);
  EXPECT_EQ(s.mapped[MEM_MAP_SHARED], 12288u);
  EXPECT_EQ(s.mapped[MEM_MAP_ANON], 0u);
  EXPECT_EQ(s.unmapped, 1u);
  EXPECT_EQ(s.brk_grown, 10u);
  EXPECT_EQ(s.brk_shrunk, 3u);

  std::vector<mem_node_stats> nodes(2);
  nodes[0].oom_kills[MEM_OOM_MEMCG] = 1;
  nodes[1].oom_kills[MEM_OOM_MEMCG] = 2;
  nodes[1].oom_kills[MEM_OOM_GLOBAL] = 4;
  nodes[0].major_faults = 9;
  auto n = Sum(nodes);
  EXPECT_EQ(n.oom_kills[MEM_OOM_MEMCG], 3u);
  EXPECT_EQ(n.oom_kills[MEM_OOM_GLOBAL], 4u);
  EXPECT_EQ(n.major_faults, 9u);
}

TEST(MemSliDecode, CpuShareAddsTheFaultsWaitingInTheCpusLine) {
  mem_cgroup_stats counters{};
  counters.faults = 100;
  counters.unmapped = 4096;
  mem_cpu line{};
  line.slot = 3;
  line.cgroup_id = 42;
  line.pending = 7;
  line.moves = 4;
  mem_cgroup_stats share{};
  ASSERT_TRUE(CpuShare(counters, line, line, 3, 42, &share));
  EXPECT_EQ(share.faults, 107u);
  EXPECT_EQ(share.unmapped, 4096u);

  // The line holds another slot, or the slot of a cgroup that gave it up: nothing of it is added.
  ASSERT_TRUE(CpuShare(counters, line, line, 4, 42, &share));
  EXPECT_EQ(share.faults, 100u);
  ASSERT_TRUE(CpuShare(counters, line, line, 3, 43, &share));
  EXPECT_EQ(share.faults, 100u);
}

TEST(MemSliDecode, CpuShareRefusesAReadAcrossAMove) {
  mem_cgroup_stats counters{}, share{};
  mem_cpu before{}, after{};
  before.moves = 2;
  after.moves = 4;  // waiting faults went into counters between the reads
  EXPECT_FALSE(CpuShare(counters, before, after, 0, 0, &share));
  before.moves = after.moves = 3;  // a move under way during both reads
  EXPECT_FALSE(CpuShare(counters, before, after, 0, 0, &share));
}

TEST(MemSliDecode, KernelStringsMayLackTheirNul) {
  char full[4] = {'a', 'b', 'c', 'd'};
  EXPECT_EQ(KernelString(full, sizeof(full)), "abcd");
  char shorter[8] = "xy";
  EXPECT_EQ(KernelString(shorter, sizeof(shorter)), "xy");
}

mem_oom_event Event() {
  mem_oom_event ev{};
  ev.cgroup_id = 4167;
  ev.pid = 23423;
  ev.tid = 23423;
  ev.scope = MEM_OOM_MEMCG;
  ev.oom_score_adj = -500;
  ev.anon_rss = 50069504;
  ev.file_rss = 1101824;
  ev.pgtables = 135168;
  ev.total_vm = 52731904;
  ev.killer_pid = 23423;
  ev.details = 1;
  std::memcpy(ev.comm, "memwork", 8);
  std::memcpy(ev.killer_comm, "memwork", 8);
  return ev;
}

TEST(MemSliDecode, OomLogLineOfAContainer) {
  Identity id = ParseCgroupPath(
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b0c7e6e_54a5_4c57_9ea2_2d0d3c1f7a11.slice/"
      "cri-containerd-4f2a0c2b1d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a.scope");
  id.pod = "web-0";
  id.pod_namespace = "shop";
  id.container = "app";
  auto f = OomLogFields(Event(), &id);
  EXPECT_EQ(f[0], (std::pair<std::string, std::string>{"pid", "23423"}));
  EXPECT_EQ(Field(f, "comm"), "memwork");
  EXPECT_EQ(Field(f, "scope"), "memcg");
  EXPECT_EQ(Field(f, "container_id"), "4f2a0c2b1d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a");
  EXPECT_EQ(Field(f, "pod"), "web-0");
  EXPECT_EQ(Field(f, "namespace"), "shop");
  EXPECT_EQ(Field(f, "container"), "app");
  EXPECT_EQ(Field(f, "cgroup"), "");
  EXPECT_EQ(Field(f, "cgroup_id"), "<absent>");
  EXPECT_EQ(Field(f, "oom_score_adj"), "-500");
  EXPECT_EQ(Field(f, "anon_rss_bytes"), "50069504");
  EXPECT_EQ(Field(f, "file_rss_bytes"), "1101824");
  EXPECT_EQ(Field(f, "shmem_rss_bytes"), "0");
  EXPECT_EQ(Field(f, "pgtables_bytes"), "135168");
  EXPECT_EQ(Field(f, "killer_comm"), "memwork");
}

TEST(MemSliDecode, OomLogLineWithoutIdentityOrDetails) {
  auto ev = Event();
  ev.details = 0;  // the hook gave only the victim's pid
  ev.scope = MEM_OOM_GLOBAL;
  auto f = OomLogFields(ev, nullptr);
  EXPECT_EQ(Field(f, "cgroup_id"), "4167");
  EXPECT_EQ(Field(f, "cgroup"), "<absent>");
  EXPECT_EQ(Field(f, "scope"), "global");
  EXPECT_EQ(Field(f, "oom_score_adj"), "<absent>");
  EXPECT_EQ(Field(f, "anon_rss_bytes"), "<absent>");
  EXPECT_EQ(Field(f, "killer_pid"), "23423");
}

}  // namespace
}  // namespace scry::mem
