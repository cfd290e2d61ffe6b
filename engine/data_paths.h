// Where ridgeline finds the data it ships (the InternLM2 tokenizer, the tiny test model), looked up
// relative to the running executable so that a build tree and an installed copy both work and no
// source path is compiled in. The first that exists of: $RIDGELINE_DATA_DIR,
// <executable's folder>/../share/ridgeline (an install: PREFIX/bin/ridgeline), and
// <executable's folder>/share/ridgeline (the build tree, where CMake links the data in).
#pragma once

#include <string>
#include <vector>

namespace ridgeline {

// The data folder; throws naming the places it looked when there is none.
std::string data_dir();
// <data>/tokenizers/<name> (e.g. "internlm2"), or "" when it is not there.
std::string bundled_tokenizer(const std::string& name);
// The names bundled_tokenizer() finds, sorted (empty when there is no data folder).
std::vector<std::string> bundled_tokenizer_names();
// <data>/models/<name> (e.g. "tiny-internlm2-chat"), or "" when it is not there.
std::string bundled_model(const std::string& name);

}  // namespace ridgeline
