// ridgeline generate: one prompt in, one completion out (streamed, or one JSON object).
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/backend_select.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/generation_flags.h"
#include "cli/npy.h"
#include "cli/output_file.h"
#include "engine/backend_factory.h"
#include "engine/chat_template.h"
#include "engine/generate.h"
#include "engine/model_source.h"
#include "engine/tokenizer.h"
#include "engine/utf8_stream.h"

namespace ridgeline::cli {
namespace {

struct GenerateFlags {
  std::string model;
  DeviceFlags device;
  std::optional<std::string> prompt, chat, system, messages, logits_out;
  GenerationFlags generation;
  bool json = false;
};

// Refuses a prompt that cannot fit before it is tokenized (megabytes take minutes): `at_least` is a
// lower bound on its tokens (Tokenizer::min_tokens), `limit` the longest sequence the model holds.
void check_prompt_size(const std::string& source, size_t bytes, int64_t at_least, int64_t limit,
                       const Tokenizer& tok) {
  if (at_least < limit) return;
  throw std::runtime_error(fmt::format(
      "{} is too long: its {} bytes are at least {} tokens (a token of this tokenizer spells at most {} "
      "bytes), and the model's context holds {}",
      source, bytes, at_least, tok.max_token_bytes(), limit));
}

std::vector<int> prompt_ids(const GenerateFlags& f, const Tokenizer& tok, int64_t limit) {
  int given = int(f.prompt.has_value()) + int(f.chat.has_value()) + int(f.messages.has_value());
  if (given != 1) throw UsageError("give exactly one of --prompt, --chat or --messages");
  if (f.system && !f.chat) throw UsageError("--system goes with --chat");
  if (f.prompt) {
    check_prompt_size("--prompt", f.prompt->size(), 1 + tok.min_tokens(f.prompt->size()), limit, tok);
    return tok.encode(*f.prompt, true);
  }
  std::vector<ChatMessage> msgs;
  if (f.chat) {
    msgs = chat_messages(*f.chat, f.system.value_or(""));
  } else {
    msgs = parse_messages_json(*f.messages);
  }
  size_t bytes = 0;
  for (const auto& m : msgs) bytes += m.content.size();
  const std::string what = f.messages ? "--messages " + *f.messages
                           : f.system ? "--chat with --system"
                                      : "--chat";
  check_prompt_size(what, bytes, min_chat_tokens(tok, msgs, needs_generation_prompt(msgs)), limit, tok);
  return encode_chat(tok, msgs, needs_generation_prompt(msgs));
}

int run_generate(const GenerateFlags& f) {
  ModelSource source = resolve_model(f.model);
  if (source.tokenizer_path.empty())
    throw std::runtime_error(fmt::format("model '{}' has no tokenizer.model", f.model));
  Tokenizer tok = Tokenizer::load(source.tokenizer_path);
  std::vector<int> prompt = prompt_ids(f, tok, max_sequence_length(source.config));

  GenerateOptions opt = generation_options(f.generation);
  opt.stop_ids = tok.stop_ids();
  opt.keep_logits = f.logits_out.has_value();
  // Opened first: a --logits-out that cannot be written fails before the model loads and generates.
  std::optional<OutputFile> logits_file;
  if (f.logits_out) logits_file.emplace(*f.logits_out);

  const bool json_out = f.json;
  BackendOptions bo = backend_options(choose_device(f.device), source, f.device);
  bo.max_sequences = 1;
  auto backend = make_backend(source, bo);
  if (const std::string note = quantize_at_load_note(source, bo.formats); !note.empty())
    fmt::print(stderr, "ridgeline: {}\n", note);
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
  const bool has_rate = decode_steps > 0 && r.decode_ms > 0;
  nlohmann::json stats = {
      {"device", to_string(backend->device())},
      {"weights", to_string(bo.formats.weights)},
      {"head", to_string(bo.formats.head)},
      {"kv", to_string(bo.formats.kv)},
      {"prompt_tokens", r.prefill_tokens},
      {"new_tokens", r.output_ids.size()},
      {"stop_reason", to_string(r.stop_reason)},
      {"prefill_ms", r.prefill_ms},
      {"prefill_tokens_per_s", r.prefill_ms > 0 ? r.prefill_tokens / (r.prefill_ms / 1e3) : 0.0},
      {"decode_ms", r.decode_ms},
      // null when no decode step ran (one new token, the prefill's): no rate, rather than a rate of 0
      {"decode_tokens_per_s", has_rate ? nlohmann::json(decode_steps / (r.decode_ms / 1e3)) : nullptr},
      {"ms_per_token", has_rate ? nlohmann::json(r.decode_ms / decode_steps) : nullptr}};
  if (logits_file) {
    logits_file->write(
        npy_f32({int64_t(r.output_ids.size()), int64_t(source.config.vocab)}, r.step_logits.data()));
    logits_file->publish();
  }
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
    // One new token is the prefill's: no decode step ran, so there is no decode rate to print.
    const std::string rate = has_rate ? fmt::format("{:.1f} tok/s decode, {:.2f} ms/token",
                                                    stats["decode_tokens_per_s"].get<double>(),
                                                    stats["ms_per_token"].get<double>())
                                      : std::string("no decode step");
    fmt::print(stderr, "[{} prompt + {} new tokens on {}, {}, stop: {}]\n", r.prefill_tokens,
               r.output_ids.size(), to_string(backend->device()), rate, to_string(r.stop_reason));
  }
  return 0;
}

Runner define_generate(CLI::App& app) {
  auto f = std::make_shared<GenerateFlags>();
  app.add_option("--model", f->model, "checkpoint folder or preset")->type_name("DIR|PRESET")->required();
  add_device_flags(app, f->device, true);
  app.add_option("--prompt", f->prompt, "raw text, special tokens included, as the prompt")
      ->type_name("TEXT");
  app.add_option("--chat", f->chat, "one user message, in the chat template")->type_name("TEXT");
  app.add_option("--system", f->system, "a system message before --chat's")->type_name("TEXT");
  app.add_option("--messages", f->messages, R"(a conversation: [{"role": ..., "content": ...}, ...])")
      ->type_name("FILE.json");
  add_generation_flags(app, f->generation, 256, 0);
  app.add_flag("--json", f->json, "print one JSON object: prompt_ids, output_ids, text, stats");
  app.add_option("--logits-out", f->logits_out, "write the float32 logits of every step, [steps, vocab]")
      ->type_name("FILE.npy")
      ->check(file_name());
  return [f](const std::vector<std::string>&) { return run_generate(*f); };
}

}  // namespace

RIDGELINE_COMMAND(Command{
    "generate", "one prompt in, one completion out (streamed, or one JSON object)",
    "generate --model DIR|PRESET [--device cuda|cpu] [--gpu N] [--weights fp16|w4a16] [--kv fp16|int8|int4]\n"
    "(--prompt TEXT | --chat TEXT [--system TEXT] | --messages FILE.json)\n"
    "[--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--json]\n"
    "[--logits-out FILE.npy]",
    define_generate});

}  // namespace ridgeline::cli
