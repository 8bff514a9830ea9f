#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "scry/errors.h"
#include "scry/exporter.h"

namespace po = boost::program_options;

namespace scry {
namespace {

class FakeExporter : public Exporter {
 public:
  void AddOptions(po::options_description& desc) override {
    desc.add_options()("collector.cgroup", po::value<bool>()->default_value(false)->implicit_value(true), "x");
  }
  BpfSpec MakeBpfSpec(const po::variables_map&) override { return {}; }
  std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> MakeCollectors(
      const BpfObject&, const po::variables_map&) override {
    return {};
  }
};

const ExporterInfo kInfo{"block", "test", 9652};

CommonOptions Parse(std::vector<const char*> args, std::map<std::string, std::string> env, po::variables_map& vm) {
  FakeExporter exporter;
  args.insert(args.begin(), "scry-block");
  return ParseOptions(kInfo, exporter, static_cast<int>(args.size()), args.data(), env, vm);
}

TEST(Options, Defaults) {
  po::variables_map vm;
  auto o = Parse({}, {}, vm);
  EXPECT_EQ(o.listen_address, ":9652");
  EXPECT_EQ(o.log_level, "info");
  EXPECT_EQ(o.log_format, "logfmt");
  EXPECT_FALSE(o.check);
  EXPECT_FALSE(vm["collector.cgroup"].as<bool>());
}

TEST(Options, EnvNames) {
  EXPECT_EQ(EnvName("block", "web.listen-address"), "SCRY_BLOCK_WEB_LISTEN_ADDRESS");
  EXPECT_EQ(EnvName("sched-sli", "log.level"), "SCRY_SCHED_SLI_LOG_LEVEL");
}

TEST(Options, CommandLineBeatsEnvironmentBeatsFile) {
  std::string path = testing::TempDir() + "scry-options-test.conf";
  {
    std::ofstream f(path);
    f << "log.level = error\nlog.format = json\nweb.listen-address = 127.0.0.1:1000\n";
  }
  po::variables_map vm;
  auto o = Parse({"--config.file", path.c_str(), "--log.level=debug", "--collector.cgroup"},
                 {{"SCRY_BLOCK_LOG_LEVEL", "warn"}, {"SCRY_BLOCK_WEB_LISTEN_ADDRESS", "127.0.0.1:2000"},
                  {"SCRY_NET_LOG_FORMAT", "json"}},
                 vm);
  EXPECT_EQ(o.log_level, "debug");              // command line
  EXPECT_EQ(o.listen_address, "127.0.0.1:2000");  // environment
  EXPECT_EQ(o.log_format, "json");              // file
  EXPECT_TRUE(vm["collector.cgroup"].as<bool>());
  std::remove(path.c_str());
}

TEST(Options, SwitchesFromTheEnvironmentAreBooleansAndEmptyMeansUnset) {
  po::variables_map vm1, vm2, vm3;
  EXPECT_FALSE(Parse({}, {{"SCRY_BLOCK_CHECK", ""}}, vm1).check);
  EXPECT_FALSE(Parse({}, {{"SCRY_BLOCK_CHECK", "false"}}, vm2).check);
  EXPECT_TRUE(Parse({}, {{"SCRY_BLOCK_CHECK", "true"}, {"SCRY_BLOCK_BPF_STATS", "1"}}, vm3).bpf_stats);
}

TEST(Options, ConfigFileFromTheEnvironment) {
  std::string path = testing::TempDir() + "scry-options-env.conf";
  {
    std::ofstream f(path);
    f << "log.format = json\n";
  }
  po::variables_map vm;
  EXPECT_EQ(Parse({}, {{"SCRY_BLOCK_CONFIG_FILE", path}}, vm).log_format, "json");
  std::remove(path.c_str());
}

TEST(Options, AttachModes) {
  po::variables_map vm1, vm2;
  EXPECT_EQ(Parse({}, {}, vm1).attach_modes.size(), 5u);
  auto modes = Parse({"--bpf.attach-modes=tracepoint,kprobe"}, {}, vm2).attach_modes;
  ASSERT_EQ(modes.size(), 2u);
  EXPECT_EQ(modes[0], AttachMode::Tracepoint);
  EXPECT_EQ(modes[1], AttachMode::Kprobe);
}

TEST(Options, BadInputIsAUsageError) {
  po::variables_map vm1, vm2, vm3, vm4, vm5;
  EXPECT_THROW(Parse({"--no-such-flag"}, {}, vm1), UsageError);
  EXPECT_THROW(Parse({"--log.level=loud"}, {}, vm2), UsageError);
  EXPECT_THROW(Parse({"--collector.cgroup=maybe"}, {}, vm3), UsageError);
  EXPECT_THROW(Parse({"--config.file=/nonexistent/scry.conf"}, {}, vm4), UsageError);
  EXPECT_THROW(Parse({}, {{"SCRY_BLOCK_LOG_FORMAT", "xml"}}, vm5), UsageError);
  po::variables_map vm6, vm7, vm8;
  EXPECT_THROW(Parse({"stray"}, {}, vm6), UsageError);
  EXPECT_THROW(Parse({"--bpf.attach-modes=uprobe"}, {}, vm7), UsageError);
  EXPECT_THROW(Parse({"--bpf.attach-modes=,"}, {}, vm8), UsageError);
}

}  // namespace
}  // namespace scry

namespace scry {
namespace {

TEST(ParseDuration, PrometheusNotation) {
  using std::chrono::nanoseconds;
  EXPECT_EQ(ParseDuration("x", "10s"), nanoseconds(10'000'000'000));
  EXPECT_EQ(ParseDuration("x", "250ms"), nanoseconds(250'000'000));
  EXPECT_EQ(ParseDuration("x", "1m30s"), nanoseconds(90'000'000'000));
  EXPECT_EQ(ParseDuration("x", "2h"), nanoseconds(7200'000'000'000));
  EXPECT_EQ(ParseDuration("x", "1.5us"), nanoseconds(1500));
  EXPECT_EQ(ParseDuration("x", "7"), nanoseconds(7'000'000'000));  // a bare number is seconds
  EXPECT_EQ(ParseDuration("x", "0"), nanoseconds(0));
}

TEST(ParseDuration, BadValuesNameTheFlag) {
  for (const char* bad : {"", "s", "10 s", "-1s", "10d", "1m30", "ms10", "+5s", "1e30h", "nan"}) {
    try {
      ParseDuration("collector.hung-task.threshold", bad);
      ADD_FAILURE() << bad;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--collector.hung-task.threshold"), std::string::npos) << bad;
    }
  }
}

}  // namespace
}  // namespace scry
