// Parsing JSON read from files the user hands over (safetensors headers, checkpoint indexes,
// config.json, messages files) as untrusted input. JSON readers disagree about repeated keys
// (nlohmann and Python keep the last copy, others the first), so a file with one is ambiguous and
// is refused, as the safetensors format requires; nesting is capped so that a hostile "[[[[..."
// cannot exhaust the stack of whoever walks the result; every error is one short line.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ridgeline {

// Deeper than any real input nests (a safetensors header nests 3 levels, a messages file 2).
inline constexpr int kMaxJsonDepth = 64;

// Parses `text`; throws std::runtime_error("<where>: <what> ...") when it is not valid JSON, repeats
// a key within one object (naming the key and the object), or nests deeper than `max_depth`. `what`
// names the document in messages ("header", "config", "index", "messages file").
nlohmann::json parse_strict_json(std::string_view text, const std::string& where, std::string_view what,
                                 int max_depth = kMaxJsonDepth);

// A JSON value described for "expected X, found Y" messages: "an integer (5)", "a string ('abc')",
// "an object", "null"; strings are quoted with excerpt().
std::string describe_json(const nlohmann::json& value);

}  // namespace ridgeline
