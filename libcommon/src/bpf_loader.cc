#include "scry/bpf_loader.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <malloc.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <iterator>
#include <memory>
#include <random>

#include "scry/errors.h"
#include "scry/lifecycle.h"
#include "scry/log.h"

namespace scry {
namespace {

}  // namespace

int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // Whole messages: a verifier log ends with the line that says why a program was rejected.
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string msg(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(msg.data(), msg.size(), format, args);
  msg.resize(static_cast<size_t>(n));
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  // libbpf explains every candidate the loader rejects; those are expected, so keep them at debug.
  log::Debug("libbpf", {{"detail", msg}});
  return 0;
}

namespace {

struct ObjectCloser {
  void operator()(bpf_object* obj) const { bpf_object__close(obj); }
};
using ObjectPtr = std::unique_ptr<bpf_object, ObjectCloser>;

std::string ErrorText(int err) {
  err = err < 0 ? -err : err;
  return std::string(strerrorname_np(err) ? strerrorname_np(err) : "error") + ": " + std::strerror(err);
}

// Writes the spec's `const volatile` values into the object's .rodata before load.
void ApplyConsts(bpf_object* obj, const BpfSpec& spec) {
  if (spec.consts.empty()) return;
  const struct btf* btf = bpf_object__btf(obj);
  bpf_map* rodata = nullptr;
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    std::string name = bpf_map__name(map);
    if (bpf_map__is_internal(map) && name.size() >= 7 && name.compare(name.size() - 7, 7, ".rodata") == 0)
      rodata = map;
  }
  int sec_id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -1;
  if (!rodata || sec_id < 0) throw RuntimeError(spec.object_name + ": BPF object has no .rodata to configure");
  size_t size = 0;
  const auto* initial = static_cast<const uint8_t*>(bpf_map__initial_value(rodata, &size));
  std::vector<uint8_t> data(initial, initial + size);
  const struct btf_type* sec = btf__type_by_id(btf, sec_id);
  std::map<std::string, bool> applied;
  const struct btf_var_secinfo* info = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); i++, info++) {
    const struct btf_type* var = btf__type_by_id(btf, info->type);
    std::string name = btf__name_by_offset(btf, var->name_off);
    auto it = spec.consts.find(name);
    if (it == spec.consts.end()) continue;
    if (it->second.size() != info->size || info->offset + info->size > size)
      throw RuntimeError(spec.object_name + ": size mismatch setting " + name);
    std::memcpy(data.data() + info->offset, it->second.data(), info->size);
    applied[name] = true;
  }
  for (const auto& [name, bytes] : spec.consts)
    if (!applied.count(name)) throw RuntimeError(spec.object_name + ": no const volatile variable " + name);
  if (bpf_map__set_initial_value(rodata, data.data(), data.size()) != 0)
    throw RuntimeError(spec.object_name + ": cannot set .rodata");
}

void ApplyMaxEntries(bpf_object* obj, const BpfSpec& spec) {
  for (const auto& [name, n] : spec.max_entries) {
    bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
    if (!map || bpf_map__set_max_entries(map, n) != 0)
      throw RuntimeError(spec.object_name + ": cannot size map " + name);
  }
}

}  // namespace

const char* AttachModeName(AttachMode mode) {
  switch (mode) {
    case AttachMode::TpBtf: return "tp_btf";
    case AttachMode::RawTp: return "raw_tp";
    case AttachMode::Tracepoint: return "tracepoint";
    case AttachMode::Fentry: return "fentry";
    case AttachMode::Kprobe: return "kprobe";
    case AttachMode::Iter: return "iter";
    case AttachMode::None: return "none";
  }
  return "none";
}

AttachMode ParseAttachMode(const std::string& name) {
  for (AttachMode m : {AttachMode::TpBtf, AttachMode::RawTp, AttachMode::Tracepoint, AttachMode::Fentry,
                       AttachMode::Kprobe})
    if (name == AttachModeName(m)) return m;
  throw UsageError("unknown attach mode \"" + name + "\" (tp_btf, raw_tp, tracepoint, fentry, kprobe)");
}

