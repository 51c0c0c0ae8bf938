#include "cmd/help_format.h"

#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace shardctl::cmd {
namespace {

// An option's entry in the help: its first column ("--timeout SECONDS") and
// its description, which CLI11 puts on the next line when the column is wide.
struct Entry {
  std::string column;
  std::string description;
};

std::string Trim(const std::string& text) {
  size_t start = text.find_first_not_of(' ');
  if (start == std::string::npos) return "";
  return text.substr(start, text.find_last_not_of(' ') - start + 1);
}

// The entry whose first column starts with `name`, or nullopt.
std::optional<Entry> EntryOf(const std::string& help, const std::string& name) {
  std::vector<std::string> lines;
  std::istringstream stream(help);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line = Trim(lines[i]);
    if (!line.starts_with(name + " ") && line != name) continue;
    size_t gap = line.find("  ");
    if (gap != std::string::npos) return Entry{line.substr(0, gap), Trim(line.substr(gap))};
    return Entry{line, i + 1 < lines.size() ? Trim(lines[i + 1]) : ""};
  }
  return std::nullopt;
}

class HelpFormatterTest : public ::testing::Test {
 protected:
  HelpFormatterTest() { app_.formatter(std::make_shared<HelpFormatter>()); }

  Entry Help(const std::string& name) {
    std::optional<Entry> entry = EntryOf(app_.help(), name);
    EXPECT_TRUE(entry.has_value()) << name << " is not in\n" << app_.help();
    return entry.value_or(Entry{});
  }

  CLI::App app_{"test"};
  double seconds_ = 5;
  int shards_ = 3;
  std::string url_ = "http://127.0.0.1:4000";
  std::string fsync_ = "everysec";
  std::vector<std::string> urls_;
  std::optional<long> requests_;
  std::optional<double> duration_;
  std::string name_;
  bool json_ = false;
};

TEST_F(HelpFormatterTest, ShowsTheValueAsAWordAndTheDefaultInWords) {
  app_.add_option("--timeout", seconds_, "Seconds to wait")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app_.add_option("--shards", shards_, "Number of shards")
      ->type_name("N")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  Entry timeout = Help("--timeout");
  EXPECT_EQ(timeout.column, "--timeout SECONDS");
  EXPECT_EQ(timeout.description, "Seconds to wait (default: 5)");
  Entry shards = Help("--shards");
  EXPECT_EQ(shards.column, "--shards N");  // not "INT:INT in [1 - 1024]=3"
  EXPECT_EQ(shards.description, "Number of shards (default: 3)");
}

TEST_F(HelpFormatterTest, OneOfNamesTheWordsAndRefusesOthers) {
  OneOf(app_.add_option("--fsync", fsync_, "When to fsync"), {"always", "everysec", "no"})
      ->capture_default_str();
  Entry fsync = Help("--fsync");
  EXPECT_EQ(fsync.column, "--fsync always|everysec|no");
  EXPECT_EQ(fsync.description, "When to fsync (default: everysec)");
  EXPECT_THROW(app_.parse("--fsync sometimes"), CLI::ValidationError);
  app_.parse("--fsync always");
  EXPECT_EQ(fsync_, "always");
}

TEST_F(HelpFormatterTest, NamesTheEnvironmentVariableBeforeTheDefault) {
  app_.add_option("--url", url_, "The aggregator's address")
      ->type_name("URL")
      ->envname("SHARDCTL_URL")
      ->capture_default_str();
  Entry url = Help("--url");
  EXPECT_EQ(url.column, "--url URL");  // not "TEXT=... (Env:SHARDCTL_URL)"
  EXPECT_EQ(url.description,
            "The aggregator's address (default: $SHARDCTL_URL, else http://127.0.0.1:4000)");
}

TEST_F(HelpFormatterTest, SaysWhatExcludesWhatAndWhatIsRequired) {
  CLI::Option* requests = app_.add_option("-n,--requests", requests_, "Requests to send")
                              ->type_name("N")
                              ->default_str("100000");
  CLI::Option* duration =
      app_.add_option("-d,--duration", duration_, "Seconds to send for")->type_name("SECONDS");
  requests->excludes(duration);
  duration->excludes(requests);
  app_.add_option("name", name_, "The counter's name")->required();
  Entry n = Help("-n,--requests");
  EXPECT_EQ(n.column, "-n,--requests N");
  EXPECT_EQ(n.description, "Requests to send (default: 100000; not with --duration)");
  EXPECT_EQ(Help("-d,--duration").description, "Seconds to send for (not with --requests)");
  Entry name = Help("name");
  EXPECT_EQ(name.column, "name");  // a positional's name is its word
  EXPECT_EQ(name.description, "The counter's name (required)");
}

// CLI11 pads the column to 30 characters; one that fills it but one
// character would leave a single space before the description.
TEST_F(HelpFormatterTest, KeepsTheDescriptionTwoSpacesAwayOrOnTheNextLine) {
  OneOf(app_.add_option("--role", fsync_, "What this process runs"),
        {"all", "shard", "aggregator"});  // "  --role all|shard|aggregator": 29 characters
  app_.add_flag("--json", json_, "Print JSON");
  EXPECT_THAT(app_.help(), ::testing::HasSubstr("  --role all|shard|aggregator\n" +
                                                std::string(30, ' ') + "What this process runs\n"));
  EXPECT_THAT(app_.help(),
              ::testing::HasSubstr("  --json" + std::string(22, ' ') + "Print JSON\n"));
}

TEST_F(HelpFormatterTest, RepeatedOptionsEndInDotsAndFlagsHaveNoWord) {
  app_.add_option("--shard", urls_, "A shard's URL")->type_name("URL");
  app_.add_flag("--json", json_, "Print JSON");
  EXPECT_EQ(Help("--shard").column, "--shard URL ...");
  Entry json = Help("--json");
  EXPECT_EQ(json.column, "--json");
  EXPECT_EQ(json.description, "Print JSON");
}

}  // namespace
}  // namespace shardctl::cmd
