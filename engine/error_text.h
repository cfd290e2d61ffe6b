// Untrusted text (names, strings and keys read from files) made safe to put inside a one-line
// error message: short, printable, and without bytes that could corrupt a terminal or a log.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ridgeline {

// Longest excerpt an error message quotes, in output bytes: long enough to recognise a tensor name
// or a key, short enough that a 100 MB hostile string still gives one readable line.
inline constexpr size_t kExcerptBytes = 200;

// `text` with control bytes (below 0x20, 0x7f), backslashes and bytes that are not valid UTF-8
// written as `\xNN` (a backslash as `\\`), cut to at most `max_bytes` output bytes at a character
// boundary; a cut text ends with "... (N bytes)", N being the length of the whole of `text`.
// Valid UTF-8 (names in any script) passes through as is.
std::string excerpt(std::string_view text, size_t max_bytes = kExcerptBytes);

}  // namespace ridgeline
