#include "engine/cuda/device_weights.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/checkpoint.h"
#include "engine/host_weights.h"
#include "engine/ops.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.cuh"
#include "kernels/synthetic.h"

namespace ridgeline::cuda {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

DeviceBuffer<half> alloc(int64_t n, const std::string& what) {
  return DeviceBuffer<half>(static_cast<size_t>(n), what.c_str());
}

// Copies a checkpoint tensor into `dst` as fp16. BF16 and F32 go through a fixed device staging
// buffer in chunks and are converted there, so host memory never holds a converted copy and the
// staging cost is bounded whatever the tensor's size.
class Uploader {
 public:
  explicit Uploader(cudaStream_t stream)
      : stream_(stream), staging_(kStagingBytes, "weight upload staging") {}

  void upload(const TensorView& t, half* dst, int64_t expected_numel) {
    if (t.numel() != expected_numel)
      throw std::runtime_error(fmt::format("{}: tensor '{}' has {} elements, expected {}", t.file, t.name,
                                           t.numel(), expected_numel));
    const char* op = "weight upload";
    if (t.dtype == DType::f16) {
      RL_CUDA_CHECK(op, cudaMemcpyAsync(dst, t.data, t.nbytes, cudaMemcpyHostToDevice, stream_));
      return;
    }
    if (t.dtype != DType::bf16 && t.dtype != DType::f32)
      throw std::runtime_error(fmt::format("{}: tensor '{}' is {}, expected BF16, F16 or F32", t.file, t.name,
                                           to_string(t.dtype)));
    const size_t esize = dtype_size(t.dtype);
    const int64_t chunk = static_cast<int64_t>(kStagingBytes / esize);
    for (int64_t first = 0; first < expected_numel; first += chunk) {
      const int64_t n = std::min(chunk, expected_numel - first);
      // Ordered on the stream after the previous chunk's conversion, so the staging buffer is free.
      RL_CUDA_CHECK(op, cudaMemcpyAsync(staging_.get(), t.data + first * esize, n * esize,
                                        cudaMemcpyHostToDevice, stream_));
      if (t.dtype == DType::bf16)
        convert_bf16_to_fp16(reinterpret_cast<const uint16_t*>(staging_.get()), n, dst + first, stream_);
      else
        convert_fp32_to_fp16(reinterpret_cast<const float*>(staging_.get()), n, dst + first, stream_);
    }
  }

 private:
  static constexpr size_t kStagingBytes = 64u << 20;
  cudaStream_t stream_;
  DeviceBuffer<uint8_t> staging_;
};

void check_fits(const ModelSource& source, int64_t bytes, int64_t reserve_bytes) {
  size_t free_bytes = 0, total_bytes = 0;
  RL_CUDA_CHECK("weights", cudaMemGetInfo(&free_bytes, &total_bytes));
  if (bytes + reserve_bytes > static_cast<int64_t>(free_bytes)) {
    const std::string what = source.synthetic ? "preset " + source.config.name : source.checkpoint_dir;
    throw std::runtime_error(fmt::format(
        "{} needs {:.1f} GiB of GPU memory for fp16 weights plus {:.1f} GiB for activations and a minimal KV "
        "cache; {:.1f} GiB of {:.1f} GiB free on this GPU",
        what, bytes / kGiB, reserve_bytes / kGiB, free_bytes / kGiB, total_bytes / kGiB));
  }
}

DeviceWeights allocate(const ModelConfig& c) {
  const int64_t h = c.hidden, inter = c.intermediate;
  DeviceWeights w;
  w.config = c;
  w.tok_embeddings = alloc(int64_t{c.vocab} * h, "tok_embeddings");
  w.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("layers.{}.", l);
    DeviceLayerWeights& L = w.layers[l];
    L.attention_norm = alloc(h, p + "attention_norm");
    L.wqkv = alloc(int64_t{c.qkv_dim()} * h, p + "wqkv");
    L.wo = alloc(h * c.q_dim(), p + "wo");
    L.ffn_norm = alloc(h, p + "ffn_norm");
    L.w13 = alloc(2 * inter * h, p + "w13");
    L.w2 = alloc(h * inter, p + "w2");
  }
  w.norm = alloc(h, "norm");
  if (!c.tie_word_embeddings) w.output = alloc(int64_t{c.vocab} * h, "output");
  return w;
}

