#include "scry/kubelet_api.h"

#define CURL_DISABLE_TYPECHECK
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "scry/errors.h"
#include "scry/log.h"
#include "scry/procnet.h"

namespace scry {

namespace {

using json = nlohmann::json;

std::string StringAt(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& ObjectAt(const json& object, const char* key) {
  static const json kEmpty = json::object();
  auto it = object.find(key);
  return it != object.end() && it->is_object() ? *it : kEmpty;
}

// "containerd://<64 hex>" -> "<64 hex>"; "" for anything else.
std::string ContainerIdOf(const std::string& status_id) {
  auto sep = status_id.find("://");
  if (sep == std::string::npos) return {};
  std::string id = status_id.substr(sep + 3);
  if (id.size() != 64 || id.find_first_not_of("0123456789abcdef") != std::string::npos) return {};
  return id;
}

// libcurl, opened only when a kubelet URL is configured: linked, it and the TLS, IDN, LDAP and Kerberos
// libraries it needs would add about 6 MB to the resident memory of every exporter.
struct Curl {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

// Opens libcurl once; throws RuntimeError when it cannot.
const Curl& OpenCurl() {
  static Curl curl;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      error = dlerror();
      return;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn && error.empty()) error = std::string("libcurl.so.4 has no ") + name;
    };
    sym(curl.global_init, "curl_global_init");
    sym(curl.easy_init, "curl_easy_init");
    sym(curl.easy_setopt, "curl_easy_setopt");
    sym(curl.easy_perform, "curl_easy_perform");
    sym(curl.easy_getinfo, "curl_easy_getinfo");
    sym(curl.easy_cleanup, "curl_easy_cleanup");
    sym(curl.easy_strerror, "curl_easy_strerror");
    sym(curl.slist_append, "curl_slist_append");
    sym(curl.slist_free_all, "curl_slist_free_all");
    if (error.empty() && curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) error = "curl_global_init failed";
  });
  if (!error.empty()) throw RuntimeError("--kubelet.url needs libcurl (Debian: libcurl4): " + error);
  return curl;
}

// An IP address as FormatAddress writes it, or nullopt.
std::optional<std::string> CanonicalAddress(const std::string& text) {
  uint8_t addr[16];
  if (inet_pton(AF_INET, text.c_str(), addr) == 1) return FormatAddress(AF_INET, addr);
  if (inet_pton(AF_INET6, text.c_str(), addr) == 1) return FormatAddress(AF_INET6, addr);
  return std::nullopt;
}

}  // namespace

PodListing ParsePodList(std::string_view text) {
  json list = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (list.is_discarded()) throw std::runtime_error("the kubelet's answer is not JSON");
  auto items = list.is_object() ? list.find("items") : list.end();
  if (!list.is_object() || items == list.end() || !(items->is_array() || items->is_null()))
    throw std::runtime_error("the kubelet's answer is not a PodList (no \"items\")");
  PodListing out;
  if (items->is_null()) return out;  // a node without pods
  for (const auto& item : *items) {
    if (!item.is_object()) continue;
    const json& meta = ObjectAt(item, "metadata");
    KubeletPod pod{StringAt(meta, "namespace"), StringAt(meta, "name"), StringAt(meta, "uid"), {}};
    if (pod.pod.empty() || pod.pod_uid.empty()) continue;
    const json& status = ObjectAt(item, "status");
    const json& spec = ObjectAt(item, "spec");
    auto host_network = spec.find("hostNetwork");
    pod.host_network = host_network != spec.end() && *host_network == true;
    std::vector<std::string> ips;
    if (auto pod_ips = status.find("podIPs"); pod_ips != status.end() && pod_ips->is_array())
      for (const auto& ip : *pod_ips)
        if (ip.is_object()) ips.push_back(StringAt(ip, "ip"));
    if (ips.empty()) ips.push_back(StringAt(status, "podIP"));
    for (const auto& ip : ips)
      if (auto address = CanonicalAddress(ip)) pod.addresses.push_back(*address);
    for (const char* kind : {"initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"}) {
      auto statuses = status.find(kind);
      if (statuses == status.end() || !statuses->is_array()) continue;
      for (const auto& c : *statuses) {
        if (!c.is_object()) continue;
        std::string name = StringAt(c, "name");
        if (name.empty()) continue;
        pod.containers.push_back(name);
        std::string id = ContainerIdOf(StringAt(c, "containerID"));
        if (!id.empty()) out.containers[id] = {pod.pod_namespace, pod.pod, pod.pod_uid, name, id};
      }
    }
    std::sort(pod.containers.begin(), pod.containers.end());
    out.pods[pod.pod_uid] = std::move(pod);
  }
  return out;
}

