// The help, the man page and the shell completions, checked against the CLI
// itself: every subcommand and long option that `--help` prints must be
// documented in man/shardctl.1 and completed by completions/*, with the value
// named by the same word and the same choices everywhere; the help must name
// values with words, not CLI11's type names; the man page must render without
// warnings, and the bash and fish completions must complete as a user would
// see it. An option added to the CLI without documentation fails here.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using ::testing::IsSupersetOf;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

using Words = std::set<std::string>;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

// Every long option ("--name") in `text`.
Words LongOptionsIn(const std::string& text) {
  static const std::regex kLongOption("--[a-z][a-z0-9-]*");
  Words options;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kLongOption);
       it != std::sregex_iterator(); ++it) {
    options.insert(it->str());
  }
  return options;
}

// Runs `args` (argv[0] looked up in PATH) to completion in `cwd`, with `env`
// added to the environment; stdout and stderr go through files, so a chatty
// program cannot block on a full pipe.
RunResult RunProgram(const std::vector<std::string>& args, const std::string& cwd = ".",
                     const std::map<std::string, std::string>& env = {}) {
  TempDir outputs;
  const std::string out_path = outputs.path() + "/out", err_path = outputs.path() + "/err";
  std::vector<std::string> command = {"timeout", "60"};
  command.insert(command.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : command) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0 || ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  RunResult result;
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) {
    ADD_FAILURE() << "cannot run " << args[0];
    return result;
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadExistingFile(out_path);
  result.err = ReadExistingFile(err_path);
  return result;
}

bool Installed(const std::string& program) {
  return RunProgram({"sh", "-c", "command -v \"$0\" >/dev/null", program}).exit_code == 0;
}

// An option's long name and the word that names its value ("" for a flag).
using ValueWords = std::map<std::string, std::string>;

// The words of `text`: its runs of lower-case letters, digits and dashes.
std::vector<std::string> WordsOf(const std::string& text) {
  static const std::regex kWord("[a-z0-9-]+");
  std::vector<std::string> words;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kWord);
       it != std::sregex_iterator(); ++it) {
    words.push_back(it->str());
  }
  return words;
}

// The CLI as its --help describes it. A command whose help lists
// "Subcommands:" has those as commands of their own, named by both words
// ("cluster move"), with their own options and value words.
struct Cli {
  std::vector<std::string> commands;     // every command, in the order --help lists them
  Words global_options;                  // long options of `shardctl --help`
  std::map<std::string, Words> options;  // command -> long options of its --help
  // command ("" for shardctl itself) -> its --help, its options' value words,
  // and the subcommands its help lists ("init", ... for "cluster")
  std::map<std::string, std::string> help;
  std::map<std::string, ValueWords> values;
  std::map<std::string, std::vector<std::string>> subcommands;

  // What the docs may name for `command`: its options and the global ones.
  Words Allowed(const std::string& command) const {
    Words allowed = options.at(command);
    allowed.insert(global_options.begin(), global_options.end());
    return allowed;
  }

  // The commands that `text` names, the longest where one continues another:
  // "cluster init, cluster status and status" names "cluster init", "cluster
  // status" and "status", but not "cluster".
  Words CommandsNamedIn(const std::string& text) const {
    const std::vector<std::string> words = WordsOf(text);
    Words named;
    for (size_t i = 0; i < words.size(); ++i) {
      const std::string command = CommandAt(words, i);
      if (command.empty()) continue;
      named.insert(command);
      i += WordsOf(command).size() - 1;  // past its other words
    }
    return named;
  }

  // The command that `text` starts with, the longest one ("cluster move" of
  // "cluster move shard --to node"); "" if it starts with none.
  std::string CommandAtStartOf(const std::string& text) const {
    return CommandAt(WordsOf(text), 0);
  }

  // The longest command that words[first], words[first + 1], ... spell; "" if none.
  std::string CommandAt(const std::vector<std::string>& words, size_t first) const {
    std::string longest, candidate;
    for (size_t i = first; i < words.size(); ++i) {
      candidate += (i == first ? "" : " ") + words[i];
      if (std::find(commands.begin(), commands.end(), candidate) != commands.end()) {
        longest = candidate;
      }
    }
    return longest;
  }
};

