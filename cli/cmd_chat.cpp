// ridgeline chat: an interactive multi-turn conversation, the sanity check that the engine really
// works. With a terminal on stdin it prompts and colours on stderr; with a pipe it reads one message
// per line and writes only the replies to stdout, one line per message (an empty line for a turn
// that was refused or failed), so that it can be scripted and tested.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "analysis/units.h"
#include "bench/step_bandwidth.h"
#include "cli/backend_select.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/generation_flags.h"
#include "engine/backend_factory.h"
#include "engine/chat_template.h"
#include "engine/generate.h"
#include "engine/model_source.h"
#include "engine/session.h"
#include "engine/tokenizer.h"
#include "engine/utf8_stream.h"

namespace ridgeline::cli {
namespace {

struct ChatFlags {
  std::string model;
  DeviceFlags device;
  std::string system;
  GenerationFlags generation;
  bool quiet = false;
  bool auto_reset = false;
  int token_delay_ms = 0;
};

constexpr const char* kHelp =
    "commands: /reset (new conversation), /system TEXT (new conversation with that system prompt), /stats, "
    "/exit; a line ending in \\ continues on the next; Ctrl-C stops a reply, Ctrl-D exits";

constexpr const char* kDim = "\x1b[2m";
constexpr const char* kBold = "\x1b[1m";
constexpr const char* kReset = "\x1b[0m";

// Set by SIGINT. A lock-free atomic is safe to store to from a signal handler.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_sigint(int) {
  g_interrupted.store(true);
}

// Installs the SIGINT handler for the chat's lifetime. Without SA_RESTART, so that a Ctrl-C while
// waiting for input makes read() fail with EINTR instead of being swallowed.
class SigintGuard {
 public:
  SigintGuard() {
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, &old_);
  }
  ~SigintGuard() { sigaction(SIGINT, &old_, nullptr); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction old_ = {};
};

// Lines from stdin through read(2) rather than iostreams: a Ctrl-C at the prompt must be seen (as
// EINTR) to clear the line, where std::getline would report it as the end of input.
class LineReader {
 public:
  enum class Status { line, interrupted, eof };

  Status next(std::string& line) {
    for (;;) {
      if (size_t nl = buf_.find('\n'); nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return Status::line;
      }
      if (eof_) {
        if (buf_.empty()) return Status::eof;
        line = std::move(buf_);  // a last line without a newline
        buf_.clear();
        return Status::line;
      }
      // A Ctrl-C can land just before read() starts, where it would not interrupt it: check the flag
      // first, and wait in short polls so that such a signal is seen within 100 ms.
      if (g_interrupted.exchange(false)) {
        buf_.clear();
        return Status::interrupted;
      }
      pollfd p{STDIN_FILENO, POLLIN, 0};
      int ready = ::poll(&p, 1, 100);
      if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
      if (ready < 0) throw std::runtime_error(fmt::format("waiting for stdin: {}", std::strerror(errno)));
      char chunk[4096];
      ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n > 0) {
        buf_.append(chunk, size_t(n));
      } else if (n == 0) {
        eof_ = true;
      } else if (errno == EINTR) {
        if (g_interrupted.exchange(false)) {
          buf_.clear();  // the terminal has discarded what was typed on the line; so do we
          return Status::interrupted;
        }
      } else {
        throw std::runtime_error(fmt::format("reading stdin: {}", std::strerror(errno)));
      }
    }
  }

 private:
  std::string buf_;
  bool eof_ = false;
};

struct ChatIo {
  bool interactive = false;  // stdin is a terminal: prompts and notes for a person
  bool colour = false;       // stderr is a terminal too
  bool quiet = false;

  void prompt(bool continuation) const {
    if (interactive)
      fmt::print(stderr, "{}{}{}", colour ? kBold : "", continuation ? "... " : ">>> ", colour ? kReset : "");
  }
  // A line for the person at the terminal (or the log of a scripted run), never on stdout.
  void note(const std::string& text) const {
    fmt::print(stderr, "{}{}{}\n", colour ? kDim : "", text, colour ? kReset : "");
  }
};

