// Installed like a package: the .deb that cpack builds (its dependencies,
// files and conffiles, its paths under /usr and /etc whatever prefix the build
// was configured with, and the binary run from where it unpacks), an install
// to a prefix of one's own, and the systemd unit, whose ExecStart runs serve in
// the foreground with the sample config until SIGTERM.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

// Packs the build under test into a .deb in `dir`. Returns its path, or ""
// (with a test failure) if cpack failed.
std::string PackDeb(const TempDir& dir) {
  RunResult packed =
      RunCommand("cpack -G DEB --config " SHARDCTL_BUILD_DIR "/CPackConfig.cmake -B " + dir.path());
  EXPECT_EQ(packed.exit_code, 0) << packed.out;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().extension() == ".deb") return entry.path().string();
  }
  ADD_FAILURE() << "cpack made no .deb: " << packed.out;
  return "";
}

// Installs the build under test with `cmake --install --prefix <dir>/prefix`.
// Returns the prefix.
std::string InstallUnder(const TempDir& dir) {
  std::string prefix = dir.path() + "/prefix";
  RunResult installed = RunCommand("cmake --install " SHARDCTL_BUILD_DIR " --prefix " + prefix);
  EXPECT_EQ(installed.exit_code, 0) << installed.out;
  return prefix;
}

