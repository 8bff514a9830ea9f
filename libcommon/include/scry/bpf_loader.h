// Loads an exporter's BPF object and attaches each hook in the best mode the running kernel accepts.
//
// A BPF object carries several programs per hook, one per attach mode (tp_btf, raw_tp, tracepoint,
// fentry, kprobe); the mode is read from the program's section name. For each hook the loader tries
// the candidates in that order, each in a throwaway copy of the object (load and attach for real,
// so a kernel that lists a function but cannot kprobe it is found out), then loads the final object
// with only the winners. A feature whose required hooks all failed is disabled; the exporter runs on.
#pragma once

#include <bpf/libbpf.h>

#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace scry {

class BpfObject;

// Iter: a BPF iterator ("iter/task"), attached as a link that user space reads on demand (LinkFd).
enum class AttachMode { TpBtf, RawTp, Tracepoint, Fentry, Kprobe, Iter, None };

const char* AttachModeName(AttachMode mode);
// "tp_btf" -> AttachMode::TpBtf; throws UsageError for an unknown name.
AttachMode ParseAttachMode(const std::string& name);
// From a section name such as "tp_btf/block_rq_issue" or "kprobe/blk_mq_start_request".
AttachMode AttachModeOfSection(const std::string& section);

struct FeatureSpec {
  std::string name;
  std::string description;
  bool required = false;  // the exporter cannot do its job without it
  std::vector<std::string> needs;  // other features this one builds on
  // Hooks (of any feature) this one relies on, and the attach modes that give it what it needs,
  // e.g. the request pointer at completion, which the classic tracepoint lacks.
  std::map<std::string, std::vector<AttachMode>> needs_hook_modes;
};

struct HookSpec {
  std::string name;
  std::string feature;
  std::vector<std::string> programs;  // candidates, any order: they are tried by attach mode
  bool optional = false;              // the feature works (partly) without this hook
  // Share of the time the program is attached, 0 < share <= 1: in each kHookCycle, for that share of it
  // from a random offset. For an event so frequent that the kernel's call into the program costs more
  // than the program's sampled work; 1: attached all the time.
  double duty_cycle = 1;
};

inline constexpr std::chrono::seconds kHookCycle{10};

struct BpfSpec {
  std::string object_name;  // for messages
  const void* elf = nullptr;
  size_t elf_size = 0;
  std::vector<FeatureSpec> features;
  std::vector<HookSpec> hooks;
  std::vector<std::string> disabled_features;  // switched off by configuration: never loaded
  // Feature -> what the host lacks that the feature needs and that is not a hook (e.g. a cgroup
  // controller): such a feature is unavailable.
  std::map<std::string, std::string> host_lacks;
  std::vector<std::string> lost_reasons;       // index -> name of the object's lost_events map
  std::string btf_path;                        // empty: the kernel's own BTF
  std::vector<AttachMode> allowed_modes;       // empty: all; else candidates of other modes are skipped

  // Sets a `const volatile` global of the object before load.
  template <typename T>
  void SetConst(const std::string& name, const T& value) {
    std::vector<uint8_t> bytes(sizeof(T));
    std::memcpy(bytes.data(), &value, sizeof(T));
    consts[name] = std::move(bytes);
  }
  std::map<std::string, std::vector<uint8_t>> consts;
  // Map name -> max_entries set before load (e.g. an array indexed by CPU sized to the possible CPUs).
  std::map<std::string, uint32_t> max_entries;
  // Maps other than hash maps that fill up (a table in an array): name -> how many of its max_entries
  // are in use, counted at scrape time for scry_bpf_map_entries.
  std::map<std::string, std::function<uint64_t(const BpfObject&)>> used_entries;
  // Runs once the object is loaded, before any program is attached: fills maps the programs expect
  // filled (e.g. a queue of free indexes). Throws RuntimeError on failure.
  std::function<void(const BpfObject&)> prepare;
};

