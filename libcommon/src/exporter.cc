#include "scry/exporter.h"

#include <bpf/libbpf.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "scry/errors.h"
#include "scry/http_server.h"
#include "scry/lifecycle.h"
#include "scry/log.h"
#include "scry/self_metrics.h"
#include "scry/version.h"

extern char** environ;

namespace po = boost::program_options;

namespace scry {
namespace {

po::options_description CommonDescription(const ExporterInfo& info) {
  po::options_description desc("Common options");
  desc.add_options()
    ("help,h", po::bool_switch(), "Show this help and exit.")
    ("version", po::bool_switch(), "Show the version and exit.")
    ("web.listen-address", po::value<std::string>()->default_value(":" + std::to_string(info.default_port)),
     "Address to serve /metrics on: host:port, :port or [ipv6]:port.")
    ("web.config.file", po::value<std::string>()->default_value(""),
     "Web config file (node_exporter format) for TLS and basic auth.")
    ("log.level", po::value<std::string>()->default_value("info"), "Log level: debug, info, warn, error.")
    ("log.format", po::value<std::string>()->default_value("logfmt"), "Log format: logfmt or json.")
    ("config.file", po::value<std::string>(),
     "INI-style file of option = value lines, with the names of these options.")
    ("check", po::value<bool>()->default_value(false)->implicit_value(true),
     "Load and attach everything, print each hook's attach mode, and exit: 0 if the exporter can do its job.")
    ("bpf.stats", po::value<bool>()->default_value(false)->implicit_value(true),
     "Turn on the kernel's BPF run-time stats while running (needs CAP_SYS_ADMIN) and export them.")
    ("btf-path", po::value<std::string>()->default_value(""),
     "Kernel BTF file for kernels without /sys/kernel/btf/vmlinux.")
    ("bpf.attach-modes", po::value<std::string>()->default_value("tp_btf,raw_tp,tracepoint,fentry,kprobe"),
     "Attach modes the loader may use, comma-separated; each hook takes the first that works, in the "
     "order tp_btf, raw_tp, tracepoint, fentry, kprobe. Narrow it to avoid a mode or to test fallbacks.");
  return desc;
}

std::map<std::string, std::string> Environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; e++) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

std::string LandingPage(const ExporterInfo& info) {
  return "<!DOCTYPE html>\n<html><head><title>scry-" + info.name + "</title></head><body>\n<h1>scry-" + info.name +
         "</h1>\n<p>" + info.description + "</p>\n<p>Version " + std::string(kVersion) + " (" + kRevision +
         ")</p>\n<p><a href=\"/metrics\">Metrics</a></p>\n</body></html>\n";
}

}  // namespace

std::chrono::nanoseconds ParseDuration(const std::string& flag, const std::string& text) {
  auto bad = [&] { return UsageError("--" + flag + ": \"" + text + "\" is not a duration (e.g. 10s, 250ms, 1m30s)"); };
  if (text.empty()) throw bad();
  static const std::pair<const char*, double> units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9},
                                                          {"m", 60e9}, {"h", 3600e9}};
  double total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t used = 0;
    double value;
    try {
      value = std::stod(text.substr(pos), &used);
    } catch (const std::exception&) {
      throw bad();
    }
    if (value < 0 || !std::isfinite(value) || text[pos] == '+' || text[pos] == ' ') throw bad();
    pos += used;
    size_t end = text.find_first_of("0123456789.", pos);
    std::string unit = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos += unit.size();
    if (unit.empty()) {
      if (pos != text.size() || total != 0) throw bad();  // a bare number is seconds, alone
      unit = "s";
    }
    auto it = std::find_if(std::begin(units), std::end(units), [&](const auto& u) { return unit == u.first; });
    if (it == std::end(units)) throw bad();
    total += value * it->second;
  }
  if (total > 1e18) throw bad();
  return std::chrono::nanoseconds(static_cast<int64_t>(total + 0.5));
}