// The first column of each option line of CLI11's help, the lines that start
// with "-": "-k,--counter NAME" of "  -k,--counter NAME   The counter's name".
std::vector<std::string> OptionColumnsOfHelp(const std::string& help) {
  std::vector<std::string> columns;
  for (const std::string& line : Lines(help)) {
    size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos || line[start] != '-') continue;
    size_t end = line.find("  ", start);
    columns.push_back(line.substr(start, end == std::string::npos ? end : end - start));
  }
  return columns;
}

// The long options of the help and the words after them: "-k,--counter NAME"
// gives "--counter" -> "NAME", "--json" gives "--json" -> "".
ValueWords ValueWordsOfHelp(const std::string& help) {
  ValueWords values;
  for (const std::string& column : OptionColumnsOfHelp(help)) {
    std::istringstream words(column);
    std::string names, value;
    words >> names >> value;
    for (const std::string& option : LongOptionsIn(names)) values[option] = value;
  }
  return values;
}

Words OptionsOfHelp(const std::string& help) {
  Words options;
  for (const auto& [option, value] : ValueWordsOfHelp(help)) options.insert(option);
  return options;
}

// The first word of each line under "Subcommands:", up to a blank line.
std::vector<std::string> CommandsOfHelp(const std::string& help) {
  std::vector<std::string> commands;
  bool in_list = false;
  for (const std::string& line : Lines(help)) {
    if (line.starts_with("Subcommands:")) {
      in_list = true;
    } else if (in_list && line.find_first_not_of(' ') == std::string::npos) {
      break;
    } else if (in_list) {
      std::istringstream words(line);
      std::string command;
      words >> command;
      commands.push_back(command);
    }
  }
  return commands;
}

// Reads `shardctl COMMAND --help` into `cli`, then the help of each
// subcommand it lists. REQUIRES: `command` is "" (shardctl itself) or a
// command's words ("cluster move").
void ReadHelp(const std::string& command, Cli& cli) {
  std::vector<std::string> args;
  std::istringstream words(command);
  for (std::string word; words >> word;) args.push_back(word);
  args.push_back("--help");
  RunResult help = RunShardctl(args);
  EXPECT_EQ(help.exit_code, 0) << "shardctl " << command << " --help: " << help.err;
  if (command.empty()) {
    cli.global_options = OptionsOfHelp(help.out);
  } else {
    cli.commands.push_back(command);
    cli.options[command] = OptionsOfHelp(help.out);
  }
  cli.help[command] = help.out;
  cli.values[command] = ValueWordsOfHelp(help.out);
  cli.subcommands[command] = CommandsOfHelp(help.out);
  for (const std::string& sub : cli.subcommands[command]) {
    ReadHelp(command.empty() ? sub : command + " " + sub, cli);
  }
}

const Cli& TheCli() {
  static const Cli* cli = [] {
    auto* parsed = new Cli;
    ReadHelp("", *parsed);
    return parsed;
  }();
  return *cli;
}

// Guards the parsing above: a help format it no longer understands must not
// turn every check below into a check of nothing.
TEST(DocsTest, HelpParsingFindsTheCommandsAndTheirOptions) {
  const Cli& cli = TheCli();
  EXPECT_THAT(cli.commands, IsSupersetOf({"serve", "inc", "total", "stop", "cluster",
                                          "cluster init", "cluster move", "cluster drain"}));
  EXPECT_THAT(cli.subcommands.at(""), IsSupersetOf({"serve", "inc", "cluster"}));
  EXPECT_THAT(
      cli.subcommands.at("cluster"),
      UnorderedElementsAre("init", "status", "move", "rebalance", "drain", "promote", "reshard"));
  EXPECT_THAT(cli.subcommands.at("cluster move"), ::testing::IsEmpty());
  EXPECT_THAT(cli.global_options, IsSupersetOf({"--help", "--version", "--config"}));
  EXPECT_THAT(cli.options.at("serve"),
              IsSupersetOf({"--fsync", "--shard-base-port", "--etcd", "--help"}));
  EXPECT_THAT(cli.options.at("cluster"), UnorderedElementsAre("--help"));
  EXPECT_THAT(cli.options.at("cluster move"), IsSupersetOf({"--to", "--etcd", "--help"}));
  EXPECT_THAT(cli.options.at("inc"), IsSupersetOf({"--counter", "--url"}));
  EXPECT_EQ(cli.values.at("inc").at("--counter"), "NAME");
  EXPECT_EQ(cli.values.at("inc").at("--json"), "");
  EXPECT_EQ(cli.values.at("serve").at("--fsync"), "always|everysec|no");
  EXPECT_EQ(cli.values.at("cluster move").at("--to"), "NODE");
  EXPECT_EQ(cli.CommandsNamedIn("Options of cluster init, cluster status and status"),
            (Words{"cluster init", "cluster status", "status"}));
}

