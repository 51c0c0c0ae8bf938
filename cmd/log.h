// The serve command's log: one line per event, with the time (UTC, to the
// millisecond) and the level, written to stderr (which --log-file points at
// a file). Thread-safe: each line is one write(2). Only cmd/ logs; core/,
// store/ and net/ report through their return values.
#ifndef SHARDCTL_CMD_LOG_H_
#define SHARDCTL_CMD_LOG_H_

#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "core/status.h"

namespace shardctl::cmd {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Parses "debug", "info", "warning" or "error".
core::Result<LogLevel> ParseLogLevel(std::string_view text);

// Lines below `level` are dropped. The default is kInfo.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Writes "2026-12-01T06:50:00.123Z info <message>\n" if `level` is enabled.
void LogLine(LogLevel level, std::string_view message);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (LogEnabled(level)) LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

// Points stdout and stderr at the end of the file at `path` (created 0644 if
// missing), so that everything the process prints goes there; called again
// (on SIGHUP) it reopens the file, for logrotate. Returns the failure, with
// the path, if the file cannot be opened; the old outputs then stay.
core::Status RedirectOutputTo(const std::string& path);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_LOG_H_