AttachMode AttachModeOfSection(const std::string& section) {
  auto prefix = section.substr(0, section.find('/'));
  if (prefix == "tp_btf") return AttachMode::TpBtf;
  if (prefix == "raw_tp" || prefix == "raw_tracepoint") return AttachMode::RawTp;
  if (prefix == "tracepoint" || prefix == "tp") return AttachMode::Tracepoint;
  if (prefix == "fentry" || prefix == "fexit") return AttachMode::Fentry;
  if (prefix == "kprobe" || prefix == "kretprobe") return AttachMode::Kprobe;
  if (prefix == "iter" || prefix == "iter.s") return AttachMode::Iter;
  return AttachMode::None;
}

BpfObject::BpfObject(const BpfSpec& spec) : spec_(spec) {
  libbpf_set_print(LibbpfPrint);
  EnsureTracefs();

  for (const auto& f : spec_.features) {
    bool enabled = std::find(spec_.disabled_features.begin(), spec_.disabled_features.end(), f.name) ==
                   spec_.disabled_features.end();
    features_.push_back({f, enabled, false});
  }
  auto feature_enabled = [&](const std::string& name) {
    for (const auto& f : features_)
      if (f.spec.name == name) return f.enabled;
    throw RuntimeError(spec_.object_name + ": hook names unknown feature " + name);
  };

  // Probe every hook's candidates in attach-mode order, each in a throwaway object.
  bool permission_denied = false;
  ObjectPtr sections(Open());
  for (const auto& hook : spec_.hooks) {
    if (!(hook.duty_cycle > 0 && hook.duty_cycle <= 1))
      throw RuntimeError(spec_.object_name + ": hook " + hook.name + " has a duty cycle outside (0, 1]");
    HookResult result{hook.name, hook.feature, "", AttachMode::None, hook.optional, hook.duty_cycle, "", {}};
    if (!feature_enabled(hook.feature)) {
      hooks_.push_back(result);
      continue;
    }
    std::vector<std::pair<AttachMode, std::string>> candidates;
    for (const auto& prog_name : hook.programs) {
      bpf_program* prog = bpf_object__find_program_by_name(sections.get(), prog_name.c_str());
      if (!prog) throw RuntimeError(spec_.object_name + ": no BPF program named " + prog_name);
      candidates.emplace_back(AttachModeOfSection(bpf_program__section_name(prog)), prog_name);
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [mode, prog_name] : candidates) {
      if (!spec_.allowed_modes.empty() && mode != AttachMode::Iter &&
          std::find(spec_.allowed_modes.begin(), spec_.allowed_modes.end(), mode) == spec_.allowed_modes.end()) {
        result.rejected.emplace_back(prog_name, "not allowed by --bpf.attach-modes");
        continue;
      }
      std::string error;
      if (TryCandidate(prog_name, &error)) {
        result.program = prog_name;
        result.mode = mode;
        break;
      }
      if (error.rfind("EPERM", 0) == 0 || error.rfind("EACCES", 0) == 0) permission_denied = true;
      result.rejected.emplace_back(prog_name, error);
      result.error = error;
    }
    hooks_.push_back(result);
  }
  sections.reset();

  bool any_attached = std::any_of(hooks_.begin(), hooks_.end(), [](const auto& h) { return !h.program.empty(); });
  if (!any_attached && permission_denied && !HasBpfPrivileges())
    throw RuntimeError("cannot load BPF programs: permission denied (run as root, or with CAP_BPF and CAP_PERFMON)");

  // Hooks of features that turned out unavailable are not loaded: they would only cost.
  ComputeFeatures();
  for (auto& h : hooks_) {
    if (h.program.empty() || FeatureAvailable(h.feature)) continue;
    h.rejected.emplace_back(h.program, "not loaded: feature " + h.feature + " is unavailable");
    h.error = h.rejected.back().second;
    h.program.clear();
    h.mode = AttachMode::None;
  }

  // The real object: only the winners load.
  obj_ = Open();
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj_) bpf_program__set_autoload(prog, false);
  for (const auto& h : hooks_)
    if (!h.program.empty())
      bpf_program__set_autoload(bpf_object__find_program_by_name(obj_, h.program.c_str()), true);
  if (int err = bpf_object__load(obj_)) {
    Close();
    throw RuntimeError(spec_.object_name + ": cannot load BPF object: " + ErrorText(err));
  }
  if (spec_.prepare) {
    try {
      spec_.prepare(*this);
    } catch (...) {
      Close();
      throw;
    }
  }
  for (auto& h : hooks_) {
    if (h.program.empty()) continue;
    bpf_link* link = bpf_program__attach(bpf_object__find_program_by_name(obj_, h.program.c_str()));
    if (!link) {
      h.error = ErrorText(errno);
      h.rejected.emplace_back(h.program, h.error);
      h.program.clear();
      h.mode = AttachMode::None;
      continue;
    }
    if (h.duty_cycle < 1) {
      bpf_link__destroy(link);  // attached once to know it attaches; from now on in its cycles
      cycled_.push_back({.hook = h.hook,
                         .program = bpf_object__find_program_by_name(obj_, h.program.c_str()),
                         .duty_cycle = h.duty_cycle});
      continue;
    }
    links_[h.hook] = link;
  }
  loaded_ = std::chrono::steady_clock::now();
  if (!cycled_.empty()) cycle_thread_ = std::thread([this] { RunCycles(); });
  ComputeFeatures();  // again, in case a final attach failed where its probe had worked
  // Every probe and the final load parsed the kernel's BTF (megabytes each): give the freed heap back.
  malloc_trim(0);
}

