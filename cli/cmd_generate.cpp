// ridgeline generate: one prompt in, one completion out (streamed, or one JSON object).
#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/backend_select.h"
#include "cli/commands.h"
#include "cli/generation_flags.h"
#include "cli/npy.h"
#include "engine/backend_factory.h"
#include "engine/chat_template.h"
#include "engine/generate.h"
#include "engine/model_source.h"
#include "engine/tokenizer.h"
#include "engine/utf8_stream.h"

namespace ridgeline::cli {
namespace {

constexpr const char* kUsage =
    "generate --model DIR|PRESET [--device cuda|cpu] [--weights fp16|w4a16] [--kv fp16|int8]\n"
    "                     (--prompt TEXT | --chat TEXT [--system TEXT] | --messages FILE.json)\n"
    "                     [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] "
    "[--json]\n"
    "                     [--logits-out FILE.npy]";

std::vector<int> prompt_ids(const Args& a, const Tokenizer& tok) {
  int given = int(a.has("prompt")) + int(a.has("chat")) + int(a.has("messages"));
  if (given != 1) throw UsageError("give exactly one of --prompt, --chat or --messages");
  if (a.has("system") && !a.has("chat")) throw UsageError("--system goes with --chat");
  if (auto p = a.get("prompt")) return tok.encode(*p, true);
  std::vector<ChatMessage> msgs;
  if (auto c = a.get("chat")) {
    msgs = chat_messages(*c, a.get_or("system", ""));
  } else {
    msgs = parse_messages_json(a.require("messages"));
  }
  return encode_chat(tok, msgs, needs_generation_prompt(msgs));
}

int run_generate(const std::vector<std::string>& argv) {
  Args a(argv,
         {"model", "device", "weights", "kv", "prompt", "chat", "system", "messages", "max-new-tokens",
          "temperature", "top-k", "top-p", "seed", "logits-out"},
         {"json"});
  ModelSource source = resolve_model(a.require("model"));
  if (source.tokenizer_path.empty())
    throw std::runtime_error(fmt::format("model '{}' has no tokenizer.model", a.require("model")));
  Tokenizer tok = Tokenizer::load(source.tokenizer_path);
  std::vector<int> prompt = prompt_ids(a, tok);

  GenerateOptions opt = generation_flags(a, 256, 0);
  opt.stop_ids = tok.stop_ids();
  opt.keep_logits = a.has("logits-out");

  bool json_out = a.has("json");
  BackendOptions bo = backend_options(choose_device(a.get("device")), source, a.get("weights"), a.get("kv"));
  bo.max_sequences = 1;
  auto backend = make_backend(source, bo);
  if (prompt.size() >= size_t(backend->max_sequence_length()))
    throw std::runtime_error(fmt::format("the prompt has {} tokens; the model's context holds {}",
                                         prompt.size(), backend->max_sequence_length()));
  int seq = backend->create_sequence();

  Utf8Stream stream(tok);
  auto on_token = [&](int id) {
    if (!json_out) {
      std::string piece = stream.push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  GenerateResult r = generate(*backend, seq, prompt, opt, on_token);

  double decode_steps = r.output_ids.size() > 1 ? double(r.output_ids.size() - 1) : 0.0;
  nlohmann::json stats = {
      {"device", to_string(backend->device())},
      {"weights", to_string(bo.formats.weights)},
      {"kv", to_string(bo.formats.kv)},
      {"prompt_tokens", r.prefill_tokens},
      {"new_tokens", r.output_ids.size()},
      {"stop_reason", to_string(r.stop_reason)},
      {"prefill_ms", r.prefill_ms},
      {"prefill_tokens_per_s", r.prefill_ms > 0 ? r.prefill_tokens / (r.prefill_ms / 1e3) : 0.0},
      {"decode_ms", r.decode_ms},
      {"decode_tokens_per_s", r.decode_ms > 0 ? decode_steps / (r.decode_ms / 1e3) : 0.0},
      {"ms_per_token", decode_steps > 0 ? r.decode_ms / decode_steps : 0.0}};
  if (opt.keep_logits)
    write_npy_f32(a.require("logits-out"), {int64_t(r.output_ids.size()), int64_t(source.config.vocab)},
                  r.step_logits.data());
  if (json_out) {
    nlohmann::json j = {{"prompt_ids", prompt},
                        {"output_ids", r.output_ids},
                        {"text", tok.decode(r.output_ids)},
                        {"stats", stats}};
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    std::string rest = stream.flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);  // the reply's newline before the stats line when both go to one file
    fmt::print(stderr, "[{} prompt + {} new tokens on {}, {:.1f} tok/s decode, {:.2f} ms/token, stop: {}]\n",
               r.prefill_tokens, r.output_ids.size(), to_string(backend->device()),
               stats["decode_tokens_per_s"].get<double>(), stats["ms_per_token"].get<double>(),
               to_string(r.stop_reason));
  }
  return 0;
}

}  // namespace

RIDGELINE_COMMAND(Command{"generate", kUsage, run_generate});

}  // namespace ridgeline::cli
