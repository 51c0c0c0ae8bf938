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
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

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

// The flags of a fresh, quiet headless browser whose profile lives in `home`.
std::vector<std::string> ChromiumArgs(const std::string& home) {
  return {ChromiumPath(), "--headless=new", "--no-sandbox", "--disable-gpu",
          "--user-data-dir=" + home + "/profile", "--no-first-run", "--no-default-browser-check",
          "--disable-extensions", "--disable-background-networking", "--disable-component-update",
          "--disable-sync", "--disable-default-apps", "--password-store=basic", "--hide-scrollbars",
          "--window-size=" + std::to_string(kWindowWidth) + "," + std::to_string(kWindowHeight)};
}

// Starts `args` in a process group of its own (chromium starts helpers:
// zygote, renderers, GPU; the whole group is killed at the end), with HOME
// and the XDG directories in `home`, stdout to `stdout_fd` (/dev/null if
// -1), stderr to home/stderr, and `fd3` and `fd4` (if >= 0) as its
// descriptors 3 and 4. Returns its pid, or -1 (and fails the test).
pid_t Spawn(std::vector<std::string> args, const std::string& home, int stdout_fd, int fd3,
            int fd4) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string err_path = home + "/stderr";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    // Out of the way of 0..4 first (F_DUPFD leaves close-on-exec off).
    int pipe_in = fd3 >= 0 ? ::fcntl(fd3, F_DUPFD, 10) : -1;
    int pipe_out = fd4 >= 0 ? ::fcntl(fd4, F_DUPFD, 10) : -1;
    int out = stdout_fd >= 0 ? ::fcntl(stdout_fd, F_DUPFD, 10) : ::open("/dev/null", O_WRONLY);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    if (pipe_in >= 0) ::dup2(pipe_in, 3);
    if (pipe_out >= 0) ::dup2(pipe_out, 4);
    ::setenv("HOME", home.c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (home + "/config").c_str(), 1);
    ::setenv("XDG_CACHE_HOME", (home + "/cache").c_str(), 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (pid < 0) {
    ADD_FAILURE() << "cannot fork: " << std::strerror(errno);
    return -1;
  }
  ::setpgid(pid, pid);  // also here, so that the group exists before any kill
  return pid;
}

// Kills the process group of `pid` (the browser and its helpers), then
// reaps `pid`. Returns its wait status.
int KillGroupAndReap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
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
  std::vector<std::string> args = ChromiumArgs(home.path());
  args.push_back("--virtual-time-budget=" + std::to_string(virtual_time.count()));
  args.push_back("--dump-dom");
  if (!screenshot_path.empty()) args.push_back("--screenshot=" + screenshot_path);
  args.push_back(url);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "cannot create a pipe: " << std::strerror(errno);
    return result;
  }
  pid_t pid = Spawn(args, home.path(), out[1], -1, -1);
  ::close(out[1]);
  if (pid < 0) {
    ::close(out[0]);
    return result;
  }
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
  status = KillGroupAndReap(pid);
  result.finished = exited;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.err = ReadWholeFile(home.path() + "/stderr");
  return result;
}

BrowserSession::BrowserSession(const std::string& url) : home_(std::make_unique<TempDir>()) {
  int to[2], from[2];
  if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "cannot create pipes: " << std::strerror(errno);
    return;
  }
  std::vector<std::string> args = ChromiumArgs(home_->path());
  args.push_back("--remote-debugging-pipe");
  args.push_back(url);
  pid_ = Spawn(args, home_->path(), -1, to[0], from[1]);
  ::close(to[0]);
  ::close(from[1]);
  to_browser_ = to[1];
  from_browser_ = from[0];
  if (pid_ < 0) return;
  // The page the browser opened on `url`: attach to it.
  const auto deadline = Clock::now() + 30s;
  while (session_.empty() && Clock::now() < deadline) {
    std::optional<std::string> targets = Call("Target.getTargets", "{}", false, 10s);
    if (!targets) break;
    const Json listed = Json::parse(*targets).value("targetInfos", Json::array());
    for (const Json& target : listed) {
      if (target.value("type", "") != "page") continue;
      Json params = {{"targetId", target.value("targetId", "")}, {"flatten", true}};
      std::optional<std::string> attached = Call("Target.attachToTarget", params.dump(), false, 10s);
      if (attached) session_ = Json::parse(*attached).value("sessionId", "");
      break;
    }
    // The page target appears shortly after the browser starts.
    if (session_.empty()) std::this_thread::sleep_for(50ms);
  }
  if (session_.empty()) {
    ADD_FAILURE() << "cannot attach to the page in chromium; stderr:\n"
                  << ReadWholeFile(home_->path() + "/stderr");
  }
}