void BpfObject::ComputeFeatures() {
  for (auto& f : features_) {
    if (!f.enabled) continue;
    bool all_required = true, any = false;
    for (const auto& h : hooks_) {
      if (h.feature != f.spec.name) continue;
      if (h.mode != AttachMode::None) any = true;
      else if (!h.optional) all_required = false;
    }
    f.available = all_required && (any || !HasHooks(f.spec.name)) && !spec_.host_lacks.count(f.spec.name);
    for (const auto& [hook, modes] : f.spec.needs_hook_modes) {
      const HookResult* h = Hook(hook);
      if (!h || std::find(modes.begin(), modes.end(), h->mode) == modes.end()) f.available = false;
    }
  }
  for (auto& f : features_)
    for (const auto& need : f.spec.needs) f.available = f.available && FeatureAvailable(need);
}

BpfObject::~BpfObject() { Close(); }

void BpfObject::RunCycles() {
  using Clock = std::chrono::steady_clock;
  struct Switch {
    Clock::time_point at;
    CycledHook* hook;
    bool attach;
  };
  std::minstd_rand random(std::random_device{}());
  std::unique_lock lock(cycle_mutex_);
  for (auto start = Clock::now();; start = std::max(start + kHookCycle, Clock::now())) {
    std::vector<Switch> switches;
    for (auto& c : cycled_) {
      auto on = std::chrono::duration_cast<Clock::duration>(kHookCycle * c.duty_cycle);
      std::uniform_int_distribution<Clock::rep> offset(0, (kHookCycle - on).count());
      auto at = start + Clock::duration(offset(random));
      switches.push_back({at, &c, true});
      switches.push_back({at + on, &c, false});
    }
    std::sort(switches.begin(), switches.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
    switches.push_back({start + kHookCycle, nullptr, false});  // the cycle's end
    for (const auto& s : switches) {
      if (cycle_wake_.wait_until(lock, s.at, [this] { return cycle_stop_; })) return;
      if (!s.hook) break;
      CycledHook& c = *s.hook;
      // Outside the lock, which scrapes take for the times: a detach waits for the programs that run.
      lock.unlock();
      bpf_link* link = s.attach ? bpf_program__attach(c.program) : nullptr;
      int err = errno;
      if (!s.attach && c.link) bpf_link__destroy(c.link);
      lock.lock();
      auto now = Clock::now();
      if (!s.attach && c.link) c.attached += now - c.since;
      c.link = link;
      c.since = now;
      if (s.attach && !link && !c.warned) {
        c.warned = true;
        log::Warn("cannot attach a BPF program for its part of the cycle: it misses events until it can "
                  "(scry_bpf_program_attached_seconds_total)",
                  {{"hook", c.hook}, {"error", ErrorText(err)}});
      }
    }
  }
}

double BpfObject::AttachedSeconds(const std::string& hook) const {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(cycle_mutex_);
  for (const auto& c : cycled_) {
    if (c.hook != hook) continue;
    auto attached = c.attached;
    if (c.link) attached += now - c.since;
    return std::chrono::duration<double>(attached).count();
  }
  return links_.count(hook) ? std::chrono::duration<double>(now - loaded_).count() : 0;
}

void BpfObject::Close() {
  {
    std::lock_guard lock(cycle_mutex_);
    cycle_stop_ = true;
  }
  cycle_wake_.notify_all();
  if (cycle_thread_.joinable()) cycle_thread_.join();
  {
    std::lock_guard lock(cycle_mutex_);
    for (auto& c : cycled_)
      if (c.link) bpf_link__destroy(c.link);
    cycled_.clear();
  }
  for (auto& [hook, link] : links_) bpf_link__destroy(link);
  links_.clear();
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
}

bpf_object* BpfObject::Open() const {
  // No custom path unless --btf-path: libbpf then also parses the kernel's BTF for tp_btf attach targets,
  // and two parsed copies at once raise the load's peak memory by about 5 MB. A CO-RE relocation must
  // therefore never name a type vmlinux lacks (libbpf would look for it in module BTFs, which needs
  // CAP_SYS_ADMIN, and fail under a unit's CAP_BPF): ask whether a field of an existing type exists.
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = spec_.object_name.c_str(),
              .btf_custom_path = spec_.btf_path.empty() ? nullptr : spec_.btf_path.c_str());
  bpf_object* obj = bpf_object__open_mem(spec_.elf, spec_.elf_size, &opts);
  if (!obj) throw RuntimeError(spec_.object_name + ": cannot open BPF object: " + ErrorText(errno));
  try {
    ApplyConsts(obj, spec_);
    ApplyMaxEntries(obj, spec_);
  } catch (...) {
    bpf_object__close(obj);
    throw;
  }
  return obj;
}

