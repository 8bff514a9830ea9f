#include "scry/procnet.h"

#include <arpa/inet.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>

#include <cctype>
#include <cstring>
#include <sstream>
#include <vector>

namespace scry {

namespace {
std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') i++;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') j++;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}
}  // namespace

std::map<std::string, std::map<std::string, uint64_t>> ParseProcNetStats(std::string_view content) {
  std::map<std::string, std::map<std::string, uint64_t>> out;
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < content.size();) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    lines.push_back(content.substr(pos, end - pos));
    pos = end + 1;
  }
  for (size_t i = 0; i + 1 < lines.size(); i++) {
    auto names = Split(lines[i]), values = Split(lines[i + 1]);
    if (names.empty() || values.empty() || names[0] != values[0] || names[0].back() != ':') continue;
    if (names.size() != values.size()) continue;
    std::string prefix(names[0].substr(0, names[0].size() - 1));
    bool numeric = true;
    std::map<std::string, uint64_t> row;
    for (size_t k = 1; k < names.size() && numeric; k++) {
      std::string v(values[k]);
      char* end = nullptr;
      // snmp has signed fields (Tcp MaxConn -1): keep them as parsed, wrapped
      long long parsed = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') {
        numeric = false;
        break;
      }
      row[std::string(names[k])] = static_cast<uint64_t>(parsed);
    }
    if (!numeric) continue;
    out[prefix] = std::move(row);
    i++;  // the value line is consumed
  }
  return out;
}

std::string FormatAddress(int family, const uint8_t addr[16]) {
  char buf[INET6_ADDRSTRLEN] = {};
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == AF_INET6 && std::memcmp(addr, mapped, sizeof(mapped)) == 0)
    return inet_ntop(AF_INET, addr + 12, buf, sizeof(buf)) ? buf : "";
  if (family == AF_INET) return inet_ntop(AF_INET, addr, buf, sizeof(buf)) ? buf : "";
  if (family == AF_INET6) return inet_ntop(AF_INET6, addr, buf, sizeof(buf)) ? buf : "";
  return "";
}

void LabelCap::Begin() { seen_.clear(); }

const std::string& LabelCap::Map(const std::string& group, const std::string& value) {
  auto& named = named_[group];
  seen_[group].insert(value);
  auto it = named.find(value);
  if (it != named.end()) return *it;
  if (named.size() < max_) return *named.insert(value).first;
  return overflow_;
}

void LabelCap::End() {
  for (auto it = named_.begin(); it != named_.end();) {
    auto seen = seen_.find(it->first);
    if (seen == seen_.end()) {
      it = named_.erase(it);
      continue;
    }
    std::erase_if(it->second, [&](const std::string& v) { return !seen->second.count(v); });
    ++it;
  }
}

size_t LabelCap::slots() const {
  size_t n = 0;
  for (const auto& [group, values] : named_) n += values.size();
  return n;
}

std::map<int64_t, std::string> KernelEnumNames(const std::string& enum_name, const std::string& btf_path) {
  std::map<int64_t, std::string> out;
  struct btf* btf = btf_path.empty() ? btf__load_vmlinux_btf() : btf__parse(btf_path.c_str(), nullptr);
  if (!btf) return out;
  int id = btf__find_by_name_kind(btf, enum_name.c_str(), BTF_KIND_ENUM);
  if (id > 0) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    const struct btf_enum* e = btf_enum(t);
    for (int i = 0; i < btf_vlen(t); i++) out[e[i].val] = btf__name_by_offset(btf, e[i].name_off);
  }
  btf__free(btf);
  return out;
}

std::string EnumLabel(std::string_view name, std::string_view prefix) {
  if (name.substr(0, prefix.size()) == prefix) name.remove_prefix(prefix.size());
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace scry
