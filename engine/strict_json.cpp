#include "engine/strict_json.h"

#include <stdexcept>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "engine/error_text.h"

namespace ridgeline {
namespace {

using nlohmann::json;

// Thrown from inside the parser callback, turned into the one-line error by parse_strict_json.
struct Refused {
  std::string why;
};

// One open object or array while parsing: the keys seen so far, or the index of the next element.
struct Frame {
  bool object = false;
  std::unordered_set<std::string> keys;
  std::string key;   // the key whose value is being parsed (objects)
  size_t index = 0;  // elements completed so far (arrays)
};

// "['weight_map']['w']" / "[1]": where in the document the frames point. A hostile file can nest
// 64 levels of long keys, so the path keeps its innermost steps (those name the object) within
// kMaxPathBytes and marks what it left out with "...".
constexpr size_t kMaxPathBytes = 120;

std::string location(const std::vector<Frame>& frames) {
  if (frames.size() <= 1) return "the top-level object";
  std::string path;
  for (size_t i = frames.size() - 1; i-- > 0;) {
    std::string step = frames[i].object ? fmt::format("['{}']", excerpt(frames[i].key, 40))
                                        : fmt::format("[{}]", frames[i].index);
    if (path.size() + step.size() > kMaxPathBytes) return "object ..." + path;
    path = step + path;
  }
  return "object " + path;
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the rest says where and why.
std::string parse_error_detail(const char* what) {
  std::string_view s(what);
  if (s.starts_with("[json.exception.")) {
    auto end = s.find("] ");
    if (end != std::string_view::npos) s.remove_prefix(end + 2);
  }
  return excerpt(s, 240);
}

}  // namespace

json parse_strict_json(std::string_view text, const std::string& where, std::string_view what,
                       int max_depth) {
  std::vector<Frame> frames;
  // A finished element of an array moves its index on, so that errors can say "[3]".
  auto element_done = [&] {
    if (!frames.empty() && !frames.back().object) ++frames.back().index;
  };
  json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= max_depth) throw Refused{fmt::format("nests deeper than {} levels", max_depth)};
        frames.push_back(Frame{event == json::parse_event_t::object_start, {}, {}, 0});
        break;
      case json::parse_event_t::key: {
        Frame& f = frames.back();
        f.key = parsed.get_ref<const std::string&>();
        if (!f.keys.insert(f.key).second)
          throw Refused{
              fmt::format("has the key '{}' twice in {} (keys must be unique: JSON readers disagree on which "
                          "copy counts)",
                          excerpt(f.key), location(frames))};
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames.pop_back();
        element_done();
        break;
      case json::parse_event_t::value:
        element_done();
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), check);
  } catch (const Refused& r) {
    throw std::runtime_error(fmt::format("{}: {} {}", where, what, r.why));
  } catch (const json::exception& e) {
    throw std::runtime_error(
        fmt::format("{}: {} is not valid JSON ({})", where, what, parse_error_detail(e.what())));
  }
}

std::string describe_json(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return fmt::format("an array of {}", v.size());
    case json::value_t::string:
      return fmt::format("a string ('{}')", excerpt(v.get_ref<const std::string&>(), 80));
    case json::value_t::boolean:
      return fmt::format("a boolean ({})", v.get<bool>());
    case json::value_t::null:
      return "null";
    case json::value_t::number_float:
      return fmt::format("a floating-point number ({})", v.dump());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return fmt::format("an integer ({})", v.dump());
    default:
      return "an unexpected value";
  }
}

}  // namespace ridgeline
