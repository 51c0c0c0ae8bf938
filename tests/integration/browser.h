// Headless Chromium for the integration tests: loads a page, lets its
// scripts, timers and fetches run for a budget of virtual time, and returns
// the DOM as it then is (and a screenshot); plus a few readers for that DOM.
// Not thread-safe; run one browser at a time (it is heavy).
#ifndef SHARDCTL_TESTS_INTEGRATION_BROWSER_H_
#define SHARDCTL_TESTS_INTEGRATION_BROWSER_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace shardctl::testing {

// $SHARDCTL_CHROMIUM if set, else Debian's /usr/bin/chromium.
std::string ChromiumPath();

// The browser window, and so the screenshot.
inline constexpr int kWindowWidth = 1200;
inline constexpr int kWindowHeight = 900;
// The longest a page load may take, in real time; the browser is killed beyond it.
inline constexpr std::chrono::milliseconds kPageLoadTimeout{45000};

struct PageResult {
  bool finished = false;  // false: killed at the timeout, or could not start
  int exit_code = -1;
  std::string dom;  // the serialized DOM (--dump-dom)
  std::string err;  // what the browser said on stderr (mostly noise)
};

// Runs `chromium --headless=new` on `url` in a fresh profile (its own
// temporary HOME), in a process group of its own, killed at the end. The
// page gets `virtual_time` before its DOM is taken: the browser skips ahead
// whenever the page only waits on a timer, and stops the clock while a
// request is under way, so a 2 s poll loop runs budget/2 rounds, in much
// less real time (--virtual-time-budget). With `screenshot_path`, a PNG of
// the window is written there too.
PageResult LoadPage(const std::string& url, std::chrono::milliseconds virtual_time,
                    const std::string& screenshot_path = "");

// A headless Chromium driven over the DevTools protocol, on a pipe
// (--remote-debugging-pipe), for what one page load cannot show: a user
// typing into the page, in real time. One page; the browser's process group
// is killed when the session ends.
class BrowserSession {
 public:
  // Starts the browser on `url`. Fails the test (ADD_FAILURE) if it cannot
  // reach the page within 30 s; ok() then says false.
  explicit BrowserSession(const std::string& url);
  ~BrowserSession();
  BrowserSession(const BrowserSession&) = delete;
  BrowserSession& operator=(const BrowserSession&) = delete;
  bool ok() const { return !session_.empty(); }

  // Evaluates the JavaScript `expression` in the page and returns its value
  // as JSON text ("true", "\"up\"", ...), or nullopt if it threw or no answer
  // came within `timeout`.
  std::optional<std::string> Evaluate(const std::string& expression,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Evaluates `expression` every 50 ms until it is true; false if `timeout`
  // passed first.
  bool WaitFor(const std::string& expression,
               std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Lets `budget` of the page's time pass as fast as it can (virtual time,
  // as LoadPage), then stops its clock; returns once it has passed, false if
  // that takes more than 30 s of real time.
  bool RunVirtualTime(std::chrono::milliseconds budget);

 private:
  // Sends one command; returns its "result" object as JSON text, or nullopt.
  std::optional<std::string> Call(const std::string& method, const std::string& params_json,
                                  bool in_page, std::chrono::milliseconds timeout);
  // The first message (an answer or an event) for which `wanted` is true,
  // read when needed; nullopt at `deadline`. Others are kept for later calls.
  std::optional<std::string> ReadUntil(const std::function<bool(const std::string&)>& wanted,
                                       std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<TempDir> home_;
  pid_t pid_ = -1;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::string received_;                // bytes of messages not yet whole
  std::vector<std::string> unclaimed_;  // messages read but not yet asked for
  int next_id_ = 1;
  std::string session_;
};

// An element of a serialized DOM: its attributes and the text right after
// its start tag (up to the next tag).
struct Element {
  std::map<std::string, std::string> attributes;
  std::string text;
  bool Has(const std::string& name) const { return attributes.contains(name); }
  std::string Attr(const std::string& name) const {
    auto it = attributes.find(name);
    return it == attributes.end() ? std::string() : it->second;
  }
};

// The element with id="`id`", if any.
std::optional<Element> ElementById(const std::string& dom, const std::string& id);

// The <tr> elements in the <tbody> of the table with id="`table_id`", in
// order (empty if there is no such table).
std::vector<Element> TableRows(const std::string& dom, const std::string& table_id);

// The width and height in a PNG file's header, or nullopt if `path` is not a
// PNG file.
std::optional<std::pair<int, int>> PngSize(const std::string& path);

}  // namespace shardctl::testing

#endif  // SHARDCTL_TESTS_INTEGRATION_BROWSER_H_
