// shardctl top: the aggregator at a glance, refreshed every interval, as
// redis-cli --stat or htop: increments per second, their latency, each
// shard's state and part, the largest counters and how fast they change.
// On a terminal it redraws a screen in place (q quits); otherwise it prints
// one line per interval for scripts.
//
// Two threads: a sampler reads the aggregator at each tick (its requests may
// take up to --timeout), and the main thread waits for its samples, keys and
// signals, and draws. So q and Ctrl-C quit at once even when the server
// hangs, and a resize redraws at once.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "cmd/top_format.h"
#include "cmd/top_stats.h"
#include "core/prometheus_text.h"
#include "core/protocol.h"
#include "net/http_client.h"
#include "net/url.h"

namespace shardctl::cmd {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kMinInterval = 0.1;
constexpr double kMaxInterval = 86400;
constexpr int kDefaultTop = 10;
constexpr int kMaxTop = 10000;  // the most GET /counters?top= gives
// How long quitting waits for a sampler inside a request before leaving it.
constexpr auto kStopGrace = std::chrono::milliseconds(200);

struct TopOptions {
  ClientOptions client;
  double interval_seconds = 1;
  std::optional<int64_t> count;  // none: until q, Ctrl-C or a signal
  int top = kDefaultTop;
};

// --- Reading the aggregator ---------------------------------------------------

// A sample, or what kept it from being taken.
struct Outcome {
  std::optional<TopSample> sample;
  // kUnreachable (no answer) and kServerFailed (an answer top cannot use)
  // may pass, so top keeps trying once it has shown a sample; kRefused (a
  // 4xx: a token missing or wrong) will not.
  ExitCode failure = ExitCode::kOk;
  std::string message;
  bool not_running_hint = false;  // could not connect: say how to point elsewhere
  core::Status unreachable;       // why no answer came, when none did
};

Outcome Failure(ExitCode code, std::string message) {
  Outcome outcome;
  outcome.failure = code;
  outcome.message = std::move(message);
  return outcome;
}

bool Is2xx(const net::HttpReply& reply) { return reply.status >= 200 && reply.status < 300; }

// Reads one sample at a time from the aggregator over one keep-alive client.
// Not thread-safe: the sampler's thread only (the first sample aside).
class Reader {
 public:
  Reader(net::Url url, net::HttpClientOptions options, int top)
      : client_(std::move(url), std::move(options)), top_(top) {}

  Outcome Read() {
    TopSample sample;
    sample.at = Clock::now();
    sample.wall = std::chrono::system_clock::now();

    // Always the same four reads in the same order, so that each rate is
    // over the same span of time as `at` to `at` of the next sample.
    core::Result<net::HttpReply> metrics = client_.Get("/metrics");
    if (std::optional<Outcome> failed = Check("/metrics", metrics, {404})) return *failed;
    if (metrics->status == 404) {
      sample.metrics_error =
          "the server has no GET /metrics: it runs with --no-metrics, or is older";
    } else if (!Is2xx(*metrics)) {
      sample.metrics_error = fmt::format("GET /metrics answered {}: {}", metrics->status,
                                         core::ParseErrorMessage(metrics->body));
    } else if (auto parsed = core::ParsePrometheusText(metrics->body); parsed.ok()) {
      sample.metrics = ExtractIncrementMetrics(*parsed);
    } else {
      sample.metrics_error = parsed.status().message();
    }

    core::Result<net::HttpReply> total = client_.Get("/total");
    if (std::optional<Outcome> failed = Check("/total", total)) return *failed;
    if (!Is2xx(*total)) {
      sample.total_error = core::ParseErrorMessage(total->body);
    } else if (auto parsed = core::ParseTotalReply(total->body); parsed.ok()) {
      sample.total = parsed->total;
    } else {
      sample.total_error = parsed.status().message();
    }

    core::Result<net::HttpReply> shards = client_.Get("/shards");
    if (std::optional<Outcome> failed = Check("/shards", shards)) return *failed;
    if (!Is2xx(*shards)) {
      return Failure(ExitCode::kServerFailed,
                     fmt::format("the server failed to serve GET /shards ({}): {}", shards->status,
                                 core::ParseErrorMessage(shards->body)));
    }
    core::Result<std::vector<core::ShardState>> states = core::ParseShardStates(shards->body);
    if (!states.ok()) return Failure(ExitCode::kServerFailed, states.status().message());
    sample.shards = std::move(*states);

    core::Result<net::HttpReply> counters = client_.Get(fmt::format("/counters?top={}", top_));
    if (std::optional<Outcome> failed = Check("/counters", counters)) return *failed;
    if (!Is2xx(*counters)) {
      sample.counters_error = core::ParseErrorMessage(counters->body);
    } else if (auto parsed = core::ParseCounterList(counters->body); parsed.ok()) {
      sample.counters_complete = static_cast<int>(parsed->counters.size()) < top_;
      sample.counters = std::move(parsed->counters);
    } else {
      sample.counters_error = parsed.status().message();
    }

    Outcome outcome;
    outcome.sample = std::move(sample);
    return outcome;
  }