void print_stats(const ChatSession& session, StepBandwidth& bw, DeviceKind device, const Formats& formats,
                 const ChatIo& io) {
  io.note(fmt::format("tokens in context: {} of {}", session.context_tokens(), session.context_limit()));
  const TurnStats& s = session.last_turn();
  if (s.stop_reason == StopReason::none) {
    io.note("last reply: none yet");
    return;
  }
  io.note(
      fmt::format("last reply: prefill {} tokens in {:.1f} ms ({:.1f} tok/s); decode {} tokens in {:.1f} ms "
                  "({:.1f} tok/s, {:.2f} ms/token); stop: {}",
                  s.prefill_tokens, s.prefill_ms, s.prefill_tokens_per_s(), s.decode_tokens, s.decode_ms,
                  s.decode_tokens_per_s(), s.ms_per_token(), to_string(s.stop_reason)));
  if (s.decode_tokens == 0) return;
  // Step i (1-based) of the reply attends context_after_prefill + i tokens; the cost is affine in the
  // context, so the bytes at the mean context are the mean bytes per step.
  double bytes = bw.step_bytes(s.context_after_prefill + (s.decode_tokens + 1) / 2);
  double gbps = bytes / (s.ms_per_token() / 1e3) / 1e9;
  std::string line = fmt::format("bandwidth: {:.1f} MB per decode step (cost model) -> {} achieved",
                                 bytes / 1e6, format_bandwidth(gbps));
  if (const auto& peak = bw.peak())
    line += fmt::format(" of {} peak ({}), {:.1f}%", format_bandwidth(peak->peak_GBps), bw.peak_name(),
                        100.0 * gbps / peak->peak_GBps);
  io.note(line);
  if (device == DeviceKind::cpu)
    io.note(fmt::format("{}: the cost model counts the format's bytes, the CPU moves more",
                        cpu_storage_note(formats)));
}

// What a turn that does not fit even a new conversation must shorten: the message, and the system
// prompt when there is one (it is part of every new conversation's first turn).
std::string what_to_shorten(bool has_system) {
  return has_system
             ? "shorten the message or the system prompt (--system, /system), or lower --max-new-tokens"
             : "shorten the message or lower --max-new-tokens";
}

std::string context_full_message(const ContextFull& f, bool has_system) {
  std::string msg = fmt::format("context full: this turn needs {} tokens, {} left; ", f.needed, f.left);
  if (f.fits_new_conversation()) return msg + "/reset to start a new conversation";
  return msg + fmt::format(
                   "even a new conversation holds only {} ({}the message plus --max-new-tokens for "
                   "the reply): {}",
                   f.limit, has_system ? "the system prompt, " : "", what_to_shorten(has_system));
}

// Why `system` leaves no room in a new conversation for a one-token message and a reply of
// `max_new_tokens` (a sentence after the system prompt's name: "is too long: ..."), or nothing when
// it fits. Sized by its lower bound first (a pasted megabyte would take minutes to tokenize), then
// exactly.
std::optional<std::string> system_prompt_refusal(const Tokenizer& tok, const std::string& system,
                                                 int max_new_tokens, int64_t limit) {
  if (system.empty()) return std::nullopt;
  const auto msgs = chat_messages("", system);
  const int64_t room = limit - max_new_tokens - 1;
  int64_t tokens = min_chat_tokens(tok, msgs, true);
  const bool bound = tokens > room;
  if (!bound) tokens = int64_t(encode_chat(tok, msgs, true).size());
  if (tokens <= room) return std::nullopt;
  return fmt::format(
      "is too long: its {} bytes are {}{} tokens in the chat template, and with --max-new-tokens {} for a "
      "reply the context of {} has no room for a message",
      system.size(), bound ? "at least " : "", tokens, max_new_tokens, limit);
}

