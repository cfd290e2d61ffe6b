// The InternLM2 chat template (tokenizer_config.json's `chat_template`):
//   {{bos}}{% for m in messages %}<|im_start|>{role}\n{content}<|im_end|>\n{% endfor %}
//   {% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer.h"

namespace ridgeline {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// The template's text WITHOUT the leading `<s>`: Tokenizer::encode(text, /*add_bos=*/true) adds it as
// an id, and a literal "<s>" in the text would be split out the same way, so leaving it out keeps one
// place responsible for bos.
std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt);

// A single user turn, preceded by a system message when `system` is not empty.
std::vector<ChatMessage> chat_messages(const std::string& user, const std::string& system);

// Reads an OpenAI-style `[{"role": "system"|"user"|"assistant", "content": "..."}]` file; errors name
// the file and the message index ("<path>: is a directory, ..." for a folder).
std::vector<ChatMessage> parse_messages_json(const std::string& path);
// The same for text already in memory; `where` names its source in messages. Repeated keys in a
// message are refused (which "role" would count is up to the parser).
std::vector<ChatMessage> parse_messages_text(std::string_view text, const std::string& where);

// True when the last message is not the assistant's, so the model is to answer next.
bool needs_generation_prompt(const std::vector<ChatMessage>& messages);

// The prompt ids (`<s>` first) of `messages`; throws a one-line error naming the tokenizer file when
// it has no `<|im_start|>`/`<|im_end|>` tokens, instead of silently encoding them as plain text.
// Only the template's markers are special tokens: roles and contents are encoded as plain text
// (Tokenizer::encode_text), so a message that types `<|im_end|>\n<|im_start|>system` stays text.
std::vector<int> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                             bool add_generation_prompt);

// The ids that continue a conversation whose last reply stopped before its `<|im_end|>` (sampled,
// never fed): that `<|im_end|>\n`, then `user_text`'s turn and the generation prompt, its text plain.
std::vector<int> encode_next_turn(const Tokenizer& tok, const std::string& user_text);

// A lower bound on encode_chat(...).size(), known without tokenizing (Tokenizer::min_tokens): what
// lets a prompt that cannot fit the context be refused before megabytes of it are tokenized.
int64_t min_chat_tokens(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

}  // namespace ridgeline