// The files below `root` (not the directories), relative to it
// ("bin/shardctl"), sorted.
std::vector<std::string> FilesBelow(const std::string& root) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.is_directory()) continue;
    files.push_back(std::filesystem::relative(entry.path(), root).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The unit's ExecStart: the program, and its arguments as one string.
struct ExecStart {
  std::string program;
  std::string args;
};
ExecStart ExecStartOf(const std::string& unit) {
  std::smatch exec;
  if (!std::regex_search(unit, exec, std::regex("\nExecStart=(\\S+) ([^\n]*)\n"))) {
    ADD_FAILURE() << "no ExecStart in the unit:\n" << unit;
    return {};
  }
  return {exec[1].str(), exec[2].str()};
}

TEST(PackageTest, DebHasItsDependenciesFilesAndABinaryThatRunsFromWhereItUnpacks) {
  TempDir dir;
  std::string deb = PackDeb(dir);
  ASSERT_FALSE(deb.empty());

  RunResult depends = RunCommand("dpkg-deb -f " + deb + " Depends");
  ASSERT_EQ(depends.exit_code, 0) << depends.out;
  for (const char* library : {"libfmt9", "libstdc++6", "libc6"}) {
    EXPECT_NE(depends.out.find(library), std::string::npos) << depends.out;
  }
  // cpp-httplib is for the tests only: the binary speaks HTTP itself.
  EXPECT_EQ(depends.out.find("httplib"), std::string::npos) << depends.out;
  RunResult contents = RunCommand("dpkg-deb -c " + deb);
  for (const char* file :
       {"./usr/bin/shardctl", "./usr/lib/systemd/system/shardctl.service",
        "./etc/shardctl/shardctl.toml", "./usr/share/man/man1/shardctl.1",
        "./usr/share/bash-completion/completions/shardctl",
        "./usr/share/zsh/vendor-completions/_shardctl",
        "./usr/share/fish/vendor_completions.d/shardctl.fish",
        "./usr/share/shardctl/grafana-dashboard.json", "./usr/share/shardctl/prometheus-rules.yml",
        "./usr/share/shardctl/prometheus.yml"}) {
    EXPECT_NE(contents.out.find(file), std::string::npos) << contents.out;
  }
  std::string control = dir.path() + "/control";
  ASSERT_EQ(RunCommand("dpkg-deb -e " + deb + " " + control).exit_code, 0);
  EXPECT_EQ(ReadFile(control + "/conffiles"), "/etc/shardctl/shardctl.toml\n");

  std::string root = dir.path() + "/root";
  RunResult unpacked = RunCommand("dpkg-deb -x " + deb + " " + root);
  ASSERT_EQ(unpacked.exit_code, 0) << unpacked.out;
  RunResult version = RunCommand(root + "/usr/bin/shardctl --version");
  EXPECT_EQ(version.exit_code, 0) << version.out;
  EXPECT_EQ(version.out, SHARDCTL_VERSION "\n");
  RunResult unreachable = RunCommand(root + "/usr/bin/shardctl total --url http://127.0.0.1:1");
  EXPECT_EQ(unreachable.exit_code, 3) << unreachable.out;
}

// A Debian package never installs into /usr/local: the .deb of a build
// configured with CMake's default prefix, /usr/local (as the test preset is),
// holds files under /usr and /etc only, and its unit names those paths.
TEST(PackageTest, InstallsOnlyUnderUsrAndEtcWhateverPrefixTheBuildWasConfiguredWith) {
  ASSERT_STRNE(SHARDCTL_INSTALL_PREFIX, "/usr")
      << "this test needs a build configured for another prefix than the package's, "
         "as the test preset's /usr/local";
  TempDir dir;
  std::string deb = PackDeb(dir);
  ASSERT_FALSE(deb.empty());

  RunResult contents = RunCommand("dpkg-deb -c " + deb);
  ASSERT_EQ(contents.exit_code, 0) << contents.out;
  std::istringstream lines(contents.out);
  for (std::string line; std::getline(lines, line);) {
    std::string path = line.substr(line.rfind(' ') + 1);  // "drwxr-xr-x root/root 0 ... ./usr/"
    EXPECT_TRUE(path == "./" || path.starts_with("./usr/") || path.starts_with("./etc/")) << line;
    EXPECT_FALSE(path.starts_with("./usr/local/")) << line;
  }
  std::string root = dir.path() + "/root";
  ASSERT_EQ(RunCommand("dpkg-deb -x " + deb + " " + root).exit_code, 0);
  ExecStart exec = ExecStartOf(ReadFile(root + "/usr/lib/systemd/system/shardctl.service"));
  EXPECT_EQ(exec.program, "/usr/bin/shardctl");
  EXPECT_EQ(exec.args, "serve --config /etc/shardctl/shardctl.toml --data-dir ${STATE_DIRECTORY}");
}

// `cmake --install --prefix DIR` puts every file under DIR, the config in
// DIR/etc, and a unit that names the binary and the config there.
TEST(InstallTest, APrefixOfOnesOwnHoldsEveryFileAndTheUnitNamesThem) {
  TempDir dir;
  std::string prefix = InstallUnder(dir);
  EXPECT_EQ(FilesBelow(prefix),
            (std::vector<std::string>{
                "bin/shardctl", "etc/shardctl/shardctl.toml", "lib/systemd/system/shardctl.service",
                "share/bash-completion/completions/shardctl",
                "share/fish/vendor_completions.d/shardctl.fish", "share/man/man1/shardctl.1",
                "share/shardctl/grafana-dashboard.json", "share/shardctl/prometheus-rules.yml",
                "share/shardctl/prometheus.yml", "share/zsh/vendor-completions/_shardctl"}));
  ExecStart exec = ExecStartOf(ReadFile(prefix + "/lib/systemd/system/shardctl.service"));
  EXPECT_EQ(exec.program, prefix + "/bin/shardctl");
  EXPECT_EQ(exec.args, "serve --config " + prefix +
                           "/etc/shardctl/shardctl.toml --data-dir ${STATE_DIRECTORY}");
}

// The unit's own command line, run as systemd would (with a state directory
// of the test's, on free ports), from an install to a prefix of the test's:
// the binary and the config file it names are the installed ones.
TEST(SystemdUnitTest, ExecStartRunsServeInTheForegroundUntilSigterm) {
  TempDir dir;
  std::string unit = ReadFile(InstallUnder(dir) + "/lib/systemd/system/shardctl.service");
  EXPECT_NE(unit.find("\nRestart=on-failure\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nKillSignal=SIGTERM\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nStateDirectory=shardctl\n"), std::string::npos) << unit;
  ExecStart exec = ExecStartOf(unit);
  ASSERT_TRUE(std::filesystem::exists(exec.program)) << exec.program;

  TempDir state;
  std::vector<std::string> args;
  std::istringstream words(exec.args);
  for (std::string word; words >> word;) {
    if (word == "${STATE_DIRECTORY}") word = state.path();
    args.push_back(word);
  }
  EXPECT_EQ(args.size(), 5u);
  for (const char* free_ports : {"--port", "0", "--shard-base-port", "0"})
    args.push_back(free_ports);
  ServerProcess serve(args, /*max_file_bytes=*/0, exec.program);
  ASSERT_EQ(serve.WaitForListeners(4).size(), 4u) << serve.Stderr();
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.WaitForExit(10s), 0) << serve.Stderr();
  EXPECT_TRUE(std::filesystem::exists(state.path() + "/shard-0/meta"));
}

}  // namespace
}  // namespace shardctl::testing
