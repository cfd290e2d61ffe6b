// Read-only, memory-mapped safetensors files (the Hugging Face format: an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw data).
// The header is treated as untrusted input: every size is overflow-checked and every byte range is
// proved to lie inside the file before a TensorView is handed out, so a truncated or lying file
// yields one error line instead of an out-of-bounds read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ridgeline {

// Every dtype the safetensors format names (its spelling is in to_string()).
enum class DType { f64, f32, f16, bf16, i64, i32, i16, i8, u64, u32, u16, u8, boolean, f8_e4m3, f8_e5m2 };

const char* to_string(DType d);                           // "F32", "BF16", ... as safetensors spells it
std::optional<DType> parse_dtype(std::string_view name);  // nullopt for a name safetensors does not define
size_t dtype_size(DType d);                               // bytes per element

struct TensorView {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapping; no alignment promised (read with memcpy)
  size_t nbytes = 0;
  std::string file;  // path of the file that holds it, for messages
  int64_t numel() const;
};

// "[640, 512]", for messages.
std::string shape_string(const std::vector<int64_t>& shape);

// Largest JSON header a file may declare: real checkpoints stay far below (a 20B model's is ~30 kB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull * 1000 * 1000;

// What the bytes of a safetensors file describe: its tensors in file order, each view pointing into
// `bytes`, and the string entries of "__metadata__".
struct SafetensorsContents {
  std::vector<TensorView> tensors;
  std::map<std::string, std::string> metadata;
};

// Validates a whole safetensors file held in memory (length field, JSON header, layout of the data)
// and describes it; throws std::runtime_error("<where>: <what>") on anything malformed, quoting
// untrusted names with excerpt(). Every view it returns lies inside [bytes, bytes + size).
SafetensorsContents parse_safetensors(const uint8_t* bytes, size_t size, const std::string& where);

class SafetensorsFile {
 public:
  // Maps `path` and validates it with parse_safetensors(); throws std::runtime_error("<path>: <what>")
  // on anything malformed (the tensor is named where one is involved).
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // In file order (ascending data offset). Views stay valid while this object (or what it was moved
  // into) lives: moving keeps the mapping where it is.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;  // nullptr when absent
  // String entries of "__metadata__" (e.g. {"format": "pt"}).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  size_t file_size() const { return size_; }

 private:
  void release() noexcept;

  std::string path_;
  int fd_ = -1;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

}  // namespace ridgeline
