// Structured logging to stderr in logfmt or JSON, as node_exporter does.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace scry::log {

enum class Level { Debug, Info, Warn, Error };
enum class Format { Logfmt, Json };

using Fields = std::vector<std::pair<std::string, std::string>>;

// Throws std::invalid_argument for an unknown name.
Level ParseLevel(std::string_view name);
Format ParseFormat(std::string_view name);

void Configure(Level level, Format format);

// One line: ts=<RFC 3339> level=<level> msg=<msg> <fields...>
std::string FormatLine(Level level, Format format, std::string_view msg, const Fields& fields);

void Write(Level level, std::string_view msg, const Fields& fields = {});
inline void Debug(std::string_view msg, const Fields& f = {}) { Write(Level::Debug, msg, f); }
inline void Info(std::string_view msg, const Fields& f = {}) { Write(Level::Info, msg, f); }
inline void Warn(std::string_view msg, const Fields& f = {}) { Write(Level::Warn, msg, f); }
inline void Error(std::string_view msg, const Fields& f = {}) { Write(Level::Error, msg, f); }

}  // namespace scry::log