KubeletApi::KubeletApi(KubeletApiOptions options) : options_(std::move(options)) {
  if (options_.url.rfind("http://", 0) != 0 && options_.url.rfind("https://", 0) != 0)
    throw UsageError("--kubelet.url: " + options_.url + " is not an http:// or https:// URL");
  OpenCurl();
  thread_ = std::thread([this] { Run(); });
}

KubeletApi::~KubeletApi() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::optional<PodListing> KubeletApi::Latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

std::optional<PodListing> KubeletApi::List() {
  std::lock_guard lock(mutex_);
  wanted_ = true;
  wake_.notify_all();
  return latest_;
}

void KubeletApi::Run() {
  std::string last_error;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stop_ || wanted_; });
    if (stop_) return;
    wanted_ = false;
    lock.unlock();
    std::string error;
    auto listing = Fetch(&error);
    if (stop_) return;  // aborted by the stop: neither a failure nor news
    if (listing) {
      ok_++;
      if (!last_error.empty()) log::Info("the kubelet answers again", {{"url", options_.url}});
      last_error.clear();
    } else {
      failed_++;
      if (error != last_error) log::Warn("cannot list pods from the kubelet", {{"url", options_.url}, {"error", error}});
      last_error = error;
    }
    lock.lock();
    if (listing) latest_ = std::move(listing);
  }
}

namespace {
size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Progress callback: a non-zero return aborts the request, so that the exporter stops at once.
int AbortWhenStopping(void* stop, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(stop)->load() ? 1 : 0;
}
}  // namespace

std::optional<PodListing> KubeletApi::Fetch(std::string* error) const {
  const Curl& lib = OpenCurl();
  std::unique_ptr<CURL, decltype(lib.easy_cleanup)> curl(lib.easy_init(), lib.easy_cleanup);
  if (!curl) {
    *error = "curl_easy_init failed";
    return std::nullopt;
  }
  std::string token;
  if (!options_.token_file.empty()) {
    std::ifstream in(options_.token_file);
    std::stringstream text;
    text << in.rdbuf();
    token = text.str();
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (!in || token.empty()) {
      *error = "cannot read the token file " + options_.token_file;
      return std::nullopt;
    }
  }
  curl_slist* headers = lib.slist_append(nullptr, "Accept: application/json");
  if (!token.empty()) headers = lib.slist_append(headers, ("Authorization: Bearer " + token).c_str());
  std::unique_ptr<curl_slist, decltype(lib.slist_free_all)> header_list(headers, lib.slist_free_all);
  std::string body;
  char curl_error[CURL_ERROR_SIZE] = "";
  CURL* c = curl.get();
  lib.easy_setopt(c, CURLOPT_URL, options_.url.c_str());
  lib.easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  lib.easy_setopt(c, CURLOPT_WRITEFUNCTION, Append);
  lib.easy_setopt(c, CURLOPT_WRITEDATA, &body);
  lib.easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
  lib.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  lib.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  lib.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, AbortWhenStopping);
  lib.easy_setopt(c, CURLOPT_XFERINFODATA, &stop_);
  lib.easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(options_.timeout.count()));
  lib.easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // any the library decodes (gzip)
  lib.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!options_.ca_file.empty()) lib.easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (options_.insecure_skip_verify) {
    lib.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    lib.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode rc = lib.easy_perform(c);
  if (rc != CURLE_OK) {
    *error = curl_error[0] ? curl_error : lib.easy_strerror(rc);
    return std::nullopt;
  }
  long status = 0;
  lib.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    *error = "HTTP status " + std::to_string(status);
    if (status == 401) *error += " (no or a wrong token: see --kubelet.token-file)";
    if (status == 403) *error += " (the token's account may not get nodes/proxy)";
    return std::nullopt;
  }
  try {
    return ParsePodList(body);
  } catch (const std::exception& e) {
    *error = e.what();
    return std::nullopt;
  }
}

}  // namespace scry
