// Helpers for network exporters: /proc/net/{netstat,snmp} parsing, address labels, a per-group cap on
// label values, kernel enum names from BTF.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace scry {

// /proc/net/netstat and /proc/net/snmp: pairs of lines "Prefix: name name ..." / "Prefix: value value ...".
// Result: prefix -> name -> value ("TcpExt" -> "ListenOverflows" -> 12). Malformed pairs are skipped.
std::map<std::string, std::map<std::string, uint64_t>> ParseProcNetStats(std::string_view content);

// An address from a BPF map as a label: family AF_INET (first 4 bytes used) or AF_INET6; IPv4-mapped
// IPv6 addresses print as IPv4. "" for an unknown family.
std::string FormatAddress(int family, const uint8_t addr[16]);

// Caps the distinct values per group (e.g. peers per workload): the first `max` values of a group keep
// their own label, later ones get `overflow`. A value keeps its slot while it is seen in every round
// (Begin(), Map() for each entry, End()); one not seen in a round gives its slot up.
class LabelCap {
 public:
  LabelCap(size_t max, std::string overflow) : max_(max), overflow_(std::move(overflow)) {}
  void Begin();
  const std::string& Map(const std::string& group, const std::string& value);
  void End();
  size_t slots() const;

 private:
  size_t max_;
  std::string overflow_;
  std::map<std::string, std::set<std::string>> named_, seen_;
};

// Names of a kernel enum's values from BTF (btf_path "" = the running kernel's), e.g.
// "skb_drop_reason" -> {2: "SKB_DROP_REASON_NOT_SPECIFIED", ...}. Empty when the enum is not there.
std::map<int64_t, std::string> KernelEnumNames(const std::string& enum_name, const std::string& btf_path = "");

// "SKB_DROP_REASON_NO_SOCKET" with prefix "SKB_DROP_REASON_" -> "no_socket".
std::string EnumLabel(std::string_view name, std::string_view prefix);

}  // namespace scry