void fill_synthetic_weights(DeviceWeights& w, uint64_t seed, cudaStream_t stream) {
  const ModelConfig& c = w.config;
  const int64_t h = c.hidden, inter = c.intermediate;
  // Same tensor ids, shifts and flat indices as synthetic_host_weights (engine/host_weights.h), so
  // the CPU backend's float32 preset and this fp16 one hold identical numbers.
  fill_synthetic(w.tok_embeddings.get(), int64_t{c.vocab} * h, seed, 0, 0, false, stream);
  for (int l = 0; l < c.n_layers; ++l) {
    DeviceLayerWeights& L = w.layers[l];
    auto id = [&](int slot) { return synthetic_tensor_id(l, slot); };
    auto shift = [&](int slot) { return synthetic_linear_shift(c, slot); };
    fill_synthetic(L.attention_norm.get(), h, seed, id(0), 0, true, stream);
    fill_synthetic(L.wqkv.get(), int64_t{c.qkv_dim()} * h, seed, id(1), shift(1), false, stream);
    fill_synthetic(L.wo.get(), h * c.q_dim(), seed, id(2), shift(2), false, stream);
    fill_synthetic(L.ffn_norm.get(), h, seed, id(3), 0, true, stream);
    fill_synthetic(L.w13.get(), inter * h, seed, id(4), shift(4), false, stream);
    fill_synthetic(L.w13.get() + inter * h, inter * h, seed, id(5), shift(5), false, stream);
    fill_synthetic(L.w2.get(), h * inter, seed, id(6), shift(6), false, stream);
  }
  fill_synthetic(w.norm.get(), h, seed, 1, 0, true, stream);
  if (w.output.get())
    fill_synthetic(w.output.get(), int64_t{c.vocab} * h, seed, 2, synthetic_shift(h), false, stream);
}

void upload_checkpoint(DeviceWeights& w, const Checkpoint& ck, cudaStream_t stream) {
  const ModelConfig& c = w.config;
  const int64_t h = c.hidden, inter = c.intermediate;
  Uploader up(stream);
  up.upload(ck.get("model.tok_embeddings.weight"), w.tok_embeddings.get(), int64_t{c.vocab} * h);
  for (int l = 0; l < c.n_layers; ++l) {
    DeviceLayerWeights& L = w.layers[l];
    const std::string p = fmt::format("model.layers.{}.", l);
    up.upload(ck.get(p + "attention_norm.weight"), L.attention_norm.get(), h);
    up.upload(ck.get(p + "attention.wqkv.weight"), L.wqkv.get(), int64_t{c.qkv_dim()} * h);
    up.upload(ck.get(p + "attention.wo.weight"), L.wo.get(), h * c.q_dim());
    up.upload(ck.get(p + "ffn_norm.weight"), L.ffn_norm.get(), h);
    up.upload(ck.get(p + "feed_forward.w1.weight"), L.w13.get(), inter * h);
    up.upload(ck.get(p + "feed_forward.w3.weight"), L.w13.get() + inter * h, inter * h);
    up.upload(ck.get(p + "feed_forward.w2.weight"), L.w2.get(), h * inter);
  }
  up.upload(ck.get("model.norm.weight"), w.norm.get(), h);
  if (w.output.get()) up.upload(ck.get("output.weight"), w.output.get(), int64_t{c.vocab} * h);
  // The staging buffer dies with `up`: wait for the last conversion first.
  RL_CUDA_CHECK("weight upload", cudaStreamSynchronize(stream));
}

}  // namespace

int64_t allocated_bytes(const DeviceWeights& w) {
  int64_t b = int64_t(w.tok_embeddings.bytes() + w.norm.bytes() + w.output.bytes());
  for (const DeviceLayerWeights& L : w.layers)
    b += int64_t(L.attention_norm.bytes() + L.wqkv.bytes() + L.wo.bytes() + L.ffn_norm.bytes() +
                 L.w13.bytes() + L.w2.bytes());
  return b;
}

DeviceWeights load_device_weights(const ModelSource& source, int64_t reserve_bytes, cudaStream_t stream) {
  const ModelConfig& c = source.config;
  if (source.synthetic) {
    check_fits(source, weight_bytes(c, Formats{}), reserve_bytes);
    DeviceWeights w = allocate(c);
    fill_synthetic_weights(w, source.seed, stream);
    RL_CUDA_CHECK("weights", cudaStreamSynchronize(stream));
    return w;
  }
  Checkpoint ck = open_checkpoint(source.checkpoint_dir);
  if (ck.awq || ck.config.quant_bits != 0)
    throw std::runtime_error(
        fmt::format("{}: AWQ (4-bit) checkpoints are not built yet on the CUDA backend (W4A16 comes later); "
                    "use --device cpu",
                    source.checkpoint_dir));
  check_fits(source, weight_bytes(c, Formats{}), reserve_bytes);
  DeviceWeights w = allocate(c);
  upload_checkpoint(w, ck, stream);  // checks every tensor's size against `c`
  return w;
}

}  // namespace ridgeline::cuda