bool BpfObject::TryCandidate(const std::string& program, std::string* error) const {
  ObjectPtr obj(Open());
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj.get()) bpf_program__set_autoload(prog, false);
  prog = bpf_object__find_program_by_name(obj.get(), program.c_str());
  bpf_program__set_autoload(prog, true);
  // The probe needs the maps to exist, not to hold anything.
  bpf_map* map;
  bpf_object__for_each_map(map, obj.get()) {
    auto type = bpf_map__type(map);
    bool sized = type != BPF_MAP_TYPE_RINGBUF && type != BPF_MAP_TYPE_PERF_EVENT_ARRAY &&
                 type != BPF_MAP_TYPE_TASK_STORAGE && type != BPF_MAP_TYPE_SK_STORAGE &&
                 type != BPF_MAP_TYPE_INODE_STORAGE;  // local storage maps have no size
    if (!bpf_map__is_internal(map) && sized) bpf_map__set_max_entries(map, 1);
  }
  if (int err = bpf_object__load(obj.get())) {
    *error = ErrorText(err);
    return false;
  }
  bpf_link* link = bpf_program__attach(prog);
  if (!link) {
    *error = ErrorText(errno);
    return false;
  }
  bpf_link__destroy(link);
  return true;
}

bool BpfObject::HasHooks(const std::string& feature) const {
  return std::any_of(hooks_.begin(), hooks_.end(), [&](const auto& h) { return h.feature == feature; });
}