 private:
  // The failure of a request that keeps the sample from being taken: no
  // answer, or a 4xx other than those `allowed`. nullopt otherwise.
  std::optional<Outcome> Check(std::string_view path, const core::Result<net::HttpReply>& reply,
                               std::initializer_list<int> allowed = {}) {
    if (!reply.ok()) {
      Outcome outcome = Failure(ExitCode::kUnreachable, reply.status().message());
      outcome.not_running_hint = reply.status().code() == core::Code::kUnavailable;
      outcome.unreachable = reply.status();
      return outcome;
    }
    int status = reply->status;
    if (status < 400 || status >= 500 ||
        std::find(allowed.begin(), allowed.end(), status) != allowed.end()) {
      return std::nullopt;
    }
    std::string message = core::ParseErrorMessage(reply->body);
    if (status == 401) {
      return Failure(ExitCode::kRefused,
                     fmt::format("the server refused GET {} (401): {}; give its token with "
                                 "--token-file FILE or SHARDCTL_TOKEN",
                                 path, message));
    }
    return Failure(ExitCode::kRefused,
                   fmt::format("the server refused GET {} ({}): {}", path, status, message));
  }

  net::HttpClient client_;
  int top_;
};

// Takes a sample at every tick on a thread of its own, queues it and wakes
// the main thread by writing a 0 byte to `wake_fd`. Thread-safe.
class Sampler {
 public:
  Sampler(std::unique_ptr<Reader> reader, Clock::duration interval, Clock::time_point first_tick,
          int wake_fd)
      : shared_(std::make_shared<Shared>()) {
    shared_->reader = std::move(reader);
    shared_->interval = interval;
    shared_->wake_fd = wake_fd;
    thread_ = std::thread([shared = shared_, first_tick] { Loop(*shared, first_tick); });
  }

  ~Sampler() { Stop(); }
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // The samples taken since the last call, oldest first.
  std::deque<Outcome> Take() {
    std::lock_guard lock(shared_->mutex);
    return std::exchange(shared_->ready, {});
  }

  // Stops the thread. Returns false if it was still inside a request after
  // kStopGrace: it is left to finish on its own (the process is about to end).
  bool Stop() {
    if (!thread_.joinable()) return true;
    std::unique_lock lock(shared_->mutex);
    shared_->stop = true;
    shared_->changed.notify_all();
    bool finished =
        shared_->changed.wait_for(lock, kStopGrace, [this] { return shared_->finished; });
    lock.unlock();
    if (finished) {
      thread_.join();
    } else {
      thread_.detach();
    }
    return finished;
  }

 private:
  // What the thread and its owner share; the thread holds it alive, so a
  // detached thread never touches freed memory.
  struct Shared {
    std::unique_ptr<Reader> reader;
    Clock::duration interval{};
    int wake_fd = -1;
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<Outcome> ready;  // guarded by mutex
    bool stop = false;          // guarded by mutex
    bool finished = false;      // guarded by mutex
  };