std::string EnvName(const std::string& exporter, const std::string& option) {
  std::string name = "SCRY_" + exporter + "_" + option;
  for (char& c : name) c = (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

CommonOptions ParseOptions(const ExporterInfo& info, Exporter& exporter, int argc, const char* const argv[],
                           const std::map<std::string, std::string>& env, po::variables_map& vm,
                           std::string* help_text) {
  po::options_description all = CommonDescription(info);
  po::options_description own("scry-" + info.name + " options");
  exporter.AddOptions(own);
  all.add(own);
  if (help_text) {
    std::ostringstream out;
    out << "Usage: scry-" << info.name << " [options]\n" << info.description << "\n\n" << all << "\n"
        << "Every option can also be set in the environment as " << EnvName(info.name, "<option>")
        << " (e.g. " << EnvName(info.name, "web.listen-address") << ") or in --config.file;\n"
        << "the command line wins over the environment, which wins over the file.\n";
    *help_text = out.str();
  }

  try {
    // No positional arguments: a stray word is a mistake, not something to ignore.
    po::store(po::command_line_parser(argc, argv).options(all).positional({}).run(), vm);

    std::map<std::string, std::string> env_to_option;
    for (const auto& opt : all.options())
      if (opt->long_name() != "help" && opt->long_name() != "version")
        env_to_option[EnvName(info.name, opt->long_name())] = opt->long_name();
    po::parsed_options from_env(&all);
    for (const auto& [key, value] : env) {
      auto it = env_to_option.find(key);
      if (it != env_to_option.end() && !value.empty())  // empty means unset, as in most tools
        from_env.options.emplace_back(it->second, std::vector<std::string>{value});
    }
    po::store(from_env, vm);

    if (vm.count("config.file")) {
      const auto& path = vm["config.file"].as<std::string>();
      std::ifstream file(path);
      if (!file) throw UsageError("cannot read config file " + path);
      po::store(po::parse_config_file(file, all), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see --help)");
  }

  CommonOptions o;
  o.help = vm["help"].as<bool>();
  o.version = vm["version"].as<bool>();
  o.listen_address = vm["web.listen-address"].as<std::string>();
  o.web_config_file = vm["web.config.file"].as<std::string>();
  o.log_level = vm["log.level"].as<std::string>();
  o.log_format = vm["log.format"].as<std::string>();
  o.btf_path = vm["btf-path"].as<std::string>();
  o.check = vm["check"].as<bool>();
  o.bpf_stats = vm["bpf.stats"].as<bool>();
  std::stringstream modes(vm["bpf.attach-modes"].as<std::string>());
  for (std::string mode; std::getline(modes, mode, ',');)
    if (!mode.empty()) o.attach_modes.push_back(ParseAttachMode(mode));
  if (o.attach_modes.empty()) throw UsageError("--bpf.attach-modes names no attach mode");
  try {
    log::ParseLevel(o.log_level);
    log::ParseFormat(o.log_format);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  return o;
}

namespace {

// 0.1, not 0.10000000000000001.
std::string DutyCycleText(double share) {
  std::ostringstream out;
  out << share;
  return out.str();
}

}  // namespace

std::string CheckReport(const ExporterInfo& info, const BpfObject& bpf) {
  std::ostringstream out;
  out << "scry-" << info.name << " " << kVersion << " on this kernel: " << (bpf.Usable() ? "usable" : "NOT usable")
      << "\n";
  auto row = [&out](const std::string& feature, const std::string& state, const std::string& hook,
                    const std::string& mode, const std::string& program) {
    out << std::left << std::setw(22) << feature << ' ' << std::setw(12) << state << ' ' << std::setw(16) << hook
        << ' ' << std::setw(11) << mode << ' ' << program << "\n";
  };
  row("FEATURE", "STATE", "HOOK", "MODE", "PROGRAM");
  for (const auto& f : bpf.features()) {
    std::string state = !f.enabled ? "disabled" : f.available ? "available" : "unavailable";
    bool any_hook = false;
    for (const auto& h : bpf.hooks()) {
      if (h.feature != f.spec.name) continue;
      any_hook = true;
      std::string program = h.program.empty() ? "-" : h.program;
      if (f.enabled && h.mode == AttachMode::None) {
        program += "  (" + std::string(h.optional ? "optional; " : "");
        for (size_t i = 0; i < h.rejected.size(); i++) {
          const auto& [name, error] = h.rejected[i];
          program += (i ? ", " : "") + name + ": " + error.substr(0, error.find(':'));
        }
        program += ")";
      } else if (h.mode != AttachMode::None && h.duty_cycle < 1) {
        program += "  (attached " + DutyCycleText(h.duty_cycle) + " of the time, in cycles)";
      }
      row(f.spec.name, state, h.hook, f.enabled ? AttachModeName(h.mode) : "-", program);
    }
    auto lacks = bpf.spec().host_lacks.find(f.spec.name);
    if (!any_hook)
      row(f.spec.name, state, "-", "-", f.enabled && lacks != bpf.spec().host_lacks.end() ? "(" + lacks->second + ")" : "-");
  }
  return out.str();
}

int RunExporter(const ExporterInfo& info, Exporter& exporter, int argc, char** argv) {
  const std::string binary = "scry-" + info.name;
  po::variables_map vm;
  CommonOptions opts;
  std::string help;
  WebConfig web_config;
  BpfSpec spec;
  libbpf_set_print(LibbpfPrint);
  signal(SIGHUP, SIG_IGN);  // nothing to reload yet; a stray hangup must not stop the exporter
  try {
    opts = ParseOptions(info, exporter, argc, argv, Environment(), vm, &help);
    if (opts.help) {
      std::cout << help;
      return kExitOk;
    }
    if (opts.version) {
      std::cout << binary << " " << kVersion << " (revision " << kRevision << ", libbpf " << LibbpfVersion()
                << ")\n";
      return kExitOk;
    }
    log::Configure(log::ParseLevel(opts.log_level), log::ParseFormat(opts.log_format));
    web_config = LoadWebConfig(opts.web_config_file);
    CivetListeningPort(opts.listen_address, web_config.tls());  // validate early
    spec = exporter.MakeBpfSpec(vm);
    spec.btf_path = opts.btf_path;
    spec.allowed_modes = opts.attach_modes;
  } catch (const UsageError& e) {
    std::cerr << binary << ": " << e.what() << "\n";
    return kExitUsage;
  }

  try {
    BpfStatsGuard stats;
    if (opts.bpf_stats && !opts.check) stats.Enable();
    if (!opts.btf_path.empty() && access(opts.btf_path.c_str(), R_OK) != 0)
      throw UsageError("cannot read BTF file " + opts.btf_path);

    if (opts.check) {
      BpfObject bpf(spec);
      std::cout << CheckReport(info, bpf);
      return bpf.Usable() ? kExitOk : kExitRuntime;
    }

    // Attach, drop capabilities, then start the server: its threads inherit the reduced set
    // (capabilities are per thread). The object is declared before the server so that the server
    // stops before the maps go away. Ports below 1024 would need CAP_NET_BIND_SERVICE: not kept.
    BpfObject bpf(spec);
    if (!bpf.Usable()) {
      for (const auto& f : bpf.features())
        if (f.spec.required && !f.available)
          throw RuntimeError("the kernel gives none of the hooks of required feature " + f.spec.name +
                             " (run --check for details)");
    }
    std::vector<std::shared_ptr<TimedCollectable>> timed;
    for (auto& [name, collector] : exporter.MakeCollectors(bpf, vm))
      timed.push_back(std::make_shared<TimedCollectable>(name, collector));
    auto self = std::make_shared<SelfMetrics>(info.name, bpf, stats.enabled() || KernelBpfStatsEnabled(), timed);

    auto kept = KeepOnlyCapabilities(CapabilitiesToReadMaps());
    BlockStopSignals();  // before the server's threads start, so they inherit the mask
    exporter.Started(bpf);
    HttpServer server(opts.listen_address, web_config, LandingPage(info));
    for (const auto& t : timed) server.Register(t);
    server.Register(self);

    // Logged once the exporter is up, so that a failed start says one thing only.
    for (const auto& h : bpf.hooks())
      if (h.mode != AttachMode::None) {
        log::Fields fields = {{"hook", h.hook}, {"program", h.program}, {"mode", AttachModeName(h.mode)}};
        if (h.duty_cycle < 1) fields.emplace_back("duty_cycle", DutyCycleText(h.duty_cycle));
        log::Info("attached", fields);
      }
    for (const auto& f : bpf.features())
      if (f.enabled && !f.available)
        log::Warn("feature unavailable on this kernel (see --check)", {{"feature", f.spec.name}});
    std::string kept_list;
    for (const auto& k : kept) kept_list += (kept_list.empty() ? "" : ",") + k;
    log::Info("listening", {{"address", opts.listen_address},
                            {"tls", web_config.tls() ? "true" : "false"},
                            {"capabilities", kept_list.empty() ? "none" : kept_list}});
    SdNotify("READY=1");
    int sig = WaitForStopSignal();
    SdNotify("STOPPING=1");
    exporter.Stopping();
    log::Info("stopping", {{"signal", strsignal(sig)}});
    return kExitOk;
  } catch (const UsageError& e) {
    std::cerr << binary << ": " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    log::Error(e.what());
    return kExitRuntime;
  }
}

}  // namespace scry
