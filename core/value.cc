#include "core/value.h"

#include <charconv>
#include <system_error>

#include <fmt/format.h>

namespace shardctl::core {

Result<int64_t> ParseValue(std::string_view text) {
  if (text.empty()) {
    return InvalidArgument("the value is empty; give a decimal integer such as 5 or -3");
  }
  // Messages quote the text, cut to a readable length.
  std::string shown(text.substr(0, 40));
  if (text.size() > 40) shown += "...";
  std::string_view digits = text.front() == '-' ? text.substr(1) : text;
  bool all_digits = !digits.empty();
  for (char c : digits) all_digits = all_digits && c >= '0' && c <= '9';
  if (!all_digits) {
    return InvalidArgument(
        fmt::format("'{}' is not a decimal integer (digits with an optional leading '-')", shown));
  }
  if (digits.size() > 1 && digits.front() == '0') {
    return InvalidArgument(
        fmt::format("'{}' has a leading zero; write decimal integers without one", shown));
  }
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, 10);
  if (error == std::errc::result_out_of_range) {
    return OutOfRange(fmt::format(
        "'{}' is outside the 64-bit range -9223372036854775808..9223372036854775807", shown));
  }
  if (error != std::errc() || end != text.data() + text.size()) {
    return InvalidArgument(fmt::format("'{}' is not a decimal integer", shown));
  }
  return value;
}

}  // namespace shardctl::core