struct HookResult {
  std::string hook;
  std::string feature;
  std::string program;  // the attached program, empty if none
  AttachMode mode = AttachMode::None;
  bool optional = false;
  double duty_cycle = 1;  // as in the HookSpec
  std::string error;  // why the last candidate failed, when none attached
  std::vector<std::pair<std::string, std::string>> rejected;  // program -> error, in the order tried
};

struct FeatureResult {
  FeatureSpec spec;
  bool enabled = true;  // false when disabled by configuration
  bool available = false;
};

class BpfObject {
 public:
  // Throws RuntimeError if the object cannot be loaded at all (no BTF, no permission...).
  explicit BpfObject(const BpfSpec& spec);
  ~BpfObject();
  BpfObject(const BpfObject&) = delete;
  BpfObject& operator=(const BpfObject&) = delete;

  const std::vector<HookResult>& hooks() const { return hooks_; }
  const std::vector<FeatureResult>& features() const { return features_; }
  const BpfSpec& spec() const { return spec_; }
  bool FeatureAvailable(const std::string& feature) const;
  const HookResult* Hook(const std::string& name) const;
  // True if every required feature is available.
  bool Usable() const;

  bpf_object* object() const { return obj_; }
  // fd of a map by name; throws RuntimeError if the object has no such map.
  int MapFd(const std::string& name) const;
  // fd of the link of an attached hook (for iterators: bpf_iter_create), -1 if the hook is not attached
  // or is attached in cycles.
  int LinkFd(const std::string& hook) const;
  // Seconds the hook's program has been attached since the object was loaded: all of them, or the parts
  // of its cycles for a hook with a duty cycle below 1; 0 for a hook with no program.
  double AttachedSeconds(const std::string& hook) const;

  // Detaches every program and frees the object; safe to call twice.
  void Close();

 private:
  bpf_object* Open() const;
  bool HasHooks(const std::string& feature) const;
  void ComputeFeatures();
  bool TryCandidate(const std::string& program, std::string* error) const;
  // The thread that attaches and detaches the hooks with a duty cycle below 1, until Close.
  void RunCycles();

  // A hook attached in cycles. The cycle thread alone attaches and detaches; the times are under
  // cycle_mutex_.
  struct CycledHook {
    std::string hook;
    bpf_program* program;
    double duty_cycle;
    bpf_link* link = nullptr;
    std::chrono::steady_clock::duration attached{};  // before `since`
    std::chrono::steady_clock::time_point since{};   // when link was attached, if it is
    bool warned = false;                             // of a failed attach
  };

  BpfSpec spec_;
  bpf_object* obj_ = nullptr;
  std::map<std::string, bpf_link*> links_;  // by hook, those attached all the time
  std::chrono::steady_clock::time_point loaded_;
  std::vector<CycledHook> cycled_;
  mutable std::mutex cycle_mutex_;
  std::condition_variable cycle_wake_;
  bool cycle_stop_ = false;
  std::thread cycle_thread_;
  std::vector<HookResult> hooks_;
  std::vector<FeatureResult> features_;
};

// Number of arguments of a tracepoint's BTF prototype (btf_trace_<name>, without the leading
// void *__data), or -1 if the kernel's BTF does not describe it. Used to pick between signatures.
int TracepointArgCount(const std::string& tracepoint, const std::string& btf_path = "");

// Whether the kernel's verifier takes BPF atomic read-modify-write instructions (compare-and-swap, fetch
// and add: kernel 5.12+), by loading a program with one; true also when no program can be loaded (no
// privilege), where the exporter's own load then fails with the reason.
bool KernelHasBpfAtomics();

// Whether the kernel's BTF (or btf_path) has `name` of this BTF kind (BTF_KIND_STRUCT, BTF_KIND_VAR...) and,
// when member is not empty, a struct/union member of that name. For choices no CO-RE check can make in
// the loader, e.g. whether a per-CPU kernel variable can be used as a ksym.
bool BtfHas(int kind, const std::string& name, const std::string& member = "", const std::string& btf_path = "");

// libbpf's messages as debug log lines (the loader's rejected candidates are expected failures).
int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args);

// Mounts tracefs at /sys/kernel/tracing if nothing is there yet (classic tracepoints need it).
void EnsureTracefs();

}  // namespace scry
