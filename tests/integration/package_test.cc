// Installed like a package: the .deb that cpack builds (its dependencies,
// files and conffiles, and the binary run from where it unpacks), and the
// systemd unit, whose ExecStart runs serve in the foreground with the sample
// config until SIGTERM.
#include <signal.h>

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

TEST(PackageTest, DebHasItsDependenciesFilesAndABinaryThatRunsFromWhereItUnpacks) {
  TempDir dir;
  RunResult packed =
      RunCommand("cpack -G DEB --config " SHARDCTL_BUILD_DIR "/CPackConfig.cmake -B " + dir.path());
  ASSERT_EQ(packed.exit_code, 0) << packed.out;
  std::string deb;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().extension() == ".deb") deb = entry.path().string();
  }
  ASSERT_FALSE(deb.empty()) << packed.out;

  RunResult depends = RunCommand("dpkg-deb -f " + deb + " Depends");
  ASSERT_EQ(depends.exit_code, 0) << depends.out;
  for (const char* library : {"libfmt9", "libstdc++6", "libc6"}) {
    EXPECT_NE(depends.out.find(library), std::string::npos) << depends.out;
  }
  // cpp-httplib is for the tests only: the binary speaks HTTP itself.
  EXPECT_EQ(depends.out.find("httplib"), std::string::npos) << depends.out;
  RunResult contents = RunCommand("dpkg-deb -c " + deb);
  for (const char* file : {"./usr/bin/shardctl", "./usr/lib/systemd/system/shardctl.service",
                           "./etc/shardctl/shardctl.toml", "./usr/share/man/man1/shardctl.1",
                           "./usr/share/bash-completion/completions/shardctl",
                           "./usr/share/zsh/vendor-completions/_shardctl",
                           "./usr/share/fish/vendor_completions.d/shardctl.fish"}) {
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

TEST(SystemdUnitTest, ExecStartRunsServeInTheForegroundUntilSigterm) {
  std::string unit = ReadFile(SHARDCTL_BUILD_DIR "/shardctl.service");
  EXPECT_NE(unit.find("\nRestart=on-failure\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nKillSignal=SIGTERM\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nStateDirectory=shardctl\n"), std::string::npos) << unit;
  std::smatch exec;
  ASSERT_TRUE(std::regex_search(unit, exec, std::regex("\nExecStart=(\\S+) ([^\n]*)\n"))) << unit;
  EXPECT_EQ(exec[1].str(), "/usr/bin/shardctl");  // the test preset installs under /usr

  // The unit's own command line, with the sample config from the source tree
  // and a state directory of the test's, on free ports.
  TempDir state;
  std::vector<std::string> args;
  std::istringstream words(exec[2].str());
  for (std::string word; words >> word;) {
    if (word == "/etc/shardctl/shardctl.toml") word = SHARDCTL_SOURCE_DIR "/dist/shardctl.toml";
    if (word == "${STATE_DIRECTORY}") word = state.path();
    args.push_back(word);
  }
  EXPECT_EQ(args.size(), 5u);
  for (const char* free_ports : {"--port", "0", "--shard-base-port", "0"})
    args.push_back(free_ports);
  ServerProcess serve(args);
  ASSERT_EQ(serve.WaitForListeners(4).size(), 4u) << serve.Stderr();
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.WaitForExit(10s), 0) << serve.Stderr();
  EXPECT_TRUE(std::filesystem::exists(state.path() + "/shard-0/meta"));
}

}  // namespace
}  // namespace shardctl::testing