// --- The help -----------------------------------------------------------------

// The description of the help's entry whose first column is `column`, which
// CLI11 puts on the next line when the column is wide; "" if there is none.
std::string DescriptionOf(const std::string& help, const std::string& column) {
  std::vector<std::string> lines = Lines(help);
  for (size_t i = 0; i < lines.size(); ++i) {
    size_t start = lines[i].find_first_not_of(' ');
    if (start == std::string::npos || lines[i].compare(start, column.size(), column) != 0) continue;
    std::string rest = lines[i].substr(start + column.size());
    if (rest.empty() && i + 1 < lines.size()) rest = lines[i + 1];
    if (!rest.empty() && rest[0] != ' ') continue;  // a longer column
    size_t text = rest.find_first_not_of(' ');
    return text == std::string::npos ? "" : rest.substr(text);
  }
  return "";
}

// Each value is named by a word, as in redis-cli, curl and git ("--timeout
// SECONDS", "--fsync always|everysec|no"), never by CLI11's type names and
// validator chains ("--timeout FLOAT:POSITIVE=5", "--window INT:INT").
TEST(HelpTest, NamesEveryValueWithAWordNotACli11Type) {
  static const std::regex kCli11Type(
      "\\b(INT|UINT|FLOAT|DOUBLE|TEXT|NUMBER|BOOLEAN|POSITIVE|NONNEGATIVE|ENUM)\\b");
  static const std::regex kColumn(
      "(-[a-zA-Z],)?--[a-z][a-z0-9-]*"                                    // the names
      "( ([A-Z]+|[a-z][a-z0-9-]*(\\|[a-z][a-z0-9-]*)+)( \\.\\.\\.)?)?");  // WORD or a|b, maybe ...
  for (const auto& [command, help] : TheCli().help) {
    SCOPED_TRACE("shardctl " + command + " --help");
    for (const std::string& line : Lines(help)) {
      EXPECT_FALSE(std::regex_search(line, kCli11Type)) << line;
    }
    for (const std::string& column : OptionColumnsOfHelp(help)) {
      EXPECT_TRUE(std::regex_match(column, kColumn)) << "'" << column << "'";
    }
  }
}

// Defaults are said in words after the description, the same way for every
// option of every command, with the environment variable that overrides one.
TEST(HelpTest, SaysDefaultsInWords) {
  struct Case {
    std::string command, column, description_ends;
  };
  for (const Case& c : std::vector<Case>{
           {"inc", "--timeout SECONDS", "Seconds to wait for the answer (default: 5)"},
           {"stop", "--timeout SECONDS", "Seconds to wait for it to exit (default: 10)"},
           {"inc", "--retries N", "(default: 3)"},
           {"serve", "--shards N", "Number of shards (default: 3)"},
           {"serve", "--shard-timeout SECONDS", "(default: 2)"},
           {"serve", "--fsync always|everysec|no", "(default: everysec)"},
           {"serve", "--port PORT", "0 picks a free port"},
           {"total", "--url URL", "(default: $SHARDCTL_URL, else http://127.0.0.1:4000)"},
           {"bench", "-n,--requests N", "(default: 100000; not with --duration)"},
           {"bench", "-d,--duration SECONDS", "(not with --requests)"},
           {"", "--config FILE", "(command-line options win)"},
           {"serve", "--lease SECONDS", "(default: 2)"},
           {"cluster status", "--etcd URL",
            "(default: $SHARDCTL_ETCD, else http://127.0.0.1:2379)"},
           {"cluster move", "--copy-timeout SECONDS", "(default: 300)"},
           {"cluster move", "--to NODE", "(required)"},
       }) {
    EXPECT_THAT(DescriptionOf(TheCli().help.at(c.command), c.column),
                ::testing::EndsWith(c.description_ends))
        << "shardctl " << c.command << " --help: " << c.column;
  }
}

// --- The man page -----------------------------------------------------------

// A line of roff source as text: font escapes dropped, "\-" as "-".
std::string RoffText(std::string line) {
  static const std::regex kFont(R"(\\f(\[[A-Z]*\]|[A-Z]))");
  line = std::regex_replace(line, kFont, "");
  static const std::regex kEscapedMinus(R"(\\-)");
  line = std::regex_replace(line, kEscapedMinus, "-");
  static const std::regex kZeroWidth(R"(\\&)");
  return std::regex_replace(line, kZeroWidth, "");
}

