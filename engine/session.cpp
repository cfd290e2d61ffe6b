#include "engine/session.h"

#include <algorithm>
#include <utility>

#include "engine/chat_template.h"

namespace ridgeline {

ChatSession::ChatSession(Backend& backend, const Tokenizer& tok, std::string system_prompt)
    : backend_(&backend), tok_(&tok), system_(std::move(system_prompt)) {
  seq_ = backend_->create_sequence();
}

ChatSession::~ChatSession() {
  try {
    backend_->release_sequence(seq_);
  } catch (...) {
    // A destructor must not throw; the backend goes away with the process anyway.
  }
}

std::vector<int> ChatSession::turn_prompt(const std::string& user_text) const {
  if (context_ids_.empty()) return encode_chat(*tok_, chat_messages(user_text, system_), true);
  // The previous reply's `<|im_end|>` was sampled but never fed, so it opens this turn:
  // encode_next_turn puts the template's markers in as ids and the user's text in as plain text, so
  // a `<|im_end|>` typed in the message cannot close the turn or open a system one.
  std::vector<int> ids = unfed_reply_;
  std::vector<int> rest = encode_next_turn(*tok_, user_text);
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}

int64_t ChatSession::context_tokens() const {
  return backend_->sequence_length(seq_);
}

int64_t ChatSession::context_limit() const {
  return std::min(backend_->max_sequence_length(), backend_->capacity_tokens() + context_tokens());
}

TurnResult ChatSession::reply(const std::string& user_text, const GenerateOptions& options,
                              const std::function<bool(int)>& on_token) {
  TurnResult result;
  std::vector<int> prompt = turn_prompt(user_text);
  // The reply's room is reserved up front: a turn either fits whole or is refused before any work,
  // never truncated halfway through an answer.
  const int64_t reserve = std::max(options.max_new_tokens, 0);
  const int64_t used = context_tokens();
  const int64_t left = std::min(backend_->max_sequence_length() - used, backend_->capacity_tokens());
  const int64_t needed = int64_t(prompt.size()) + reserve;
  if (needed > left) {
    ContextFull full;
    full.needed = needed;
    full.left = std::max<int64_t>(left, 0);
    full.fresh_needed =
        context_ids_.empty()
            ? needed
            : int64_t(encode_chat(*tok_, chat_messages(user_text, system_), true).size()) + reserve;
    full.limit = context_limit();
    result.context_full = full;
    return result;
  }

  bool interrupted_token = false;
  auto forward_token = [&](int id) {
    if (on_token && !on_token(id)) {
      interrupted_token = true;
      return false;
    }
    return true;
  };
  GenerateResult g;
  try {
    g = generate(*backend_, seq_, prompt, options, forward_token);
  } catch (...) {
    reset();
    throw;
  }

  context_ids_.insert(context_ids_.end(), prompt.begin(), prompt.end());
  const size_t n = g.output_ids.size();
  // generate() feeds every token it samples except the last one.
  if (n > 1) context_ids_.insert(context_ids_.end(), g.output_ids.begin(), g.output_ids.end() - 1);
  unfed_reply_.clear();
  result.reply_ids = g.output_ids;
  if (interrupted_token) {
    result.reply_ids.pop_back();  // the caller refused it: it was never shown
  } else if (n > 0 && g.stop_reason != StopReason::stop_token) {
    unfed_reply_.push_back(g.output_ids.back());  // the reply was cut after this token, which was shown
  }

  TurnStats& s = result.stats;
  s.prefill_tokens = g.prefill_tokens;
  s.prefill_ms = g.prefill_ms;
  s.reply_tokens = int(result.reply_ids.size());
  s.decode_tokens = n > 1 ? int(n - 1) : 0;
  s.decode_ms = g.decode_ms;
  s.context_after_prefill = used + int64_t(prompt.size());
  s.stop_reason = g.stop_reason;
  last_ = s;
  ++turns_;
  return result;
}

void ChatSession::reset() {
  backend_->release_sequence(seq_);
  seq_ = backend_->create_sequence();
  context_ids_.clear();
  unfed_reply_.clear();
  turns_ = 0;
}

void ChatSession::set_system(std::string system_prompt) {
  system_ = std::move(system_prompt);
  reset();
}

}  // namespace ridgeline
