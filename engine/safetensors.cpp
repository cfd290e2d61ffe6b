#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/error_text.h"
#include "engine/strict_json.h"

namespace ridgeline {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", file, what));
}

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::f64, "F64", 8},      {DType::f32, "F32", 4},         {DType::f16, "F16", 2},
    {DType::bf16, "BF16", 2},    {DType::i64, "I64", 8},         {DType::i32, "I32", 4},
    {DType::i16, "I16", 2},      {DType::i8, "I8", 1},           {DType::u64, "U64", 8},
    {DType::u32, "U32", 4},      {DType::u16, "U16", 2},         {DType::u8, "U8", 1},
    {DType::boolean, "BOOL", 1}, {DType::f8_e4m3, "F8_E4M3", 1}, {DType::f8_e5m2, "F8_E5M2", 1},
};

const DTypeInfo& info(DType d) {
  for (const auto& i : kDTypes)
    if (i.dtype == d) return i;
  throw std::logic_error("DType without an entry in kDTypes");
}

// One dimension of a shape: a non-negative integer that fits int64.
int64_t read_dim(const json& d, const std::string& file, const std::string& tensor) {
  if (d.is_number_unsigned()) {
    uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(file, fmt::format("tensor '{}': dimension {} overflows int64", tensor, v));
    return static_cast<int64_t>(v);
  }
  if (d.is_number_integer())
    fail(file, fmt::format("tensor '{}': negative dimension {} in shape", tensor, d.get<int64_t>()));
  if (d.is_number_float())
    fail(file, fmt::format("tensor '{}': shape dimension {} is not an integer (too large or fractional)",
                           tensor, excerpt(d.dump())));
  fail(file, fmt::format("tensor '{}': shape must hold integers, found {}", tensor, describe_json(d)));
}

uint64_t read_offset(const json& d, const std::string& file, const std::string& tensor) {
  if (d.is_number_unsigned()) return d.get<uint64_t>();
  if (d.is_number_integer())
    fail(file, fmt::format("tensor '{}': negative data offset {}", tensor, d.get<int64_t>()));
  fail(file, fmt::format("tensor '{}': data_offsets must be two non-negative integers, found {}", tensor,
                         describe_json(d)));
}

struct Entry {
  TensorView view;
  uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& raw_name, const json& e, const std::string& file, uint64_t data_size) {
  const std::string name = excerpt(raw_name);  // for messages: names come from the file
  if (!e.is_object())
    fail(file, fmt::format("tensor '{}': header entry must be an object, got {}", name, describe_json(e)));
  Entry out;
  out.view.name = raw_name;
  out.view.file = file;

  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) fail(file, fmt::format("tensor '{}': missing string 'dtype'", name));
  auto dtype = parse_dtype(dt->get<std::string>());
  if (!dtype)
    fail(file, fmt::format("tensor '{}': unknown dtype '{}'", name,
                           excerpt(dt->get_ref<const std::string&>(), 32)));
  out.view.dtype = *dtype;

  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) fail(file, fmt::format("tensor '{}': missing array 'shape'", name));
  int64_t numel = 1;
  for (const auto& d : *sh) {
    int64_t dim = read_dim(d, file, name);
    out.view.shape.push_back(dim);
    if (__builtin_mul_overflow(numel, dim, &numel))
      fail(file,
           fmt::format("tensor '{}': element count of shape {} overflows int64", name, excerpt(sh->dump())));
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel), static_cast<uint64_t>(dtype_size(*dtype)),
                             &nbytes))
    fail(file, fmt::format("tensor '{}': byte size of shape {} overflows", name, excerpt(sh->dump())));

  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2)
    fail(file, fmt::format("tensor '{}': 'data_offsets' must be an array of 2 integers", name));
  out.begin = read_offset((*off)[0], file, name);
  out.end = read_offset((*off)[1], file, name);
  if (out.begin > out.end)
    fail(file,
         fmt::format("tensor '{}': data_offsets [{}, {}] end before they begin", name, out.begin, out.end));
  if (out.end > data_size)
    fail(file,
         fmt::format("tensor '{}': data_offsets [{}, {}] run past the end of the data ({} bytes after the "
                     "header; the file is truncated or the header lies)",
                     name, out.begin, out.end, data_size));
  if (out.end - out.begin != nbytes)
    fail(file,
         fmt::format("tensor '{}': shape {} of dtype {} needs {} bytes but data_offsets [{}, {}] hold {}",
                     name, shape_string(out.view.shape), to_string(*dtype), nbytes, out.begin, out.end,
                     out.end - out.begin));
  out.view.nbytes = static_cast<size_t>(nbytes);
  return out;
}

