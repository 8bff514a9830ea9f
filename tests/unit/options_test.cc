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

TEST(Options, BadInputIsAUsageError) {
  po::variables_map vm1, vm2, vm3, vm4, vm5;
  EXPECT_THROW(Parse({"--no-such-flag"}, {}, vm1), UsageError);
  EXPECT_THROW(Parse({"--log.level=loud"}, {}, vm2), UsageError);
  EXPECT_THROW(Parse({"--collector.cgroup=maybe"}, {}, vm3), UsageError);
  EXPECT_THROW(Parse({"--config.file=/nonexistent/scry.conf"}, {}, vm4), UsageError);
  EXPECT_THROW(Parse({}, {{"SCRY_BLOCK_LOG_FORMAT", "xml"}}, vm5), UsageError);
}

}  // namespace
}  // namespace scry
