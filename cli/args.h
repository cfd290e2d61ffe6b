// Flag parsing for the subcommands: `--name value`, `--name=value` and boolean `--name`.
// Unknown flags, missing values and malformed numbers are user errors (UsageError), reported in one
// line with the flag's name; main() turns them into exit code 2.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace ridgeline::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  // `valued` flags take a value, `switches` do not; anything else starting with "--" is an error.
  // Other words are positional.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& valued,
       const std::set<std::string>& switches = {});

  bool has(const std::string& flag) const;
  std::optional<std::string> get(const std::string& flag) const;
  std::string get_or(const std::string& flag, const std::string& fallback) const;
  std::string require(const std::string& flag) const;
  int get_int(const std::string& flag, int fallback) const;
  long long get_int64(const std::string& flag, long long fallback) const;
  double get_double(const std::string& flag, double fallback) const;
  // Comma-separated list ("1,4,16"); empty when the flag is absent.
  std::vector<std::string> get_list(const std::string& flag) const;
  std::vector<int> get_int_list(const std::string& flag, const std::vector<int>& fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> switches_set_;
  std::vector<std::string> positional_;
};

}  // namespace ridgeline::cli
