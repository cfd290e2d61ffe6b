// Flag handling the subcommands share, on top of CLI11: the usage error that main() turns into exit
// code 2, value checks whose one-line messages name the flag ("--top-p: expects a number in (0, 1],
// got '2'"), and the comma-separated lists some flags take. A check runs before CLI11 converts the
// text, so a value that passes always converts.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace ridgeline::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// True when the user gave `flag` ("--model") on the command line.
bool given(const CLI::App& app, const std::string& flag);

// An integer in [min, max] ("expects an integer >= 1, got 'x'").
CLI::Validator integer_in(long long min, long long max);
// A finite number in [min, max] (NaN and infinities refused); `min_open` makes it (min, max].
CLI::Validator number_in(double min, double max, bool min_open = false);
// A path to write: not empty ("--out: expects a file name, got ''").
CLI::Validator file_name();
// Comma-separated positive integers ("1,4,16"), no empty items.
CLI::Validator positive_int_list();
// Comma-separated words, no empty items.
CLI::Validator word_list();

std::vector<std::string> split_list(const std::string& text);
std::vector<int> parse_int_list(const std::string& text);

// Refuses a flag given more than once ("--out given 2 times; give it once"): a repeated flag is
// almost always a mistake in a script, and "last one wins" hides it.
void refuse_repeated_flags(const CLI::App& app);

}  // namespace ridgeline::cli