  static void Loop(Shared& shared, Clock::time_point tick) {
    std::unique_lock lock(shared.mutex);
    for (;;) {
      if (shared.changed.wait_until(lock, tick, [&shared] { return shared.stop; })) break;
      lock.unlock();
      Outcome outcome = shared.reader->Read();
      lock.lock();
      shared.ready.push_back(std::move(outcome));
      char zero = 0;
      // A full pipe already holds a wake-up: nothing is lost.
      [[maybe_unused]] ssize_t written = ::write(shared.wake_fd, &zero, 1);
      // The next tick on the grid of the first; those missed (a slow server) are skipped.
      Clock::time_point now = Clock::now();
      while (tick <= now) tick += shared.interval;
    }
    shared.finished = true;
    shared.changed.notify_all();
  }

  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

// --- Signals ------------------------------------------------------------------

// The signals top handles; a handler writes the signal's number to the
// self-pipe that the main loop polls. SIGTSTP (Ctrl-Z) only with the screen,
// which must be left before the process stops.
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP};
int signal_pipe_write = -1;

void OnSignal(int number) {
  int saved = errno;
  char byte = static_cast<char>(number);
  [[maybe_unused]] ssize_t written = ::write(signal_pipe_write, &byte, 1);
  errno = saved;
}

// A non-blocking pipe, both ends close-on-exec: {read, write}.
bool MakePipe(int fds[2]) { return ::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0; }

// Installs OnSignal for kSignals (but SIGTSTP without `screen`); restores
// the previous handlers when destroyed.
class SignalHandlers {
 public:
  SignalHandlers(int write_fd, bool screen) {
    signal_pipe_write = write_fd;
    struct sigaction action = {};
    action.sa_handler = OnSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (size_t i = 0; i < std::size(kSignals); ++i) {
      installed_[i] = kSignals[i] != SIGTSTP || screen;
      if (installed_[i]) sigaction(kSignals[i], &action, &previous_[i]);
    }
  }
  ~SignalHandlers() {
    for (size_t i = 0; i < std::size(kSignals); ++i) {
      if (installed_[i]) sigaction(kSignals[i], &previous_[i], nullptr);
    }
  }
  SignalHandlers(const SignalHandlers&) = delete;
  SignalHandlers& operator=(const SignalHandlers&) = delete;

 private:
  struct sigaction previous_[std::size(kSignals)] = {};
  bool installed_[std::size(kSignals)] = {};
};

// Blocks kSignals in the calling thread while it lives, so that a thread
// started meanwhile inherits the block and the main thread alone takes them.
class BlockSignals {
 public:
  BlockSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (int number : kSignals) sigaddset(&set, number);
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~BlockSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  BlockSignals(const BlockSignals&) = delete;
  BlockSignals& operator=(const BlockSignals&) = delete;

 private:
  sigset_t previous_;
};

// --- The terminal -------------------------------------------------------------

void WriteAll(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

// The terminal while top's screen is on it: the alternate screen, the
// cursor hidden, and keys read one at a time without echo when stdin is the
// terminal. Restore() (or the destructor) puts everything back as it was.
class Screen {
 public:
  Screen() { Enter(); }
  ~Screen() { Restore(); }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  void Enter() {
    if (entered_) return;
    entered_ = true;
    keyboard_ = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &saved_) == 0;
    if (keyboard_) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);  // ISIG stays: Ctrl-C, Ctrl-Z
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    // The alternate screen, the cursor hidden, the screen cleared.
    WriteAll("\x1b[?1049h\x1b[?25l\x1b[2J");
  }