// A section (.SH) or subsection (.SS) of the man page and the tags of its
// .TP paragraphs, as text.
struct ManSection {
  std::string section;     // "OPTIONS"
  std::string subsection;  // "Options of serve", or "" before the first .SS
  std::vector<std::string> tags;
};

std::vector<ManSection> ParseManPage(const std::string& source) {
  std::vector<ManSection> sections;
  std::vector<std::string> lines = Lines(source);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.starts_with(".SH ")) {
      sections.push_back({RoffText(line.substr(4)), "", {}});
    } else if (line.starts_with(".SS ") && !sections.empty()) {
      sections.push_back({sections.back().section, RoffText(line.substr(4)), {}});
    } else if ((line == ".TP" || line == ".TQ") && i + 1 < lines.size() && !sections.empty()) {
      std::string tag = RoffText(lines[i + 1]);
      if (tag.starts_with(".")) tag = tag.substr(tag.find(' ') + 1);  // drop the font macro
      tag.erase(std::remove(tag.begin(), tag.end(), '"'), tag.end());
      sections.back().tags.push_back(tag);
    }
  }
  return sections;
}

// Whether `word` (letters, digits, dashes and spaces) is in `text`, not as
// part of a longer word: "--json" is not in "--jsonl".
bool HasWord(const std::string& text, const std::string& word) {
  std::regex whole_word("(^|[^a-z0-9-])" + word + "($|[^a-z0-9-])");
  return std::regex_search(text, whole_word);
}

class ManPageTest : public ::testing::Test {
 protected:
  const std::string path_ = SourcePath("man/shardctl.1");
  const std::string source_ = ReadExistingFile(path_);
  const std::vector<ManSection> sections_ = ParseManPage(source_);

  // The tags of the OPTIONS subsections whose heading names `command`
  // ("Options of inc and total", "Options of the client commands: inc,
  // total, ...", "Options of cluster init, cluster status, ..." but not
  // "cluster" or "status" there), or of "Global options" for "".
  std::vector<std::string> TagsFor(const std::string& command) const {
    std::vector<std::string> tags;
    for (const ManSection& section : sections_) {
      if (section.section != "OPTIONS") continue;
      if (command.empty() ? section.subsection == "Global options"
                          : TheCli().CommandsNamedIn(section.subsection).contains(command)) {
        tags.insert(tags.end(), section.tags.begin(), section.tags.end());
      }
    }
    return tags;
  }

  // The long options tagged for `command` ("" for the global ones).
  Words OptionsDocumentedFor(const std::string& command) const {
    Words options;
    for (const std::string& tag : TagsFor(command)) {
      Words found = LongOptionsIn(tag);
      options.insert(found.begin(), found.end());
    }
    return options;
  }

  Words GlobalOptionsDocumented() const { return OptionsDocumentedFor(""); }
};

TEST_F(ManPageTest, RendersWithoutWarnings) {
  RunResult result = RunProgram({"groff", "-man", "-ww", "-z", path_});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(result.out, "");
}

TEST_F(ManPageTest, PassesMandocLint) {
  ASSERT_TRUE(Installed("mandoc")) << "mandoc is not installed; bash .ci/setup installs it";
  RunResult result = RunProgram({"mandoc", "-T", "lint", "-W", "all", path_});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(result.out + result.err, "");
}

TEST_F(ManPageTest, HasTheUsualSections) {
  std::vector<std::string> names;
  for (const ManSection& section : sections_) {
    if (section.subsection.empty()) names.push_back(section.section);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS",
                                             "OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS",
                                             "EXAMPLES", "SEE ALSO"}));
}

TEST_F(ManPageTest, DescribesEveryCommandUnderCommands) {
  std::vector<std::string> described;
  for (const ManSection& section : sections_) {
    if (section.section != "COMMANDS") continue;
    for (const std::string& tag : section.tags) {
      std::string command = TheCli().CommandAtStartOf(tag);
      described.push_back(command.empty() ? tag.substr(0, tag.find(' ')) : command);
    }
  }
  EXPECT_THAT(described, UnorderedElementsAreArray(TheCli().commands));
}