bool BpfObject::FeatureAvailable(const std::string& feature) const {
  for (const auto& f : features_)
    if (f.spec.name == feature) return f.enabled && f.available;
  return false;
}

const HookResult* BpfObject::Hook(const std::string& name) const {
  for (const auto& h : hooks_)
    if (h.hook == name) return &h;
  return nullptr;
}

bool BpfObject::Usable() const {
  return std::all_of(features_.begin(), features_.end(),
                     [](const auto& f) { return !f.spec.required || f.available; });
}

int BpfObject::MapFd(const std::string& name) const {
  bpf_map* map = obj_ ? bpf_object__find_map_by_name(obj_, name.c_str()) : nullptr;
  if (!map) throw RuntimeError(spec_.object_name + ": no BPF map named " + name);
  return bpf_map__fd(map);
}

int BpfObject::LinkFd(const std::string& hook) const {
  auto it = links_.find(hook);
  return it == links_.end() ? -1 : bpf_link__fd(it->second);
}

int TracepointArgCount(const std::string& tracepoint, const std::string& btf_path) {
  struct btf* btf = btf_path.empty() ? btf__load_vmlinux_btf() : btf__parse(btf_path.c_str(), nullptr);
  if (!btf) return -1;
  int count = -1;
  int id = btf__find_by_name_kind(btf, ("btf_trace_" + tracepoint).c_str(), BTF_KIND_TYPEDEF);
  if (id > 0) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    t = btf__type_by_id(btf, t->type);  // pointer
    if (t && btf_is_ptr(t)) t = btf__type_by_id(btf, t->type);
    if (t && btf_is_func_proto(t)) count = btf_vlen(t) - 1;  // minus void *__data
  }
  btf__free(btf);
  return count;
}

bool BtfHas(int kind, const std::string& name, const std::string& member, const std::string& btf_path) {
  struct btf* btf = btf_path.empty() ? btf__load_vmlinux_btf() : btf__parse(btf_path.c_str(), nullptr);
  if (!btf) return false;
  bool found = false;
  int id = btf__find_by_name_kind(btf, name.c_str(), kind);
  if (id > 0) {
    found = member.empty();
    const struct btf_type* t = btf__type_by_id(btf, id);
    if (!found && (btf_is_struct(t) || btf_is_union(t))) {
      const struct btf_member* m = btf_members(t);
      for (int i = 0; i < btf_vlen(t) && !found; i++, m++) found = member == btf__name_by_offset(btf, m->name_off);
    }
  }
  btf__free(btf);
  return found;
}

bool KernelHasBpfAtomics() {
  // r0 = 0; *(u64 *)(r10 - 8) = r0; r1 = 1; r0 = cmpxchg((u64 *)(r10 - 8), r0, r1); r0 = 0; exit
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0, -8, 0},
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1},
      {BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_10, BPF_REG_1, -8, BPF_CMPXCHG},
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "scry_atomics", "GPL", insns, std::size(insns), nullptr);
  if (fd < 0) return errno != EINVAL;  // only the verifier's refusal says no: without privilege nothing loads
  close(fd);
  return true;
}

void EnsureTracefs() {
  struct stat st;
  if (stat("/sys/kernel/tracing/events", &st) == 0 || stat("/sys/kernel/debug/tracing/events", &st) == 0) return;
  if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0)
    log::Info("mounted tracefs at /sys/kernel/tracing for classic tracepoints");
  else
    log::Debug("tracefs is not mounted and could not be", {{"error", ErrorText(errno)}});
}

}  // namespace scry