// Reads one message: lines ending in `\` continue it. nullopt at the end of input.
std::optional<std::string> read_message(LineReader& reader, const ChatIo& io) {
  std::string text;
  bool continuation = false;
  for (;;) {
    io.prompt(continuation);
    std::string line;
    switch (reader.next(line)) {
      case LineReader::Status::eof:
        if (io.interactive) fmt::print(stderr, "\n");
        if (!text.empty()) return text;  // an unfinished continuation still counts
        return std::nullopt;
      case LineReader::Status::interrupted:
        if (io.interactive) fmt::print(stderr, "\n");
        text.clear();
        continuation = false;
        continue;
      case LineReader::Status::line:
        break;
    }
    if (!line.empty() && line.back() == '\\') {
      line.pop_back();
      text += line + "\n";
      continuation = true;
      continue;
    }
    return text + line;
  }
}

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

int run_chat(const ChatFlags& f) {
  ModelSource source = resolve_model(f.model);
  if (source.tokenizer_path.empty())
    throw std::runtime_error(fmt::format("model '{}' has no tokenizer.model", f.model));

  GenerateOptions opt = generation_options(f.generation);
  const int token_delay_ms = f.token_delay_ms;

  ChatIo io;
  io.interactive = ::isatty(STDIN_FILENO);
  io.colour = io.interactive && ::isatty(STDERR_FILENO);
  io.quiet = f.quiet;

  Tokenizer tok = Tokenizer::load(source.tokenizer_path);
  opt.stop_ids = tok.stop_ids();
  const DeviceKind device = choose_device(f.device);
  BackendOptions bo = backend_options(device, source, f.device);
  bo.max_sequences = 1;
  auto backend = make_backend(source, bo);
  if (const std::string note = quantize_at_load_note(source, bo.formats); !note.empty()) io.note(note);
  ChatSession session(*backend, tok, f.system);
  if (auto why = system_prompt_refusal(tok, f.system, opt.max_new_tokens, session.context_limit()))
    throw std::runtime_error("--system " + *why);
  StepBandwidth bw(*backend);

  if (io.interactive) {
    io.note(fmt::format("ridgeline chat: {} on {} ({} weights{}, {} KV), context {} tokens",
                        source.config.name, backend->device_name(), to_string(bo.formats.weights),
                        bo.formats.head == WeightFormat::w4a16 ? ", 4-bit head" : "",
                        to_string(bo.formats.kv), session.context_limit()));
    if (device == DeviceKind::cpu) io.note(cpu_storage_note(bo.formats));
    io.note(kHelp);
  }

  SigintGuard sigint;
  LineReader reader;
  for (;;) {
    std::optional<std::string> message = read_message(reader, io);
    if (!message) return 0;
    if (blank(*message)) continue;

    if (message->front() == '/' && message->find('\n') == std::string::npos) {
      std::string cmd = message->substr(0, message->find(' '));
      std::string arg = cmd.size() < message->size() ? message->substr(cmd.size() + 1) : "";
      if (cmd == "/exit") return 0;
      if (cmd == "/reset") {
        session.reset();
        io.note("(new conversation)");
      } else if (cmd == "/system") {
        if (auto why = system_prompt_refusal(tok, arg, opt.max_new_tokens, session.context_limit())) {
          io.note("/system: that system prompt " + *why +
                  "; the conversation and its system prompt are unchanged");
          continue;
        }
        session.set_system(arg);
        io.note(arg.empty() ? "(new conversation, no system prompt)"
                            : "(new conversation with that system prompt)");
      } else if (cmd == "/stats") {
        print_stats(session, bw, device, bo.formats, io);
      } else if (cmd == "/help") {
        io.note(kHelp);
      } else {
        io.note(fmt::format("unknown command '{}'; {}", cmd, kHelp));
      }
      continue;
    }

    // A message that cannot fit even a new conversation is refused before it is tokenized (a
    // pasted megabyte would take minutes): min_chat_tokens() is a lower bound on its tokens.
    if (int64_t at_least = min_chat_tokens(tok, chat_messages(*message, session.system()), true);
        at_least + opt.max_new_tokens > session.context_limit()) {
      const bool has_system = !session.system().empty();
      io.note(fmt::format(
          "context full: this turn needs at least {} tokens ({} bytes of text{}, at most {} a token, "
          "plus --max-new-tokens for the reply); even a new conversation holds only {}: {}",
          at_least + opt.max_new_tokens, message->size() + session.system().size(),
          has_system ? " with the system prompt" : "", tok.max_token_bytes(), session.context_limit(),
          what_to_shorten(has_system)));
      if (!io.interactive) {
        std::fputc('\n', stdout);  // the refused turn's empty reply, so that lines stay paired
        std::fflush(stdout);
      }
      continue;
    }

    Utf8Stream stream(tok);
    bool printed = false;
    auto on_token = [&](int id) {
      if (g_interrupted.load()) return false;
      std::string text = stream.push(id);
      if (!text.empty()) {
        printed = true;
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      }
      if (token_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(token_delay_ms));
      return true;
    };
    TurnResult turn;
    try {
      turn = session.reply(*message, opt, on_token);
      if (turn.context_full && f.auto_reset && session.turns() > 0 &&
          turn.context_full->fits_new_conversation()) {
        io.note("(context full: --auto-reset starts a new conversation for this message)");
        session.reset();
        turn = session.reply(*message, opt, on_token);
      }
    } catch (const std::exception& e) {
      // End the half-printed reply's line; piped, an empty line keeps replies paired with messages.
      if (printed || !io.interactive) std::fputc('\n', stdout);
      std::fflush(stdout);
      io.note(fmt::format("error: {}; starting a new conversation", e.what()));
      continue;
    }
    if (turn.context_full) {
      io.note(context_full_message(*turn.context_full, !session.system().empty()));
      if (!io.interactive) {
        std::fputc('\n', stdout);  // the refused turn's empty reply, so that lines stay paired
        std::fflush(stdout);
      }
      continue;
    }
    std::string rest = stream.flush();
    rest += '\n';
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fflush(stdout);
    const TurnStats& s = turn.stats;
    if (s.stop_reason == StopReason::interrupted) io.note("[interrupted]");
    g_interrupted.store(false);  // that Ctrl-C was for the reply, not for the next prompt
    if (s.stop_reason == StopReason::max_new_tokens)
      io.note(fmt::format("[reply cut at --max-new-tokens {}]", opt.max_new_tokens));
    if (!io.quiet)
      io.note(fmt::format("[{} tokens, {:.1f} tok/s; prefill {} tokens, {:.1f} tok/s]", s.reply_tokens,
                          s.decode_tokens_per_s(), s.prefill_tokens, s.prefill_tokens_per_s()));
  }
}