TEST_F(ManPageTest, DocumentsEveryOptionOfEveryCommand) {
  const Cli& cli = TheCli();
  const Words global = GlobalOptionsDocumented();
  for (const std::string& option : cli.global_options) {
    EXPECT_TRUE(global.contains(option)) << option << " is not under OPTIONS, Global options";
  }
  for (const std::string& command : cli.commands) {
    const Words documented = OptionsDocumentedFor(command);
    for (const std::string& option : cli.options.at(command)) {
      EXPECT_TRUE(documented.contains(option) ||
                  (cli.global_options.contains(option) && global.contains(option)))
          << "shardctl " << command << " " << option
          << " is not documented in an OPTIONS subsection that names '" << command << "'";
    }
  }
}

// The other way round: a documented option that the command does not have is
// a mistake in the docs (a typo, or an option since removed).
TEST_F(ManPageTest, DocumentsNoOptionTheCommandLacks) {
  const Cli& cli = TheCli();
  for (const std::string& command : cli.commands) {
    const Words allowed = cli.Allowed(command);
    for (const std::string& option : OptionsDocumentedFor(command)) {
      EXPECT_TRUE(allowed.contains(option))
          << "the man page documents " << option << " for shardctl " << command
          << ", whose --help does not list it";
    }
  }
}

// The word after `option` in a tag ("seconds" in "--timeout seconds"), ""
// when none follows.
std::string ValueInTag(const std::string& tag, const std::string& option) {
  std::istringstream words(tag);
  for (std::string word; words >> word;) {
    if (word != option) continue;
    std::string value;
    words >> value;
    return value;
  }
  return "";
}

// The man page names each option's value as the help does, in lower case
// ("--timeout seconds" for "--timeout SECONDS"), with the same choices
// ("--fsync always|everysec|no").
TEST_F(ManPageTest, NamesEachValueWithTheHelpsWord) {
  for (const auto& [command, values] : TheCli().values) {
    std::vector<std::string> tags = TagsFor(command);
    std::vector<std::string> global = TagsFor("");
    tags.insert(tags.end(), global.begin(), global.end());
    for (const auto& [option, word] : values) {
      std::string lower = word;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      for (const std::string& tag : tags) {
        if (!HasWord(tag, option)) continue;
        EXPECT_EQ(ValueInTag(tag, option), lower)
            << "shardctl " << command << " --help shows '" << option << " " << word
            << "', the man page '" << tag << "'";
      }
    }
  }
}