  void Restore() {
    if (!entered_) return;
    entered_ = false;
    WriteAll("\x1b[?25h\x1b[?1049l");  // the cursor shown, the normal screen back
    if (keyboard_) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_);
  }

  bool keyboard() const { return keyboard_; }

  // Columns and rows; 80x24 when the terminal does not say.
  static std::pair<int, int> Size() {
    winsize size = {};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_col == 0 || size.ws_row == 0) {
      return {80, 24};
    }
    return {size.ws_col, size.ws_row};
  }

  // Draws `lines` from the top left of a screen `rows` high, each on its
  // row (never wrapping), and clears the rows below. `clear` clears the
  // whole screen first (after a resize).
  static void Draw(const std::vector<std::string>& lines, int rows, bool clear) {
    std::string frame = clear ? "\x1b[2J" : "";
    for (size_t row = 0; row < lines.size(); ++row) {
      frame += fmt::format("\x1b[{};1H\x1b[2K{}", row + 1, lines[row]);
    }
    // Not after a line that ends in the last column: there "erase below"
    // would take that line's last character.
    if (static_cast<int>(lines.size()) < rows) {
      frame += fmt::format("\x1b[{};1H\x1b[J", lines.size() + 1);
    }
    WriteAll(frame);
  }

 private:
  bool entered_ = false;
  bool keyboard_ = false;
  termios saved_ = {};
};

// --- The main loop ------------------------------------------------------------

// How a run ended: the exit code, and an error to print once the terminal
// is back to normal ("" for none).
struct Ending {
  ExitCode code = ExitCode::kOk;
  std::string error;
};

class Top {
 public:
  Top(const TopOptions& options, bool screen) : options_(options), screen_mode_(screen) {}