// safetensors writers lay tensors out back to back from offset 0 to the end of the file; anything
// else (overlap, holes, trailing bytes) means a corrupt or hand-edited file, so it is rejected.
void check_layout(std::vector<Entry>& entries, uint64_t data_size, const std::string& file) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const std::string* prev = nullptr;
  for (const auto& e : entries) {
    if (e.begin < pos)
      fail(file, fmt::format("tensor '{}' (bytes [{}, {})) overlaps tensor '{}' (which ends at {})",
                             excerpt(e.view.name), e.begin, e.end, excerpt(*prev), pos));
    if (e.begin > pos) {
      if (prev)
        fail(file,
             fmt::format("gap of {} unused bytes between tensor '{}' (ends at {}) and tensor '{}' (starts "
                         "at {}); tensors must be contiguous",
                         e.begin - pos, excerpt(*prev), pos, excerpt(e.view.name), e.begin));
      fail(file,
           fmt::format("gap of {} unused bytes before the first tensor '{}'; data must start at offset 0",
                       e.begin, excerpt(e.view.name)));
    }
    pos = e.end;
    prev = &e.view.name;
  }
  if (pos != data_size)
    fail(file,
         fmt::format("{} bytes of data after the last tensor{} (data is {} bytes, tensors end at {})",
                     data_size - pos, prev ? " '" + excerpt(*prev) + "'" : std::string{}, data_size, pos));
}

}  // namespace

const char* to_string(DType d) {
  return info(d).name;
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& i : kDTypes)
    if (name == i.name) return i.dtype;
  return std::nullopt;
}

size_t dtype_size(DType d) {
  return info(d).size;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // cannot overflow: SafetensorsFile checked it
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

SafetensorsContents parse_safetensors(const uint8_t* bytes, size_t size, const std::string& where) {
  if (size == 0)
    fail(where, "file is empty (expected an 8-byte header length, a JSON header and tensor data)");
  if (size < 8)
    fail(where,
         fmt::format("file is {} bytes, shorter than the 8-byte header length that starts a safetensors file",
                     size));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian on any host
  if (header_len > kMaxSafetensorsHeaderBytes)
    fail(where, fmt::format("header length {} exceeds the {} MB limit (not a safetensors file, or corrupt)",
                            header_len, kMaxSafetensorsHeaderBytes / 1000000));
  if (header_len > size - 8)
    fail(where,
         fmt::format("header length {} runs past the end of the file ({} bytes after the length field); "
                     "the file is truncated",
                     header_len, size - 8));
  if (header_len == 0) fail(where, "header length is 0 (expected a JSON object)");

  // Duplicate keys are refused here: the format forbids them, and which copy a reader keeps differs.
  const json header = parse_strict_json(
      std::string_view(reinterpret_cast<const char*>(bytes + 8), header_len), where, "header");
  if (!header.is_object())
    fail(where, fmt::format("JSON header must be an object, got {}", describe_json(header)));

  const uint64_t data_size = size - 8 - header_len;
  const uint8_t* data = bytes + 8 + header_len;
  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(where, "'__metadata__' must be an object");
      for (const auto& [k, v] : value.items())
        out.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    entries.push_back(parse_entry(name, value, where, data_size));
  }
  check_layout(entries, data_size, where);
  out.tensors.reserve(entries.size());
  for (auto& e : entries) {
    e.view.data = data + e.begin;
    out.tensors.push_back(std::move(e.view));
  }
  return out;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(path, fmt::format("cannot open safetensors file ({})", std::strerror(errno)));
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail(path, fmt::format("cannot stat ({})", std::strerror(errno)));
    if (S_ISDIR(st.st_mode)) fail(path, "is a directory, expected a safetensors file");
    if (!S_ISREG(st.st_mode)) fail(path, "is not a regular file (expected a safetensors file)");
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {  // mmap refuses 0 bytes; parse_safetensors explains an empty file
      map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (map_ == MAP_FAILED) {
        map_ = nullptr;
        fail(path, fmt::format("cannot mmap {} bytes ({})", size_, std::strerror(errno)));
      }
    }
    SafetensorsContents contents = parse_safetensors(static_cast<const uint8_t*>(map_), size_, path);
    tensors_ = std::move(contents.tensors);
    metadata_ = std::move(contents.metadata);
    for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
  } catch (...) {
    release();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  release();
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      tensors_(std::move(other.tensors_)),
      index_(std::move(other.index_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    tensors_ = std::move(other.tensors_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

void SafetensorsFile::release() noexcept {
  if (map_) ::munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
  map_ = nullptr;
  fd_ = -1;
  tensors_.clear();
  index_.clear();
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace ridgeline