TEST_F(ManPageTest, ListsEveryExitCode) {
  std::vector<std::string> codes;
  for (const ManSection& section : sections_) {
    if (section.section == "EXIT STATUS") codes = section.tags;
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6"}));
}

// --- The completions --------------------------------------------------------

// Each completion file names every command and every long option of every
// command, as its shell spells an option: "--name", or "-l name" in fish.
TEST(CompletionFilesTest, NameEveryCommandAndOption) {
  const Cli& cli = TheCli();
  for (const std::string file : {"shardctl.bash", "_shardctl", "shardctl.fish"}) {
    SCOPED_TRACE(file);
    const std::string text = ReadExistingFile(SourcePath("completions/" + file));
    const bool fish = file.ends_with(".fish");
    for (const std::string& command : cli.commands) {
      // A subcommand's own word: "move" of "cluster move".
      const std::string word = command.substr(command.rfind(' ') + 1);
      EXPECT_TRUE(HasWord(text, word)) << "command " << command << " missing from " << file;
      Words options = cli.options.at(command);
      options.insert(cli.global_options.begin(), cli.global_options.end());
      for (const std::string& option : options) {
        std::string spelled = fish ? "-l " + option.substr(2) : option;
        EXPECT_TRUE(HasWord(text, spelled))
            << "option " << option << " of " << command << " missing from " << file;
      }
    }
  }
}

// Completes each of `lines` with completions/shardctl.bash, as bash does on
// TAB at the end of the line. Returns the candidates of each line.
std::vector<Words> CompleteWithBash(const std::vector<std::string>& lines,
                                    const std::string& cwd = ".") {
  // $1 is the completion file, the rest the lines; each line's candidates
  // are printed one per line, ended by a line "@@".
  const std::string driver = R"(
    source "$1" || exit 1
    [[ $(complete -p shardctl) == "complete -F _shardctl shardctl" ]] || exit 2
    shift
    for line in "$@"; do
      read -ra COMP_WORDS <<<"$line"
      [[ $line == *" " ]] && COMP_WORDS+=("")
      COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
      COMP_LINE=$line
      COMP_POINT=${#line}
      COMPREPLY=()
      _shardctl shardctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
      for word in "${COMPREPLY[@]}"; do printf '%s\n' "$word"; done
      echo @@
    done
  )";
  std::vector<std::string> args = {"bash", "--norc", "--noprofile", "-c", driver, "bash"};
  args.push_back(SourcePath("completions/shardctl.bash"));
  args.insert(args.end(), lines.begin(), lines.end());
  RunResult result = RunProgram(args, cwd);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  std::vector<Words> candidates(1);
  for (const std::string& line : Lines(result.out)) {
    if (line == "@@") {
      candidates.emplace_back();
    } else {
      candidates.back().insert(line);
    }
  }
  candidates.pop_back();
  EXPECT_EQ(candidates.size(), lines.size()) << result.out;
  candidates.resize(lines.size());
  return candidates;
}

Words CompleteWithBash(const std::string& line, const std::string& cwd = ".") {
  return CompleteWithBash(std::vector<std::string>{line}, cwd)[0];
}

TEST(BashCompletionTest, CompletesSubcommands) {
  EXPECT_THAT(CompleteWithBash("shardctl st"), UnorderedElementsAre("status", "stop"));
  EXPECT_THAT(CompleteWithBash("shardctl "),
              UnorderedElementsAreArray(TheCli().subcommands.at("")));
  EXPECT_THAT(CompleteWithBash("shardctl --"), IsSupersetOf(TheCli().global_options));
  EXPECT_THAT(CompleteWithBash("shardctl cluster "),
              UnorderedElementsAreArray(TheCli().subcommands.at("cluster")));
  EXPECT_THAT(CompleteWithBash("shardctl cluster st"), UnorderedElementsAre("status"));
  EXPECT_THAT(CompleteWithBash("shardctl cluster move "), ::testing::IsEmpty());   // a shard number
  EXPECT_THAT(CompleteWithBash("shardctl cluster drain "), ::testing::IsEmpty());  // a node id
}

TEST(BashCompletionTest, CompletesOptions) {
  EXPECT_THAT(CompleteWithBash("shardctl serve --fs"), UnorderedElementsAre("--fsync"));
  EXPECT_THAT(CompleteWithBash("shardctl total --"), IsSupersetOf({"--per-shard", "--partial"}));
  EXPECT_THAT(CompleteWithBash("shardctl --config x.toml serve --log-l"),
              UnorderedElementsAre("--log-level"));
  EXPECT_THAT(CompleteWithBash("shardctl serve --etcd http://10.0.0.1:2379 --node"),
              UnorderedElementsAre("--node-id"));
  EXPECT_THAT(CompleteWithBash("shardctl cluster move 3 --t"),
              UnorderedElementsAre("--to", "--timeout", "--token-file"));
  EXPECT_THAT(CompleteWithBash("shardctl cluster init --sh"), UnorderedElementsAre("--shards"));
}

TEST(BashCompletionTest, CompletesOptionValues) {
  EXPECT_THAT(CompleteWithBash("shardctl serve --fsync "),
              UnorderedElementsAre("always", "everysec", "no"));
  EXPECT_THAT(CompleteWithBash("shardctl serve --routing r"),
              UnorderedElementsAre("round-robin", "random"));
  EXPECT_THAT(CompleteWithBash("shardctl serve --role "),
              UnorderedElementsAre("all", "shard", "aggregator"));
  EXPECT_THAT(CompleteWithBash("shardctl serve --log-level "),
              UnorderedElementsAre("debug", "info", "warning", "error"));
  EXPECT_THAT(CompleteWithBash("shardctl serve --port "), ::testing::IsEmpty());
  EXPECT_THAT(CompleteWithBash("shardctl serve --etcd "), ::testing::IsEmpty());
  EXPECT_THAT(CompleteWithBash("shardctl cluster move 3 --to "), ::testing::IsEmpty());
  EXPECT_THAT(CompleteWithBash("shardctl inc "), ::testing::IsEmpty());
}

TEST(BashCompletionTest, CompletesDirectoriesAndFiles) {
  TempDir dir;
  ASSERT_EQ(::mkdir((dir.path() + "/data").c_str(), 0700), 0);
  std::ofstream(dir.path() + "/data.toml") << "[serve]\n";
  EXPECT_THAT(CompleteWithBash("shardctl serve --data-dir da", dir.path()),
              UnorderedElementsAre("data"));
  EXPECT_THAT(CompleteWithBash("shardctl serve --config da", dir.path()),
              UnorderedElementsAre("data", "data.toml"));
  EXPECT_THAT(CompleteWithBash("shardctl stop --pid-file da", dir.path()),
              UnorderedElementsAre("data", "data.toml"));
  EXPECT_THAT(CompleteWithBash("shardctl cluster status --token-file da", dir.path()),
              UnorderedElementsAre("data", "data.toml"));
}

// What `shardctl COMMAND -` offers is what `shardctl COMMAND --help` lists
// (plus the global options): no option missing, none made up.
TEST(BashCompletionTest, OffersExactlyTheOptionsOfEachCommand) {
  const Cli& cli = TheCli();
  std::vector<std::string> lines;
  for (const std::string& command : cli.commands) lines.push_back("shardctl " + command + " -");
  std::vector<Words> offered = CompleteWithBash(lines);
  for (size_t i = 0; i < cli.commands.size(); ++i) {
    const std::string& command = cli.commands[i];
    SCOPED_TRACE(command);
    EXPECT_THAT(offered[i], IsSupersetOf(cli.options.at(command)));
    Words allowed = cli.Allowed(command);
    for (const std::string& word : offered[i]) {
      EXPECT_TRUE(!word.starts_with("--") || allowed.contains(word))
          << word << " is offered but not an option";
    }
  }
}

// --- zsh and fish -------------------------------------------------------------

TEST(ZshCompletionTest, Parses) {
  ASSERT_TRUE(Installed("zsh")) << "zsh is not installed; bash .ci/setup installs it";
  RunResult result = RunProgram({"zsh", "-n", SourcePath("completions/_shardctl")});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_TRUE(ReadExistingFile(SourcePath("completions/_shardctl")).starts_with("#compdef shardctl\n"));
}

TEST(FishCompletionTest, Parses) {
  ASSERT_TRUE(Installed("fish")) << "fish is not installed; bash .ci/setup installs it";
  RunResult result = RunProgram({"fish", "--no-execute", SourcePath("completions/shardctl.fish")});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
}

// Completes each of `lines` with completions/shardctl.fish, as fish itself
// does (`complete -C`), with a home of its own so that it writes nothing into
// the real one. Returns the candidates of each line, without descriptions.
std::vector<Words> CompleteWithFish(const std::vector<std::string>& lines) {
  std::vector<std::string> args = {
      "fish", "--no-config", "-c",
      "source $argv[1]; for line in $argv[2..-1]; complete -C$line; echo @@; end",
      SourcePath("completions/shardctl.fish")};
  args.insert(args.end(), lines.begin(), lines.end());
  TempDir home;
  RunResult result = RunProgram(args, home.path(),
                                {{"HOME", home.path()},
                                 {"XDG_CONFIG_HOME", home.path() + "/config"},
                                 {"XDG_DATA_HOME", home.path() + "/data"},
                                 {"XDG_CACHE_HOME", home.path() + "/cache"}});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::vector<Words> offered(1);
  for (const std::string& line : Lines(result.out)) {
    if (line == "@@") {
      offered.emplace_back();
    } else {
      offered.back().insert(line.substr(0, line.find('\t')));  // "--fsync\tWhen to ..."
    }
  }
  offered.pop_back();
  EXPECT_EQ(offered.size(), lines.size()) << result.out;
  offered.resize(lines.size());
  return offered;
}

TEST(FishCompletionTest, OffersTheOptionsAndValuesOfEachCommand) {
  ASSERT_TRUE(Installed("fish")) << "fish is not installed; bash .ci/setup installs it";
  const Cli& cli = TheCli();
  const std::vector<std::string> fixed = {
      "shardctl st",       "shardctl serve --fsync ", "shardctl serve --routing r",
      "shardctl cluster ", "shardctl cluster st",     "shardctl cluster move 3 --to "};
  std::vector<std::string> lines = fixed;
  for (const std::string& command : cli.commands) lines.push_back("shardctl " + command + " --");
  std::vector<Words> offered = CompleteWithFish(lines);
  EXPECT_THAT(offered[0], UnorderedElementsAre("status", "stop"));
  EXPECT_THAT(offered[1], UnorderedElementsAre("always", "everysec", "no"));
  EXPECT_THAT(offered[2], UnorderedElementsAre("round-robin", "random"));
  EXPECT_THAT(offered[3], UnorderedElementsAreArray(cli.subcommands.at("cluster")));
  EXPECT_THAT(offered[4], UnorderedElementsAre("status"));
  EXPECT_THAT(offered[5], ::testing::IsEmpty());
  for (size_t i = 0; i < cli.commands.size(); ++i) {
    const std::string& command = cli.commands[i];
    SCOPED_TRACE(command);
    const Words& options = offered[fixed.size() + i];
    EXPECT_THAT(options, IsSupersetOf(cli.options.at(command)));
    Words allowed = cli.Allowed(command);
    for (const std::string& option : options) {
      EXPECT_TRUE(allowed.contains(option)) << option << " is offered but not an option";
    }
  }
}

// --- Values: the help, and each completion --------------------------------------

// An option whose help lists the words it takes ("--fsync always|everysec|no").
struct Choices {
  std::string command;
  std::string option;
  std::vector<std::string> words;  // in the help's order
};

std::vector<Choices> OptionsWithChoices() {
  std::vector<Choices> found;
  for (const auto& [command, values] : TheCli().values) {
    for (const auto& [option, word] : values) {
      if (word.find('|') == std::string::npos) continue;
      Choices choices{command, option, {}};
      std::istringstream words(word);
      for (std::string choice; std::getline(words, choice, '|');) choices.words.push_back(choice);
      found.push_back(choices);
    }
  }
  return found;
}

// Every completion offers exactly the words the help lists for an option.
TEST(CompletionFilesTest, OfferTheChoicesTheHelpLists) {
  std::vector<Choices> all = OptionsWithChoices();
  ASSERT_GE(all.size(), 5u);  // --role, --fsync, --routing, --log-level, --op
  std::vector<std::string> lines;
  for (const Choices& c : all) lines.push_back("shardctl " + c.command + " " + c.option + " ");
  std::vector<Words> bash = CompleteWithBash(lines);
  ASSERT_TRUE(Installed("fish")) << "fish is not installed; bash .ci/setup installs it";
  std::vector<Words> fish = CompleteWithFish(lines);
  const std::string zsh = ReadExistingFile(SourcePath("completions/_shardctl"));
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    EXPECT_THAT(bash[i], UnorderedElementsAreArray(all[i].words)) << "bash";
    EXPECT_THAT(fish[i], UnorderedElementsAreArray(all[i].words)) << "fish";
    // zsh: '--fsync=[when to fsync the journal]:fsync policy:(always everysec no)'
    std::string spelled;
    for (const std::string& word : all[i].words) spelled += (spelled.empty() ? "" : " ") + word;
    std::regex spec("'" + all[i].option + "=\\[[^\n]*:\\(" + spelled + "\\)'");
    EXPECT_TRUE(std::regex_search(zsh, spec))
        << "zsh: no '" << all[i].option << "=[...]:...:(" << spelled << ")'";
  }
}