  // Runs until q, a signal, --count intervals, or a failure that will not
  // pass. REQUIRES: `first` holds a sample.
  Ending Run(std::unique_ptr<Reader> reader, TopSample first) {
    int pipe_fds[2];
    if (!MakePipe(pipe_fds)) {
      return {ExitCode::kServerFailed,
              "cannot create a pipe: " + std::system_category().message(errno)};
    }
    struct Closer {
      int* fds;
      ~Closer() {
        ::close(fds[0]);
        ::close(fds[1]);
      }
    } closer{pipe_fds};
    SignalHandlers handlers(pipe_fds[1], screen_mode_);
    std::optional<Screen> screen;
    if (screen_mode_) screen.emplace();
    keyboard_ = screen && screen->keyboard();

    auto interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options_.interval_seconds));
    Clock::time_point first_tick = first.at + interval;
    Accept(std::move(first));
    if (screen) Redraw(true);

    std::optional<Sampler> sampler;
    {
      BlockSignals blocked;  // the sampler's thread inherits the block
      sampler.emplace(std::move(reader), interval, first_tick, pipe_fds[1]);
    }
    std::optional<Ending> ending;
    while (!ending) {
      pollfd fds[2] = {{pipe_fds[0], POLLIN, 0}, {keyboard_ ? STDIN_FILENO : -1, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        ending = Ending{ExitCode::kServerFailed,
                        "poll failed: " + std::system_category().message(errno)};
        break;
      }
      if (keyboard_ && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) ending = ReadKeys();
      bool resized = false, samples = false;
      if ((fds[0].revents & POLLIN) != 0) {
        char bytes[64];
        ssize_t n;
        while ((n = ::read(pipe_fds[0], bytes, sizeof(bytes))) > 0) {
          for (ssize_t i = 0; i < n; ++i) {
            int number = bytes[i];
            if (number == 0) {
              samples = true;
            } else if (number == SIGWINCH) {
              resized = true;
            } else if (number == SIGTSTP) {
              if (screen) Suspend(*screen);
              resized = true;
            } else if (!ending) {
              ending = Ending{};  // SIGINT, SIGTERM, SIGHUP: a normal end
            }
          }
        }
      }
      if (ending) break;
      if (samples) {
        for (Outcome& outcome : sampler->Take()) {
          ending = Handle(outcome);
          if (ending) break;
        }
      }
      if (!ending && screen && (samples || resized)) Redraw(resized);
    }
    bool stopped = sampler->Stop();
    if (screen) screen->Restore();
    if (!stopped) {
      // The sampler is inside a request that may last up to --timeout; the
      // user asked to quit now. Nothing is left to clean up but the output.
      if (!ending->error.empty()) Fail(ending->code, ending->error);
      std::fflush(stdout);
      std::fflush(stderr);
      std::_Exit(static_cast<int>(ending->code));
    }
    return *ending;
  }

 private:
  // q or Q quits; so does Ctrl-C when it arrives as a key.
  std::optional<Ending> ReadKeys() {
    char keys[64];
    ssize_t n = ::read(STDIN_FILENO, keys, sizeof(keys));
    if (n <= 0) {
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) return std::nullopt;
      keyboard_ = false;  // stdin closed: signals only from now on
      return std::nullopt;
    }
    for (ssize_t i = 0; i < n; ++i) {
      if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == '\x03') return Ending{};
    }
    return std::nullopt;
  }

  // Ctrl-Z: the terminal back to normal, stop; on SIGCONT, the screen again.
  void Suspend(Screen& screen) {
    screen.Restore();
    struct sigaction default_action = {}, ours = {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    sigaction(SIGTSTP, &default_action, &ours);
    ::raise(SIGTSTP);  // stops here until SIGCONT
    sigaction(SIGTSTP, &ours, nullptr);
    screen.Enter();
    keyboard_ = screen.keyboard();
  }

  // Takes the first sample, which has no rates yet.
  void Accept(TopSample sample) {
    view_ = MakeTopView(nullptr, sample);
    last_ = std::move(sample);
  }

  std::optional<Ending> Handle(Outcome& outcome) {
    if (!outcome.sample) {
      if (outcome.failure == ExitCode::kRefused) return Ending{outcome.failure, outcome.message};
      const std::string retry = fmt::format("retrying every {:g} s", options_.interval_seconds);
      if (!failing_since_) {
        failing_since_ = std::chrono::system_clock::now();
        if (!screen_mode_) {
          fmt::print(stderr, "shardctl: warning: {}; {}\n", outcome.message, retry);
          std::fflush(stderr);
        }
      }
      // What matters first, for a narrow terminal: since when, and that it retries.
      error_ = fmt::format("lost the server at {:%H:%M:%S}, {}: {}",
                           fmt::gmtime(std::chrono::system_clock::to_time_t(*failing_since_)),
                           retry, outcome.message);
      return std::nullopt;
    }
    if (failing_since_ && !screen_mode_) {
      fmt::print(stderr, "shardctl: the server answers again\n");
      std::fflush(stderr);
    }
    failing_since_.reset();
    error_.clear();
    view_ = MakeTopView(&*last_, *outcome.sample);
    last_ = std::move(*outcome.sample);
    ++intervals_;
    if (!screen_mode_) {
      std::string line = options_.client.json ? FormatTopJson(*view_) : FormatTopLine(*view_);
      std::fputs((line + "\n").c_str(), stdout);
      std::fflush(stdout);
    }
    if (options_.count && intervals_ >= *options_.count) {
      if (screen_mode_) Redraw(false);  // the last interval, shown before it ends
      return Ending{};
    }
    return std::nullopt;
  }

  void Redraw(bool clear) {
    auto [width, height] = Screen::Size();
    ScreenOptions screen_options{.url = options_.client.url,
                                 .interval_seconds = options_.interval_seconds,
                                 .width = width,
                                 .height = height,
                                 .color = UseColor(),
                                 .error = error_};
    Screen::Draw(FormatTopScreen(*view_, screen_options), height, clear);
  }

  const TopOptions& options_;
  const bool screen_mode_;
  bool keyboard_ = false;
  std::optional<TopSample> last_;  // the last sample read
  std::optional<TopView> view_;    // what is shown
  int64_t intervals_ = 0;          // views with rates shown
  std::optional<std::chrono::system_clock::time_point> failing_since_;
  std::string error_;  // why the last reading failed, while it does
};

