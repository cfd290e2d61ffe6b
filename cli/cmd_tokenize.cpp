// ridgeline tokenize: shows the ids and pieces a text or a chat prompt becomes, `<s>` included.
// Special tokens show by name (`<|im_start|>`), not as tokenizer.model spells them.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/flags.h"
#include "engine/chat_template.h"
#include "engine/data_paths.h"
#include "engine/tokenizer.h"

namespace ridgeline::cli {
namespace {

struct TokenizeFlags {
  std::string tokenizer;
  std::optional<std::string> text, chat, system;
  bool json = false;
};

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

int run_tokenize(const TokenizeFlags& f) {
  if (f.text.has_value() == f.chat.has_value()) throw UsageError("give exactly one of --text or --chat");
  if (f.system && !f.chat) throw UsageError("--system goes with --chat");
  // A path that exists wins; otherwise a bundled tokenizer of that name.
  std::string where = f.tokenizer;
  if (!std::filesystem::exists(where)) {
    if (std::string bundled = bundled_tokenizer(where); !bundled.empty()) {
      where = bundled;
    } else if (where.find('/') == std::string::npos) {  // meant as a name: say which names there are
      const auto names = bundled_tokenizer_names();
      throw std::runtime_error(fmt::format(
          "tokenizer '{}' is neither a file or folder nor a bundled tokenizer ({}): give a folder holding "
          "tokenizer.model, the file itself, or a bundled name",
          where,
          names.empty() ? std::string("none bundled here")
                        : fmt::format("bundled: {}", fmt::join(names, ", "))));
    }
  }
  Tokenizer tok = Tokenizer::load(where);

  std::vector<int> ids;
  if (f.text) {
    ids = tok.encode(*f.text, true);
  } else {
    // --chat always asks for the answer: the generation prompt closes the user turn.
    ids = encode_chat(tok, chat_messages(*f.chat, f.system.value_or("")), true);
  }
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (int id : ids) pieces.push_back(tok.display_piece(id));

  if (f.json) {
    nlohmann::json j = {{"ids", ids}, {"pieces", pieces}};
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    for (auto& p : pieces) p = escape_controls(p);
    fmt::print("{}\n{}\n", fmt::join(ids, " "), fmt::join(pieces, " "));
  }
  return 0;
}

Runner define_tokenize(CLI::App& app) {
  auto f = std::make_shared<TokenizeFlags>();
  app.add_option("--tokenizer", f->tokenizer,
                 "a folder with tokenizer.model, the file itself, or a bundled one's name (internlm2)")
      ->type_name("DIR|FILE|NAME")
      ->required();
  app.add_option("--text", f->text, "raw text, special tokens included")->type_name("TEXT");
  app.add_option("--chat", f->chat, "one user message, in the chat template")->type_name("TEXT");
  app.add_option("--system", f->system, "a system message before --chat's")->type_name("TEXT");
  app.add_flag("--json", f->json, R"(print {"ids": [...], "pieces": [...]})");
  return [f](const std::vector<std::string>&) { return run_tokenize(*f); };
}

}  // namespace

RIDGELINE_COMMAND(Command{"tokenize", "show the ids and pieces a text or a chat prompt becomes",
                          "tokenize --tokenizer DIR|FILE|NAME (--text TEXT | --chat TEXT [--system TEXT])\n"
                          "[--json]",
                          define_tokenize});

}  // namespace ridgeline::cli
