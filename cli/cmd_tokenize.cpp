// ridgeline tokenize: shows the ids and pieces a text or a chat prompt becomes, `<s>` included.
// Special tokens show by name (`<|im_start|>`), not as tokenizer.model spells them.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/chat_template.h"
#include "engine/data_paths.h"
#include "engine/tokenizer.h"

namespace ridgeline::cli {
namespace {

constexpr const char* kUsage =
    "tokenize --tokenizer DIR|FILE|NAME (--text TEXT | --chat TEXT [--system TEXT]) [--json]\n"
    "                 (NAME: a bundled tokenizer, e.g. internlm2)";

// Plain output keeps the pieces on one line: InternLM2 has pieces that are a raw newline (id 364) or a
// NUL (id 354), so control characters are shown escaped.
std::string escape_controls(const std::string& piece) {
  std::string out;
  for (unsigned char c : piece) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02X}", c);
    } else {
      out += char(c);
    }
  }
  return out;
}

int run_tokenize(const std::vector<std::string>& argv) {
  Args a(argv, {"tokenizer", "text", "chat", "system"}, {"json"});
  if (!a.positional().empty())
    throw UsageError(fmt::format("unexpected argument '{}'", a.positional().front()));
  if (a.has("text") == a.has("chat")) throw UsageError("give exactly one of --text or --chat");
  if (a.has("system") && !a.has("chat")) throw UsageError("--system goes with --chat");
  // A path that exists wins; otherwise a bundled tokenizer of that name.
  std::string where = a.require("tokenizer");
  if (!std::filesystem::exists(where))
    if (std::string bundled = bundled_tokenizer(where); !bundled.empty()) where = bundled;
  Tokenizer tok = Tokenizer::load(where);

  std::vector<int> ids;
  if (auto text = a.get("text")) {
    ids = tok.encode(*text, true);
  } else {
    // --chat always asks for the answer: the generation prompt closes the user turn.
    ids = encode_chat(tok, chat_messages(a.require("chat"), a.get_or("system", "")), true);
  }
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (int id : ids) pieces.push_back(tok.display_piece(id));

  if (a.has("json")) {
    nlohmann::json j = {{"ids", ids}, {"pieces", pieces}};
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    for (auto& p : pieces) p = escape_controls(p);
    fmt::print("{}\n{}\n", fmt::join(ids, " "), fmt::join(pieces, " "));
  }
  return 0;
}

}  // namespace

RIDGELINE_COMMAND(Command{"tokenize", kUsage, run_tokenize});

}  // namespace ridgeline::cli