ExitCode RunTop(const TopOptions& options) {
  if (ExitCode loaded = LoadTlsFiles(options.client.tls); loaded != ExitCode::kOk) return loaded;
  core::Result<net::Url> url = net::ParseUrl(options.client.url);
  if (!url.ok()) return Fail(ExitCode::kUsage, url.status().message());
  core::Result<std::string> token = ClientToken(options.client);
  if (!token.ok()) return Fail(ExitCode::kUsage, token.status().message());
  auto timeout =
      std::chrono::milliseconds(static_cast<int64_t>(options.client.timeout_seconds * 1000));
  auto reader = std::make_unique<Reader>(
      *url,
      net::HttpClientOptions{
          .connect_timeout = timeout, .request_timeout = timeout, .bearer_token = *token},
      options.top);

  // The first sample before the screen: a wrong --url or token is one
  // ordinary error line, as for the other commands.
  Outcome first = reader->Read();
  if (!first.sample) {
    std::string hint = first.not_running_hint
                           ? "; is 'shardctl serve' running there? (--url or SHARDCTL_URL "
                             "names another server)"
                           : "";
    if (!first.unreachable.ok()) return FailUnreachable(first.unreachable, hint);
    return Fail(first.failure, first.message + hint);
  }
  const bool screen = isatty(STDOUT_FILENO) == 1 && !options.client.json;
  Top top(options, screen);
  Ending ending = top.Run(std::move(reader), std::move(*first.sample));
  if (!ending.error.empty()) return Fail(ending.code, ending.error);
  return ending.code;
}

// A validator for --interval: seconds from kMinInterval to kMaxInterval.
CLI::Validator IntervalSeconds() {
  return CLI::Validator(
      [](std::string& text) {
        double seconds = 0;
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
        if (error != std::errc() || end != text.data() + text.size() ||
            !(seconds >= kMinInterval) || seconds > kMaxInterval) {
          return fmt::format("'{}' is not a number of seconds from {} to {} (e.g. 1 or 0.5)", text,
                             kMinInterval, kMaxInterval);
        }
        return std::string();
      },
      "SECONDS");
}

}  // namespace

void SetupTop(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<TopOptions>();
  CLI::App* command = app.add_subcommand(
      "top", "Watch the service: increments/s, latency, shards, busiest counters, every second");
  command
      ->add_option("-i,--interval", options->interval_seconds,
                   "Seconds between two readings, 0.1 or more")
      ->type_name("SECONDS")
      ->check(IntervalSeconds())
      ->capture_default_str();
  command
      ->add_option("-n,--count", options->count,
                   "Stop after N intervals (N lines when not on a terminal); default: run until "
                   "q or Ctrl-C")
      ->type_name("N")
      ->check(StrictInteger())
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000}));
  command->add_option("--top", options->top, "How many of the largest counters to show")
      ->type_name("K")
      ->check(StrictInteger())
      ->check(CLI::Range(1, kMaxTop))
      ->capture_default_str();
  AddClientOptions(*command, options->client);
  command->get_option("--json")->description(
      "Print one JSON object per interval instead of the screen or line");
  command->footer(
      "On a terminal: a screen redrawn in place every interval; q or Ctrl-C quits.\n"
      "Otherwise: one line per interval, e.g.\n"
      "  time=2026-12-02T20:51:03Z seconds=1.000 total=12345 total/s=61230.0 inc/s=2041.0\n"
      "  p50_ms=0.213 p99_ms=1.300 max_ms=2.500 shards_up=3 shards=3 top=page:home:170.0\n"
      "('-' for what is not known; inc/s and latency need the server's GET /metrics).\n"
      "Exits 3 when the server cannot be reached at the start, 1 when it refuses (a\n"
      "token missing or wrong); once running, it keeps trying while the server is away.\n"
      "Examples: shardctl top\n"
      "          shardctl top --interval 0.5 --top 20\n"
      "          shardctl top --count 60 > rates.log");
  command->callback([options, &runner] { runner = [options] { return RunTop(*options); }; });
}

}  // namespace shardctl::cmd
