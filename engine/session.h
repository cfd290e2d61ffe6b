// A multi-turn chat over one backend sequence. The KV cache of earlier turns is kept, so each turn
// prefills only its own new tokens: the close of the previous reply, the user turn and the
// generation prompt, rendered with the InternLM2 chat template. Because the tokenizer splits on
// special tokens before anything else, tokenizing the conversation turn by turn gives the same ids as
// tokenizing it whole (tests/test_chat.cpp checks this against reference.json).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/generate.h"
#include "engine/tokenizer.h"

namespace ridgeline {

// What the last turn cost. Decode steps are the reply tokens after the first: the prefill's logits
// give the first one (generate() times its sampling with the prefill).
struct TurnStats {
  int prefill_tokens = 0;  // tokens this turn fed before its first reply token
  double prefill_ms = 0.0;
  int reply_tokens = 0;   // tokens generated, the stop token included
  int decode_tokens = 0;  // decode steps
  double decode_ms = 0.0;
  int64_t context_after_prefill = 0;          // tokens cached when decoding began (bytes per step)
  StopReason stop_reason = StopReason::none;  // generate()'s

  double prefill_tokens_per_s() const { return prefill_ms > 0 ? prefill_tokens / (prefill_ms / 1e3) : 0.0; }
  double decode_tokens_per_s() const { return decode_ms > 0 ? decode_tokens / (decode_ms / 1e3) : 0.0; }
  double ms_per_token() const { return decode_tokens > 0 ? decode_ms / decode_tokens : 0.0; }
};

// A turn that was refused because it would not fit: nothing ran and the session is as it was.
struct ContextFull {
  int64_t needed = 0;        // this turn's prompt tokens + the reply's room (max_new_tokens)
  int64_t left = 0;          // tokens the conversation can still take
  int64_t fresh_needed = 0;  // what the same message needs as the first turn of a new conversation
  int64_t limit = 0;         // what a new conversation can hold
  bool fits_new_conversation() const { return fresh_needed <= limit; }
};

struct TurnResult {
  std::optional<ContextFull> context_full;  // set when the turn was refused; the rest is then empty
  std::vector<int> reply_ids;               // as generated, the stop token included
  TurnStats stats;
};

class ChatSession {
 public:
  // Takes one sequence slot of `backend` for the whole session (released by the destructor). Both
  // references must outlive the session. Throws like Backend::create_sequence() when no slot is free.
  ChatSession(Backend& backend, const Tokenizer& tok, std::string system_prompt = "");
  ~ChatSession();
  ChatSession(const ChatSession&) = delete;
  ChatSession& operator=(const ChatSession&) = delete;

  // The ids the next turn would prefill for `user_text`: on the first turn `<s>`, the system turn
  // (when there is a system prompt), the user turn and `<|im_start|>assistant\n`; later, the close of
  // the previous reply (`<|im_end|>\n`, which generation stopped on without feeding it to the cache)
  // followed by the user turn and the generation prompt.
  std::vector<int> turn_prompt(const std::string& user_text) const;

  // Runs one turn. Refuses it (TurnResult::context_full, nothing run) unless the turn's prompt plus
  // `options.max_new_tokens` for the reply fit both the sequence's maximum length and the KV cache,
  // so that a reply is never cut short by the context. `on_token` sees each reply token; returning
  // false interrupts the reply, and that token is not part of it. An interrupted or cut-off reply is
  // closed with `<|im_end|>` by the next turn, so the conversation stays well formed. If the backend
  // throws mid-turn the session starts a new conversation (the cache may hold half a turn) and rethrows.
  TurnResult reply(const std::string& user_text, const GenerateOptions& options,
                   const std::function<bool(int)>& on_token = {});

  // A new conversation with the same system prompt: releases the sequence and takes a fresh one.
  void reset();
  // A new conversation with `system_prompt` (empty: none).
  void set_system(std::string system_prompt);
  const std::string& system() const { return system_; }

  // Tokens in the conversation's KV cache.
  int64_t context_tokens() const;
  // The most tokens a conversation can hold on this backend.
  int64_t context_limit() const;
  // Every id fed to the cache so far, in order (its length is context_tokens()).
  const std::vector<int>& context_ids() const { return context_ids_; }
  // Turns answered since the last reset (refused turns do not count).
  int turns() const { return turns_; }
  // Stats of the last turn that ran (zeros before any).
  const TurnStats& last_turn() const { return last_; }

 private:
  Backend* backend_;
  const Tokenizer* tok_;
  std::string system_;
  int seq_ = -1;
  int turns_ = 0;
  std::vector<int> context_ids_;
  // Reply tokens generated but not fed to the cache yet, which the next turn feeds before its close.
  // generate() never feeds the last token it samples: a stop token is replaced by `<|im_end|>`, a
  // token that ended a reply at max_new_tokens is kept (the user saw it).
  std::vector<int> unfed_reply_;
  TurnStats last_;
};

}  // namespace ridgeline
