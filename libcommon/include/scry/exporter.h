// What an exporter is made of, and the main loop every exporter shares: options, logging,
// BPF load and attach, --check, the HTTP server, systemd notification, capabilities, stop.
#pragma once

#include <boost/program_options.hpp>
#include <prometheus/collectable.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "scry/bpf_loader.h"

namespace scry {

struct ExporterInfo {
  std::string name;         // "block": binary scry-block, env prefix SCRY_BLOCK_
  std::string description;  // one line for --help and the landing page
  uint16_t default_port;
};

// Options every exporter has, after parsing.
struct CommonOptions {
  std::string listen_address;
  std::string web_config_file;
  std::string log_level;
  std::string log_format;
  std::string btf_path;
  std::vector<AttachMode> attach_modes;  // empty: all
  bool check = false;
  bool bpf_stats = false;
  bool help = false;
  bool version = false;
};

class Exporter {
 public:
  virtual ~Exporter() = default;
  // The exporter's own flags; they also come from the config file and environment.
  virtual void AddOptions(boost::program_options::options_description& /*desc*/) {}
  // What to load, from the parsed options. Throws UsageError for bad values.
  virtual BpfSpec MakeBpfSpec(const boost::program_options::variables_map& vm) = 0;
  // Named collectors serving the loaded object's maps at scrape time.
  virtual std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> MakeCollectors(
      const BpfObject& bpf, const boost::program_options::variables_map& vm) = 0;
  // Called once capabilities are dropped and stop signals blocked, before the server starts: the place to
  // start background threads (they inherit both).
  virtual void Started(const BpfObject& /*bpf*/) {}
  // Called once a stop signal arrived, before the BPF object is closed: stop what Started started.
  virtual void Stopping() {}
};

// A duration flag's value in Prometheus' notation: "10s", "250ms", "1m30s", "2h", "0" (units ns, us, ms,
// s, m, h; a bare number is seconds). Throws UsageError naming the flag.
std::chrono::nanoseconds ParseDuration(const std::string& flag, const std::string& text);

// "SCRY_BLOCK_WEB_LISTEN_ADDRESS" for exporter "block" and option "web.listen-address".
std::string EnvName(const std::string& exporter, const std::string& option);

// Parses the command line, then the environment, then --config.file (earlier sources win).
// Throws UsageError with one clear sentence.
CommonOptions ParseOptions(const ExporterInfo& info, Exporter& exporter, int argc, const char* const argv[],
                           const std::map<std::string, std::string>& env, boost::program_options::variables_map& vm,
                           std::string* help_text = nullptr);

// Runs the exporter until SIGINT/SIGTERM; returns the process exit code.
int RunExporter(const ExporterInfo& info, Exporter& exporter, int argc, char** argv);

// The --check report: one line per hook with its feature, state and attach mode.
std::string CheckReport(const ExporterInfo& info, const BpfObject& bpf);

}  // namespace scry
