#include "engine/chat_template.h"

#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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
  nlohmann::json j;
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("cannot open messages file '{}'", path));
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("messages file '{}' is not valid JSON: {}", path, e.what()));
  }
  constexpr const char* kExpected =
      R"(expected [{"role": "system"|"user"|"assistant", "content": "..."}, ...])";
  if (!j.is_array() || j.empty())
    throw std::runtime_error(
        fmt::format("messages file '{}' must be a non-empty JSON array: {}", path, kExpected));
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& m = j[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw std::runtime_error(fmt::format(
          "messages file '{}', message {}: needs string \"role\" and \"content\"; {}", path, i, kExpected));
    std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant")
      throw std::runtime_error(fmt::format(
          "messages file '{}', message {}: role '{}' is not one of system, user, assistant", path, i, role));
    messages.push_back({role, m["content"].get<std::string>()});
  }
  return messages;
}

bool needs_generation_prompt(const std::vector<ChatMessage>& messages) {
  return messages.empty() || messages.back().role != "assistant";
}

std::vector<int> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                             bool add_generation_prompt) {
  tok.im_start_id();  // both throw, naming the tokenizer, when the chat tokens are missing
  tok.im_end_id();
  return tok.encode(render_chat(messages, add_generation_prompt), true);
}

}  // namespace ridgeline