// The completions know which options take a value (and so complete the value,
// not another option) and which are flags, as the help shows them.
TEST(CompletionFilesTest, KnowWhichOptionsTakeAValue) {
  const Cli& cli = TheCli();
  std::vector<std::string> lines;
  std::vector<std::pair<std::string, bool>> options;  // option, takes a value
  for (const auto& [command, values] : cli.values) {
    for (const auto& [option, word] : values) {
      lines.push_back("shardctl " + (command.empty() ? "" : command + " ") + option + " -");
      options.emplace_back(option, !word.empty());
    }
  }
  TempDir empty;  // no files named "-..." to complete
  std::vector<Words> bash = CompleteWithBash(lines, empty.path());
  const std::string zsh = ReadExistingFile(SourcePath("completions/_shardctl"));
  const std::vector<std::string> fish = Lines(ReadExistingFile(SourcePath("completions/shardctl.fish")));
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& [option, takes_value] = options[i];
    SCOPED_TRACE(lines[i]);
    // bash offers options after a flag, nothing (a value's place) after the others.
    EXPECT_EQ(bash[i].empty(), takes_value) << "bash offers " << ::testing::PrintToString(bash[i]);
    // zsh spells an option that takes a value "--name=".
    EXPECT_EQ(zsh.find(option + "=") != std::string::npos, takes_value) << "zsh";
    // fish marks it -x (exclusive: a value follows) or -r (requires one).
    const std::string spelled = "-l " + option.substr(2) + " ";
    for (const std::string& line : fish) {
      if (!line.starts_with("complete ") || line.find(spelled) == std::string::npos) continue;
      bool marked = line.find(" -x") != std::string::npos || line.find(" -r") != std::string::npos;
      EXPECT_EQ(marked, takes_value) << "fish: " << line;
    }
  }
}

}  // namespace
}  // namespace shardctl::testing
