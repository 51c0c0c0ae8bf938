// deploy/kubernetes/ cannot drift from the binary: every shardctl command a
// manifest runs (in a container's command, or shown in a comment) names a
// real subcommand, and every option it passes is one that subcommand has.
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

namespace fs = std::filesystem;

// The shardctl command lines in `text`: container commands written as
// ["shardctl", "serve", ...] and lines of the form `shardctl cluster ...`.
std::vector<std::vector<std::string>> CommandLines(const std::string& text) {
  std::vector<std::vector<std::string>> commands;
  std::istringstream lines(text);
  const std::regex quoted("\"([^\"]*)\"");
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> words;
    if (size_t at = line.find("[\"shardctl\""); at != std::string::npos) {
      std::string array = line.substr(at);
      for (std::sregex_iterator it(array.begin(), array.end(), quoted), end; it != end; ++it) {
        words.push_back((*it)[1]);
      }
    } else if (size_t at = line.find("shardctl cluster "); at != std::string::npos) {
      std::istringstream split(line.substr(at));
      for (std::string word; split >> word && word != "\\";) words.push_back(word);
    }
    if (!words.empty()) commands.push_back(words);
  }
  return commands;
}

TEST(DeployTest, ManifestsUseOnlyCommandsAndOptionsThatExist) {
  const fs::path dir = fs::path(SHARDCTL_SOURCE_DIR) / "deploy" / "kubernetes";
  size_t checked = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream file(entry.path());
    std::stringstream text;
    text << file.rdbuf();
    for (const std::vector<std::string>& words : CommandLines(text.str())) {
      ASSERT_GE(words.size(), 2u);
      std::vector<std::string> help = {words[1]};
      if (words[1] == "cluster" && words.size() > 2) help.push_back(words[2]);
      help.push_back("--help");
      RunResult result = RunShardctl(help);
      ASSERT_EQ(result.exit_code, 0) << entry.path() << ": shardctl " << words[1] << " "
                                     << result.err;
      for (const std::string& word : words) {
        if (!word.starts_with("--")) continue;
        EXPECT_NE(result.out.find(word), std::string::npos)
            << entry.path().filename() << " passes " << word << " to shardctl " << words[1]
            << ", which has no such option";
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10u);
}

}  // namespace
}  // namespace shardctl::testing