Runner define_chat(CLI::App& app) {
  auto f = std::make_shared<ChatFlags>();
  app.add_option("--model", f->model, "checkpoint folder or preset")->type_name("DIR|PRESET")->required();
  add_device_flags(app, f->device, true);
  app.add_option("--system", f->system, "the system prompt of the conversation")->type_name("TEXT");
  add_generation_flags(app, f->generation, 512, 1);
  app.add_flag("--auto-reset", f->auto_reset,
               "when a message does not fit the conversation, start a new one for it instead of refusing it");
  app.add_flag("--quiet", f->quiet, "no stats line after each reply");
  // Hidden (no group): slows each streamed token down so that tests can interrupt a reply of the
  // tiny model, which otherwise ends in milliseconds.
  app.add_option("--token-delay-ms", f->token_delay_ms)->group("")->check(integer_in(0, 60'000));
  return [f](const std::vector<std::string>&) { return run_chat(*f); };
}

}  // namespace

RIDGELINE_COMMAND(Command{
    "chat", "an interactive multi-turn conversation; piped, one message per line in, one reply per line out",
    "chat --model DIR|PRESET [--device cuda|cpu] [--gpu N] [--weights fp16|w4a16] [--kv fp16|int8|int4]\n"
    "[--system TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
    "[--auto-reset] [--quiet]",
    define_chat});

}  // namespace ridgeline::cli
