#include "scry/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>

namespace scry::log {
namespace {

Level g_level = Level::Info;
Format g_format = Format::Logfmt;
std::mutex g_mutex;

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
  }
  return "info";
}

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void AppendLogfmtValue(std::string& out, std::string_view s) {
  bool quote = s.empty() || s.find_first_of(" =\"\t\n") != std::string_view::npos;
  if (quote)
    AppendJsonString(out, s);
  else
    out += s;
}

}  // namespace

Level ParseLevel(std::string_view name) {
  if (name == "debug") return Level::Debug;
  if (name == "info") return Level::Info;
  if (name == "warn") return Level::Warn;
  if (name == "error") return Level::Error;
  throw std::invalid_argument("unknown log level \"" + std::string(name) + "\" (debug, info, warn, error)");
}

Format ParseFormat(std::string_view name) {
  if (name == "logfmt") return Format::Logfmt;
  if (name == "json") return Format::Json;
  throw std::invalid_argument("unknown log format \"" + std::string(name) + "\" (logfmt, json)");
}

void Configure(Level level, Format format) {
  std::lock_guard lock(g_mutex);
  g_level = level;
  g_format = format;
}

std::string FormatLine(Level level, Format format, std::string_view msg, const Fields& fields) {
  std::string out;
  if (format == Format::Json) {
    out = "{\"ts\":";
    AppendJsonString(out, Timestamp());
    out += ",\"level\":";
    AppendJsonString(out, LevelName(level));
    out += ",\"msg\":";
    AppendJsonString(out, msg);
    for (const auto& [k, v] : fields) {
      out += ',';
      AppendJsonString(out, k);
      out += ':';
      AppendJsonString(out, v);
    }
    out += '}';
  } else {
    out = "ts=" + Timestamp() + " level=" + std::string(LevelName(level)) + " msg=";
    AppendLogfmtValue(out, msg);
    for (const auto& [k, v] : fields) {
      out += ' ';
      out += k;
      out += '=';
      AppendLogfmtValue(out, v);
    }
  }
  return out;
}

void Write(Level level, std::string_view msg, const Fields& fields) {
  std::lock_guard lock(g_mutex);
  if (level < g_level) return;
  std::string line = FormatLine(level, g_format, msg, fields);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace scry::log
