#include "engine/utf8_stream.h"

#include "engine/tokenizer.h"

namespace ridgeline {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class StepKind { kChar, kInvalid, kIncomplete };

struct Step {
  StepKind kind;
  size_t length;  // bytes of the character, of the invalid subpart, or of the unfinished prefix
};

// Looks at the sequence starting at s[0] (s is not empty), following the well-formed byte sequences of
// Unicode's table 3-7: the second byte's range depends on the lead byte, which rules out overlong forms,
// surrogates and code points above U+10FFFF.
Step step(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char lead = b(0);
  size_t need = 0;                     // continuation bytes that follow the lead
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
  if (lead < 0x80) return {StepKind::kChar, 1};
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead == 0xE0) {
    need = 2, lo = 0xA0;
  } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
    need = 2;
  } else if (lead == 0xED) {
    need = 2, hi = 0x9F;
  } else if (lead == 0xF0) {
    need = 3, lo = 0x90;
  } else if (lead >= 0xF1 && lead <= 0xF3) {
    need = 3;
  } else if (lead == 0xF4) {
    need = 3, hi = 0x8F;
  } else {
    return {StepKind::kInvalid, 1};
  }
  for (size_t i = 1; i <= need; ++i) {
    if (i >= s.size()) return {StepKind::kIncomplete, i};
    unsigned char c = b(i);
    bool ok = i == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return {StepKind::kInvalid, i};
  }
  return {StepKind::kChar, need + 1};
}

}  // namespace

size_t append_valid_utf8(std::string_view bytes, bool at_end, std::string& out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    Step st = step(bytes.substr(pos));
    if (st.kind == StepKind::kIncomplete && !at_end) break;
    if (st.kind == StepKind::kChar) {
      out.append(bytes.substr(pos, st.length));
    } else {
      out.append(kReplacement);
    }
    pos += st.length;
  }
  return pos;
}

bool is_valid_utf8(std::string_view bytes) {
  for (size_t pos = 0; pos < bytes.size();) {
    Step st = step(bytes.substr(pos));
    if (st.kind != StepKind::kChar) return false;
    pos += st.length;
  }
  return true;
}

std::string Utf8Stream::push(int id) {
  if (tok_->is_special(id)) return {};
  pending_ += tok_->token_text(id);
  std::string out;
  pending_.erase(0, append_valid_utf8(pending_, false, out));
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  append_valid_utf8(pending_, true, out);
  pending_.clear();
  return out;
}

}  // namespace ridgeline
