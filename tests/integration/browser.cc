#include "tests/integration/browser.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string ReadWholeFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string DecodeEntities(std::string_view text) {
  static const std::pair<std::string_view, std::string_view> kEntities[] = {
      {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"},
      {"&nbsp;", " "}};
  std::string out;
  for (size_t i = 0; i < text.size();) {
    bool replaced = false;
    if (text[i] == '&') {
      for (const auto& [entity, plain] : kEntities) {
        if (text.substr(i).starts_with(entity)) {
          out += plain;
          i += entity.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += text[i++];
  }
  return out;
}

// The element whose start tag begins at dom[start] ('<').
Element ParseElement(const std::string& dom, size_t start) {
  Element element;
  size_t i = start + 1;
  while (i < dom.size() && dom[i] != ' ' && dom[i] != '>') ++i;  // the tag name
  while (i < dom.size() && dom[i] != '>') {
    if (dom[i] == ' ' || dom[i] == '/') {
      ++i;
      continue;
    }
    size_t name_end = i;
    while (name_end < dom.size() && dom[name_end] != '=' && dom[name_end] != ' ' &&
           dom[name_end] != '>')
      ++name_end;
    std::string name = dom.substr(i, name_end - i);
    std::string value;
    i = name_end;
    if (i + 1 < dom.size() && dom[i] == '=' && dom[i + 1] == '"') {
      size_t close = dom.find('"', i + 2);
      if (close == std::string::npos) break;
      value = DecodeEntities(std::string_view(dom).substr(i + 2, close - i - 2));
      i = close + 1;
    }
    element.attributes[name] = value;
  }
  if (i < dom.size()) {
    size_t text_end = dom.find('<', i + 1);
    element.text = DecodeEntities(std::string_view(dom).substr(i + 1, text_end - i - 1));
  }
  return element;
}

}  // namespace

std::string ChromiumPath() {
  const char* path = std::getenv("SHARDCTL_CHROMIUM");
  return path != nullptr && *path != '\0' ? path : "/usr/bin/chromium";
}

PageResult LoadPage(const std::string& url, std::chrono::milliseconds virtual_time,
                    const std::string& screenshot_path) {
  PageResult result;
  TempDir home;
  const std::string profile = home.path() + "/profile";
  const std::string err_path = home.path() + "/stderr";
  std::vector<std::string> args = {
      ChromiumPath(), "--headless=new", "--no-sandbox", "--disable-gpu",
      "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
      "--disable-extensions", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-default-apps", "--password-store=basic", "--hide-scrollbars",
      "--window-size=" + std::to_string(kWindowWidth) + "," + std::to_string(kWindowHeight),
      "--virtual-time-budget=" + std::to_string(virtual_time.count()), "--dump-dom"};
  if (!screenshot_path.empty()) args.push_back("--screenshot=" + screenshot_path);
  args.push_back(url);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "cannot create a pipe: " << std::strerror(errno);
    return result;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    // A group of its own: chromium starts helpers (zygote, renderer, GPU),
    // and the whole group is killed at the end.
    ::setpgid(0, 0);
    ::dup2(out[1], STDOUT_FILENO);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(err, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::setenv("HOME", home.path().c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (home.path() + "/config").c_str(), 1);
    ::setenv("XDG_CACHE_HOME", (home.path() + "/cache").c_str(), 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  if (pid < 0) {
    ::close(out[0]);
    ADD_FAILURE() << "cannot fork: " << std::strerror(errno);
    return result;
  }
  ::setpgid(pid, pid);  // also here, so that the group exists before the kill below
  // Reads the DOM until the browser exits (its helpers may hold the pipe
  // open a little longer) or the time is up.
  const auto deadline = Clock::now() + kPageLoadTimeout;
  int status = 0;
  bool exited = false;
  bool closed = false;
  while (!exited && Clock::now() < deadline) {
    pollfd pfd{out[0], POLLIN, 0};
    if (!closed && ::poll(&pfd, 1, 50) > 0) {
      char buffer[65536];
      ssize_t n = ::read(out[0], buffer, sizeof(buffer));
      if (n > 0) {
        result.dom.append(buffer, static_cast<size_t>(n));
        continue;
      }
      closed = true;
    }
    // Not reaped yet (WNOWAIT): while the browser is a zombie its process
    // group cannot be reused, so the kill below reaches only its helpers.
    siginfo_t info{};
    exited = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
             info.si_pid == pid;
    // Once closed, the pipe has no descriptor to wait on: poll the exit.
    if (closed && !exited) std::this_thread::sleep_for(20ms);
  }
  // What the browser wrote before it exited is all in the pipe by now.
  while (exited && !closed) {
    pollfd pfd{out[0], POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0) break;
    char buffer[65536];
    ssize_t n = ::read(out[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    result.dom.append(buffer, static_cast<size_t>(n));
  }
  ::close(out[0]);
  ::kill(-pid, SIGKILL);  // the helpers, and the browser itself if it still runs
  ::waitpid(pid, &status, 0);
  result.finished = exited;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.err = ReadWholeFile(err_path);
  return result;
}

std::optional<Element> ElementById(const std::string& dom, const std::string& id) {
  const std::string needle = " id=\"" + id + "\"";
  size_t at = dom.find(needle);
  if (at == std::string::npos) return std::nullopt;
  size_t start = dom.rfind('<', at);
  if (start == std::string::npos) return std::nullopt;
  return ParseElement(dom, start);
}

std::vector<Element> TableRows(const std::string& dom, const std::string& table_id) {
  std::vector<Element> rows;
  size_t table = dom.find(" id=\"" + table_id + "\"");
  if (table == std::string::npos) return rows;
  size_t body = dom.find("<tbody", table);
  size_t body_end = dom.find("</tbody>", table);
  if (body == std::string::npos || body_end == std::string::npos) return rows;
  for (size_t at = dom.find("<tr", body); at != std::string::npos && at < body_end;
       at = dom.find("<tr", at + 3)) {
    rows.push_back(ParseElement(dom, at));
  }
  return rows;
}

std::optional<std::pair<int, int>> PngSize(const std::string& path) {
  std::string bytes = ReadWholeFile(path);
  const std::string_view kSignature("\x89PNG\r\n\x1a\n", 8);
  if (bytes.size() < 24 || !std::string_view(bytes).starts_with(kSignature) ||
      bytes.compare(12, 4, "IHDR") != 0) {
    return std::nullopt;
  }
  auto big_endian = [&](size_t at) {
    int value = 0;
    for (size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
    return value;
  };
  return std::make_pair(big_endian(16), big_endian(20));
}

}  // namespace shardctl::testing
