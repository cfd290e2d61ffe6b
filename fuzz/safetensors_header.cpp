// Fuzzes parse_safetensors(): the input is a whole safetensors file (8-byte header length, JSON
// header, data). Beyond "no crash, no sanitizer report", an accepted file must keep the promise the
// loader relies on: every tensor view lies inside the input, its size matches dtype x shape, and the
// views tile the data exactly; a refused one gives one short printable line.
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "engine/safetensors.h"
#include "fuzz/fuzz_checks.h"

using namespace ridgeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SafetensorsContents c;
  try {
    c = parse_safetensors(data, size, "fuzz.safetensors");
  } catch (const std::runtime_error& e) {
    fuzz::check_error_line(e);
    return 0;
  }
  const uint8_t* end = data + size;
  const uint8_t* next = nullptr;  // where the next tensor must start (views are in file order)
  uint8_t sum = 0;
  for (const TensorView& t : c.tensors) {
    fuzz::require(t.data >= data && t.data <= end && t.nbytes <= static_cast<size_t>(end - t.data),
                  "tensor view outside the file", t.name);
    fuzz::require(!next || t.data == next, "tensors do not tile the data", t.name);
    fuzz::require(static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype) == t.nbytes,
                  "nbytes != numel x dtype", t.name);
    next = t.data + t.nbytes;
    for (size_t i = 0; i < t.nbytes; ++i) sum ^= t.data[i];  // ASan checks every byte is readable
  }
  fuzz::require(!next || next == end, "data after the last tensor was accepted");
  volatile uint8_t sink = sum;
  (void)sink;
  return 0;
}
