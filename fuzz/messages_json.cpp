// Fuzzes parse_messages_text(), the --messages file format [{"role", "content"}], and renders what
// it accepts with the chat template: every accepted message has one of the three roles, and the
// rendered prompt holds each message's content.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "engine/chat_template.h"
#include "fuzz/fuzz_checks.h"

using namespace ridgeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<ChatMessage> messages;
  try {
    messages = parse_messages_text(text, "fuzz/messages.json");
  } catch (const std::runtime_error& e) {
    fuzz::check_error_line(e);
    return 0;
  }
  fuzz::require(!messages.empty(), "accepted an empty conversation");
  size_t content_bytes = 0;
  for (const ChatMessage& m : messages) {
    fuzz::require(m.role == "system" || m.role == "user" || m.role == "assistant", "accepted an unknown role",
                  m.role);
    content_bytes += m.content.size();
  }
  std::string prompt = render_chat(messages, needs_generation_prompt(messages));
  fuzz::require(prompt.size() >= content_bytes, "rendered prompt lost content");
  return 0;
}
