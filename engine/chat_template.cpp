#include "engine/chat_template.h"

#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/error_text.h"
#include "engine/strict_json.h"
#include "engine/text_file.h"

namespace ridgeline {

std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string text;
  for (const auto& m : messages) text += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) text += "<|im_start|>assistant\n";
  return text;
}

std::vector<ChatMessage> chat_messages(const std::string& user, const std::string& system) {
  std::vector<ChatMessage> messages;
  if (!system.empty()) messages.push_back({"system", system});
  messages.push_back({"user", user});
  return messages;
}

std::vector<ChatMessage> parse_messages_json(const std::string& path) {
  return parse_messages_text(read_text_file(path, "a messages JSON file"), path);
}

std::vector<ChatMessage> parse_messages_text(std::string_view text, const std::string& where) {
  constexpr const char* kExpected =
      R"(expected [{"role": "system"|"user"|"assistant", "content": "..."}, ...])";
  const nlohmann::json j = parse_strict_json(text, where, "messages file");
  if (!j.is_array() || j.empty())
    throw std::runtime_error(fmt::format("{}: messages must be a non-empty JSON array, found {}; {}", where,
                                         describe_json(j), kExpected));
  std::vector<ChatMessage> messages;
  messages.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& m = j[i];
    if (!m.is_object())
      throw std::runtime_error(fmt::format("{}: message {} must be an object, found {}; {}", where, i,
                                           describe_json(m), kExpected));
    auto string_field = [&](const char* key) -> const std::string& {
      auto it = m.find(key);
      if (it == m.end())
        throw std::runtime_error(fmt::format("{}: message {} has no \"{}\"; {}", where, i, key, kExpected));
      if (!it->is_string())
        throw std::runtime_error(fmt::format("{}: message {}: \"{}\" must be a string, found {}", where, i,
                                             key, describe_json(*it)));
      return it->get_ref<const std::string&>();
    };
    const std::string& r = string_field("role");
    const std::string& content = string_field("content");
    if (r != "system" && r != "user" && r != "assistant")
      throw std::runtime_error(fmt::format("{}: message {}: role '{}' is not one of system, user, assistant",
                                           where, i, excerpt(r)));
    messages.push_back({r, content});
  }
  return messages;
}

bool needs_generation_prompt(const std::vector<ChatMessage>& messages) {
  return messages.empty() || messages.back().role != "assistant";
}

namespace {

// The template after `<s>`, as render_chat() spells it: the markers are the special ids, each
// "role\ncontent" between them plain text (the same chunks encode() would see in the rendered text,
// so a message without special-token names tokenizes exactly as the whole rendered prompt does).
void append_messages(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                     bool add_generation_prompt, std::vector<int>& out) {
  const int start = tok.im_start_id(), end = tok.im_end_id();  // both throw, naming the tokenizer
  auto append = [&](const std::vector<int>& ids) { out.insert(out.end(), ids.begin(), ids.end()); };
  const std::vector<int> newline = tok.encode_text("\n");
  for (const auto& m : messages) {
    out.push_back(start);
    append(tok.encode_text(m.role + "\n" + m.content));
    out.push_back(end);
    append(newline);
  }
  if (add_generation_prompt) {
    out.push_back(start);
    append(tok.encode_text("assistant\n"));
  }
}

}  // namespace

std::vector<int> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                             bool add_generation_prompt) {
  std::vector<int> out = {tok.bos_id()};
  if (out[0] < 0) return tok.encode("", true);  // throws, naming the tokenizer
  append_messages(tok, messages, add_generation_prompt, out);
  return out;
}

std::vector<int> encode_next_turn(const Tokenizer& tok, const std::string& user_text) {
  std::vector<int> out = {tok.im_end_id()};
  const std::vector<int> newline = tok.encode_text("\n");
  out.insert(out.end(), newline.begin(), newline.end());
  append_messages(tok, {{"user", user_text}}, true, out);
  return out;
}

int64_t min_chat_tokens(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  return 1 + tok.min_tokens(render_chat(messages, add_generation_prompt).size());
}

}  // namespace ridgeline