BrowserSession::~BrowserSession() {
  if (to_browser_ >= 0) ::close(to_browser_);
  if (from_browser_ >= 0) ::close(from_browser_);
  if (pid_ > 0) KillGroupAndReap(pid_);
}

std::optional<std::string> BrowserSession::Call(const std::string& method,
                                                const std::string& params_json, bool in_page,
                                                std::chrono::milliseconds timeout) {
  const int id = next_id_++;
  Json message = {{"id", id}, {"method", method}, {"params", Json::parse(params_json)}};
  if (in_page) message["sessionId"] = session_;
  std::string bytes = message.dump();
  bytes.push_back('\0');  // the pipe's messages end with a NUL byte
  for (std::string_view rest = bytes; !rest.empty();) {
    ssize_t n = ::write(to_browser_, rest.data(), rest.size());
    if (n <= 0) return std::nullopt;
    rest.remove_prefix(static_cast<size_t>(n));
  }
  std::optional<std::string> answer = ReadUntil(
      [id](const std::string& message) {
        Json json = Json::parse(message, nullptr, false);
        return json.is_object() && json.value("id", 0) == id;
      },
      Clock::now() + timeout);
  if (!answer) return std::nullopt;
  Json reply = Json::parse(*answer);
  if (!reply.contains("result")) return std::nullopt;
  return reply["result"].dump();
}

std::optional<std::string> BrowserSession::ReadUntil(
    const std::function<bool(const std::string&)>& wanted, Clock::time_point deadline) {
  for (auto it = unclaimed_.begin(); it != unclaimed_.end(); ++it) {
    if (wanted(*it)) {
      std::string message = std::move(*it);
      unclaimed_.erase(it);
      return message;
    }
  }
  for (;;) {
    // Answers and events, each ending in NUL.
    for (size_t end; (end = received_.find('\0')) != std::string::npos;) {
      std::string message = received_.substr(0, end);
      received_.erase(0, end + 1);
      if (wanted(message)) return message;
      unclaimed_.push_back(std::move(message));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{from_browser_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      return std::nullopt;
    }
    char buffer[65536];
    ssize_t n = ::read(from_browser_, buffer, sizeof(buffer));
    if (n <= 0) return std::nullopt;
    received_.append(buffer, static_cast<size_t>(n));
  }
}

bool BrowserSession::RunVirtualTime(std::chrono::milliseconds budget) {
  if (!ok()) return false;
  // As --virtual-time-budget: the clock stops while a request is under way.
  Json params = {{"policy", "pauseIfNetworkFetchesPending"}, {"budget", budget.count()}};
  if (!Call("Emulation.setVirtualTimePolicy", params.dump(), true, 10s)) return false;
  return ReadUntil(
             [](const std::string& message) {
               Json json = Json::parse(message, nullptr, false);
               return json.is_object() &&
                      json.value("method", "") == "Emulation.virtualTimeBudgetExpired";
             },
             Clock::now() + 30s)
      .has_value();
}

std::optional<std::string> BrowserSession::Evaluate(const std::string& expression,
                                                    std::chrono::milliseconds timeout) {
  if (!ok()) return std::nullopt;
  Json params = {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}};
  std::optional<std::string> result = Call("Runtime.evaluate", params.dump(), true, timeout);
  if (!result) return std::nullopt;
  Json json = Json::parse(*result);
  if (json.contains("exceptionDetails")) return std::nullopt;
  return json["result"].contains("value") ? json["result"]["value"].dump() : "null";
}

bool BrowserSession::WaitFor(const std::string& expression, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  do {
    if (Evaluate(expression) == "true") return true;
    // Polling the page: its changes have no descriptor to wait on.
    std::this_thread::sleep_for(50ms);
  } while (Clock::now() < deadline);
  return false;
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
