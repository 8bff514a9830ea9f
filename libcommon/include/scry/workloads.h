// Per-workload series for every exporter: which containers, pods and host services the BPF maps'
// cgroup ids belong to, which of them to observe at all (process filters), and how many series to keep.
//
// An exporter with per-workload metrics:
//   - adds the shared flags with Workloads::AddOptions (--path.rootfs, --cgroup.root, --workload.max,
//     --filter.*), builds a Workloads from the parsed options before load and lets it configure the BPF
//     spec (the filter switch of bpf/include/scry_filter.bpf.h);
//   - calls Start() once the object is loaded: a thread then keeps the BPF filter maps up to date;
//   - gives each collector a WorkloadSeries, which turns cgroup ids into label sets at scrape time;
//   - registers Workloads itself as a collector for its self-metrics.
#pragma once

#include <boost/program_options.hpp>
#include <prometheus/collectable.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "scry/bpf_loader.h"
#include "scry/identity.h"
#include "scry/metrics.h"

namespace scry {

// Which tasks to observe. Empty: all. Otherwise a task is observed when any of the filters matches it.
struct ProcessFilter {
  std::set<int> pids;                        // process ids (thread group ids)
  std::optional<std::regex> comm;            // must match the whole process name (/proc/<pid>/comm)
  std::optional<std::regex> cmdline;         // must match somewhere in the command line (args joined by " ")
  std::vector<std::string> container_ids;    // full ids or prefixes of at least 12 hex digits
  std::vector<std::string> pods;             // "namespace/pod" or "pod" (any namespace)
  std::string text;                          // as given, for logs

  bool empty() const {
    return pids.empty() && !comm && !cmdline && container_ids.empty() && pods.empty();
  }
  bool has_process_filters() const { return !pids.empty() || comm || cmdline; }
  bool has_cgroup_filters() const { return !container_ids.empty() || !pods.empty(); }
  bool MatchesProcess(int pid, const std::string& comm_value, const std::string& cmdline_value) const;
  bool MatchesIdentity(const Identity& identity) const;
};

// From the --filter.* values (comma-separated lists, regexes); throws UsageError on bad input.
ProcessFilter ParseProcessFilter(const std::string& pids, const std::string& comm, const std::string& cmdline,
                                 const std::string& container_ids, const std::string& pods);

// The label set of a cgroup's series, with a cap on how many workloads get series of their own.
// Used in one scrape at a time: Begin(), Label() for every cgroup id read from the maps, End().
class WorkloadSeries {
 public:
  enum class Action {
    kExport,  // export under labels()
    kSkip,    // not exported this time (an id not resolved yet)
    kDelete,  // the cgroup is gone (or was never resolvable): delete its map entries
  };
  struct Verdict {
    Action action = Action::kSkip;
    Labels labels;  // the five identity labels (see identity.h); cgroup="other" past the cap
  };

  WorkloadSeries(std::shared_ptr<IdentityResolver> resolver, size_t max_series, SteadyClock clock = {});
  void Begin();
  Verdict Label(uint64_t cgroup_id);
  // Workloads that had no entry in this scrape give up their slot.
  void End();

  static Labels OtherLabels();

 private:
  std::chrono::steady_clock::time_point Now() const { return clock_ ? clock_() : std::chrono::steady_clock::now(); }

  std::shared_ptr<IdentityResolver> resolver_;
  size_t max_series_;
  SteadyClock clock_;
  // Workloads with a series of their own keep it while they have entries, so that one does not move in
  // and out of "other" (which would look like counter resets).
  std::set<std::string> named_;
  std::set<std::string> seen_;
  std::map<uint64_t, std::chrono::steady_clock::time_point> unknown_since_;
};

class Workloads : public prometheus::Collectable {
 public:
  // The shared flags; default_max is this exporter's default for --workload.max.
  static void AddOptions(boost::program_options::options_description& desc, size_t default_max = 1000);
  // Throws UsageError for bad values.
  explicit Workloads(const boost::program_options::variables_map& vm);
  ~Workloads() override;

  // Sets the filter switch of scry_filter.bpf.h (the object must include it).
  void ConfigureBpf(BpfSpec& spec) const;
  // Fills the object's filter maps now and then every second, until destroyed.
  void Start(const BpfObject& bpf);
  // Fills the filter maps once (Start does this, then repeats it).
  void RefreshFilter();
  // Stops the refresh thread (before the BPF object goes away).
  void Stop();

  // The cgroups that directly hold observed processes, for metrics read from cgroup files rather than
  // from BPF events: without a filter, every live cgroup with a process of its own; with one, the cgroups
  // it allows and those of the processes it matches (as of its last refresh).
  std::set<uint64_t> ObservedCgroups();

  WorkloadSeries MakeSeries() const { return WorkloadSeries(resolver_, max_series_); }
  const std::shared_ptr<IdentityResolver>& resolver() const { return resolver_; }
  const ProcessFilter& filter() const { return filter_; }
  size_t max_series() const { return max_series_; }

  // scry_cgroup_unresolved_total; with a filter, scry_filter_entries{kind} and scry_filter_unobserved.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::shared_ptr<IdentityResolver> resolver_;
  size_t max_series_;
  ProcessFilter filter_;
  int filter_cgroups_fd_ = -1, filter_tgids_fd_ = -1;
  uint32_t filter_capacity_ = 0;
  std::set<uint64_t> allowed_cgroups_;
  std::set<uint32_t> allowed_tgids_;
  std::mutex matched_mutex_;  // what the filter matched at its last refresh, for ObservedCgroups
  std::set<uint64_t> matched_cgroups_;
  std::set<uint32_t> matched_tgids_;
  std::atomic<uint64_t> cgroup_entries_{0}, tgid_entries_{0}, filter_missing_{0};
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
};

}  // namespace scry
