// Reading BPF maps from user space at scrape time.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace scry {

// How many CPUs per-CPU maps hold a value for (at least 1).
inline size_t PossibleCpus() {
  int n = libbpf_num_possible_cpus();
  return n > 0 ? static_cast<size_t>(n) : 1;
}

// Calls fn(key, value) for every entry of a hash map. Entries added or removed meanwhile may be missed.
template <typename K, typename V, typename F>
void ForEachEntry(int map_fd, F&& fn) {
  K key{}, next{};
  const K* prev = nullptr;
  V value{};
  while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(map_fd, &next, &value) == 0) fn(next, value);
    key = next;
    prev = &key;
  }
}

// Calls fn(key, values) for every entry of a per-CPU hash map; values holds one V per possible CPU.
template <typename K, typename V, typename F>
void ForEachPerCpuEntry(int map_fd, F&& fn) {
  std::vector<V> values(PossibleCpus());
  K key{}, next{};
  const K* prev = nullptr;
  while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(map_fd, &next, values.data()) == 0) fn(next, values);
    key = next;
    prev = &key;
  }
}

// Sum over CPUs of a u64 in a per-CPU array.
inline uint64_t SumPerCpu(int map_fd, uint32_t index) {
  int ncpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(ncpus > 0 ? ncpus : 1);
  uint64_t sum = 0;
  if (bpf_map_lookup_elem(map_fd, &index, values.data()) == 0)
    for (uint64_t v : values) sum += v;
  return sum;
}

// Runs a BPF iterator (the link fd of an attached iter/ program) and appends the fixed-size records it
// writes to out. False, with errno set, if it could not be run or read to the end.
template <typename T>
bool ReadIterator(int link_fd, std::vector<T>& out) {
  if (link_fd < 0) return false;
  int fd = bpf_iter_create(link_fd);
  if (fd < 0) return false;
  T rec;
  ssize_t n;
  while ((n = read(fd, &rec, sizeof(rec))) == sizeof(rec)) out.push_back(rec);
  int saved = errno;
  close(fd);
  errno = saved;
  return n == 0;
}

}  // namespace scry
