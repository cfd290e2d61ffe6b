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
#include "kernels/w4a16_repack.h"

namespace ridgeline::cuda {

std::array<LinearDims, 4> layer_linear_dims(const ModelConfig& c) {
  const int h = c.hidden, inter = c.intermediate;
  return {{{h, c.qkv_dim()}, {c.q_dim(), h}, {h, 2 * inter}, {inter, h}}};
}

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

DeviceBuffer<half> alloc(int64_t n, const std::string& what) {
  return DeviceBuffer<half>(static_cast<size_t>(n), what.c_str());
}

DeviceLinear alloc_linear(int in, int out, WeightFormat f, const std::string& what) {
  DeviceLinear l;
  l.in = in;
  l.out = out;
  if (f == WeightFormat::w4a16) {
    l.qweight = DeviceBuffer<uint32_t>(size_t(w4a16_qweight_words(in, out)), (what + " codes").c_str());
    l.scale_zero = DeviceBuffer<half>(size_t(w4a16_scale_zero_halves(in, out)), (what + " scales").c_str());
  } else {
    l.fp16 = alloc(int64_t{out} * in, what);
  }
  return l;
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

// The largest linear's elements.
int64_t largest_linear(const ModelConfig& c) {
  int64_t most = 0;
  for (const LinearDims d : layer_linear_dims(c)) most = std::max(most, int64_t{d.in} * d.out);
  return most;
}

// An unquantized model (a preset, or a checkpoint without quantization_config) run as w4a16 writes
// each linear's fp16 values into one scratch of the largest linear's size, and w4a16_quantize_rtn
// stores them from there; `rtn` says whether the model is such a one.
int64_t rtn_scratch_bytes(const ModelConfig& c, bool rtn) {
  return rtn ? 2 * largest_linear(c) : 0;
}
DeviceBuffer<half> rtn_scratch(const ModelConfig& c, bool rtn) {
  return rtn ? alloc(largest_linear(c), "w4a16 quantization scratch") : DeviceBuffer<half>{};
}

// One linear's fp16 values, produced by `write(dst)`: in place for an fp16 linear; for a W4A16 one
// into `scratch`, then quantized from there. Stream-ordered: the next write into the scratch waits for
// this quantization to read it.
template <typename Write>
void write_linear(DeviceLinear& lin, half* scratch, cudaStream_t stream, Write&& write) {
  if (!lin.quantized()) return write(lin.fp16.get());
  write(scratch);
  w4a16_quantize_rtn(scratch, lin.in, lin.out, lin.qweight.get(), lin.scale_zero.get(), stream);
}

void check_fits(const ModelSource& source, WeightFormat f, int64_t bytes, int64_t reserve_bytes) {
  size_t free_bytes = 0, total_bytes = 0;
  RL_CUDA_CHECK("weights", cudaMemGetInfo(&free_bytes, &total_bytes));
  if (bytes + reserve_bytes > static_cast<int64_t>(free_bytes)) {
    const std::string what = source.synthetic ? "preset " + source.config.name : source.checkpoint_dir;
    throw std::runtime_error(fmt::format(
        "{} needs {:.1f} GiB of GPU memory for {} weights plus {:.1f} GiB for activations and a minimal KV "
        "cache; {:.1f} GiB of {:.1f} GiB free on this GPU",
        what, bytes / kGiB, to_string(f), reserve_bytes / kGiB, free_bytes / kGiB, total_bytes / kGiB));
  }
}

// `head` is the output head's format: fp16, or w4a16 for a checkpoint's 4-bit head.
DeviceWeights allocate(const ModelConfig& c, WeightFormat f, WeightFormat head) {
  const int h = c.hidden;
  const auto [qkv, o, w13, w2] = layer_linear_dims(c);
  DeviceWeights w;
  w.config = c;
  w.format = f;
  w.tok_embeddings = alloc(int64_t{c.vocab} * h, "tok_embeddings");
  w.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("layers.{}.", l);
    DeviceLayerWeights& L = w.layers[l];
    L.attention_norm = alloc(h, p + "attention_norm");
    L.wqkv = alloc_linear(qkv.in, qkv.out, f, p + "wqkv");
    L.wo = alloc_linear(o.in, o.out, f, p + "wo");
    L.ffn_norm = alloc(h, p + "ffn_norm");
    L.w13 = alloc_linear(w13.in, w13.out, f, p + "w13");
    L.w2 = alloc_linear(w2.in, w2.out, f, p + "w2");
  }
  w.norm = alloc(h, "norm");
  if (!c.tie_word_embeddings || head != WeightFormat::fp16)
    w.output = alloc_linear(h, c.vocab, head, "output");
  return w;
}

// Fills rows [row0, row0 + rows) of an fp16 [*, in] weight with synthetic linear `slot` of layer `l`.
void fill_linear_rows(half* dst, const ModelConfig& c, uint64_t seed, int l, int slot, int64_t elems,
                      cudaStream_t stream) {
  fill_synthetic(dst, elems, seed, synthetic_tensor_id(l, slot), synthetic_linear_shift(c, slot), false,
                 stream);
}

// The synthetic linears of layer `l`, slot by slot as synthetic_host_weights numbers them
// (1 wqkv, 2 wo, 4 w1, 5 w3, 6 w2), into `write(linear, fill)`: fill(dst) writes the linear's fp16
// values [out, in] to dst (w1 then w3 for w13).
template <typename Write>
void for_each_synthetic_linear(DeviceLayerWeights& L, const ModelConfig& c, uint64_t seed, int l,
                               cudaStream_t stream, Write&& write) {
  const int64_t h = c.hidden, inter = c.intermediate;
  write(L.wqkv, [&](half* d) { fill_linear_rows(d, c, seed, l, 1, int64_t{c.qkv_dim()} * h, stream); });
  write(L.wo, [&](half* d) { fill_linear_rows(d, c, seed, l, 2, h * c.q_dim(), stream); });
  write(L.w13, [&](half* d) {
    fill_linear_rows(d, c, seed, l, 4, inter * h, stream);
    fill_linear_rows(d + inter * h, c, seed, l, 5, inter * h, stream);
  });
  write(L.w2, [&](half* d) { fill_linear_rows(d, c, seed, l, 6, h * inter, stream); });
}

void fill_synthetic_weights(DeviceWeights& w, uint64_t seed, cudaStream_t stream) {
  const ModelConfig& c = w.config;
  const int64_t h = c.hidden;
  // Same tensor ids, shifts and flat indices as synthetic_host_weights (engine/host_weights.h), so
  // the CPU backend's float32 preset and this fp16 one hold identical numbers; a w4a16 preset holds
  // their RTN quantization (the same rounding as engine/quantize_rtn.h, bit for bit).
  const DeviceBuffer<half> scratch = rtn_scratch(c, w.format == WeightFormat::w4a16);
  fill_synthetic(w.tok_embeddings.get(), int64_t{c.vocab} * h, seed, 0, 0, false, stream);
  for (int l = 0; l < c.n_layers; ++l) {
    DeviceLayerWeights& L = w.layers[l];
    fill_synthetic(L.attention_norm.get(), h, seed, synthetic_tensor_id(l, 0), 0, true, stream);
    fill_synthetic(L.ffn_norm.get(), h, seed, synthetic_tensor_id(l, 3), 0, true, stream);
    for_each_synthetic_linear(L, c, seed, l, stream, [&](DeviceLinear& lin, auto&& fill) {
      write_linear(lin, scratch.get(), stream, fill);
    });
  }
  fill_synthetic(w.norm.get(), h, seed, 1, 0, true, stream);
  if (w.output.fp16.get())  // presets keep an fp16 head (allocate() gives them one)
    fill_synthetic(w.output.fp16.get(), int64_t{c.vocab} * h, seed, 2, synthetic_shift(h), false, stream);
  // The scratch dies here: wait for the last quantization first.
  RL_CUDA_CHECK("weights", cudaStreamSynchronize(stream));
}

// An AWQ linear (qweight/qzeros/scales under `prefix`, validated by open_checkpoint) repacked into
// the device layout and uploaded to rows [row0, row0 + out) of `dst`. Packed strips are contiguous,
// so rows row0.. (a multiple of 16) start at word/half offsets of a [row0, in] weight.
void upload_awq(const Checkpoint& ck, const std::string& prefix, int in, int out, DeviceLinear& dst,
                int row0) {
  const W4A16Host h = w4a16_repack_awq(ck.get(prefix + ".qweight").data, ck.get(prefix + ".qzeros").data,
                                       ck.get(prefix + ".scales").data, in, out, ck.config.quant_group_size);
  const char* op = "AWQ weight upload";
  // Synchronous copies: `h` is pageable and dies at return.
  RL_CUDA_CHECK(op, cudaMemcpy(dst.qweight.get() + w4a16_qweight_words(in, row0), h.qweight.data(),
                               h.qweight.size() * sizeof(uint32_t), cudaMemcpyHostToDevice));
  RL_CUDA_CHECK(op, cudaMemcpy(dst.scale_zero.get() + w4a16_scale_zero_halves(in, row0), h.scale_zero.data(),
                               h.scale_zero.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
}

void upload_checkpoint(DeviceWeights& w, const Checkpoint& ck, cudaStream_t stream) {
  const ModelConfig& c = w.config;
  const int64_t h = c.hidden, inter = c.intermediate;
  Uploader up(stream);
  const DeviceBuffer<half> scratch = rtn_scratch(c, w.format == WeightFormat::w4a16 && !ck.awq);
  up.upload(ck.get("model.tok_embeddings.weight"), w.tok_embeddings.get(), int64_t{c.vocab} * h);
  for (int l = 0; l < c.n_layers; ++l) {
    DeviceLayerWeights& L = w.layers[l];
    const std::string p = fmt::format("model.layers.{}.", l);
    up.upload(ck.get(p + "attention_norm.weight"), L.attention_norm.get(), h);
    up.upload(ck.get(p + "ffn_norm.weight"), L.ffn_norm.get(), h);
    const std::vector<LinearSpec> lin = internlm2_linears(c, l);  // wqkv, wo, w1, w3, w2
    if (ck.awq) {
      upload_awq(ck, lin[0].prefix, lin[0].in, lin[0].out, L.wqkv, 0);
      upload_awq(ck, lin[1].prefix, lin[1].in, lin[1].out, L.wo, 0);
      upload_awq(ck, lin[2].prefix, lin[2].in, lin[2].out, L.w13, 0);
      upload_awq(ck, lin[3].prefix, lin[3].in, lin[3].out, L.w13, c.intermediate);
      upload_awq(ck, lin[4].prefix, lin[4].in, lin[4].out, L.w2, 0);
      continue;
    }
    auto linear = [&](DeviceLinear& dst, auto&& upload) { write_linear(dst, scratch.get(), stream, upload); };
    linear(L.wqkv,
           [&](half* d) { up.upload(ck.get(lin[0].prefix + ".weight"), d, int64_t{c.qkv_dim()} * h); });
    linear(L.wo, [&](half* d) { up.upload(ck.get(lin[1].prefix + ".weight"), d, h * c.q_dim()); });
    linear(L.w13, [&](half* d) {
      up.upload(ck.get(lin[2].prefix + ".weight"), d, inter * h);
      up.upload(ck.get(lin[3].prefix + ".weight"), d + inter * h, inter * h);
    });
    linear(L.w2, [&](half* d) { up.upload(ck.get(lin[4].prefix + ".weight"), d, h * inter); });
  }
  up.upload(ck.get("model.norm.weight"), w.norm.get(), h);
  if (w.output.quantized()) {  // open_checkpoint() checked the 4-bit head's tensors
    upload_awq(ck, "output", int(h), c.vocab, w.output, 0);
  } else if (w.output.fp16.get()) {
    up.upload(ck.get("output.weight"), w.output.fp16.get(), int64_t{c.vocab} * h);
  }
  // The staging buffer dies with `up`: wait for the last conversion first.
  RL_CUDA_CHECK("weight upload", cudaStreamSynchronize(stream));
}

}  // namespace

W4A16Weights DeviceLinear::w4a16() const {
  W4A16Weights v;
  v.qweight = qweight.get();
  v.scale_zero = scale_zero.get();
  v.in = in;
  v.out = out;
  return v;
}

int64_t allocated_bytes(const DeviceWeights& w) {
  int64_t b = int64_t(w.tok_embeddings.bytes() + w.norm.bytes()) + w.output.bytes();
  for (const DeviceLayerWeights& L : w.layers)
    b += int64_t(L.attention_norm.bytes() + L.ffn_norm.bytes()) + L.wqkv.bytes() + L.wo.bytes() +
         L.w13.bytes() + L.w2.bytes();
  return b;
}

DeviceWeights load_device_weights(const ModelSource& source, const Formats& formats, int64_t reserve_bytes,
                                  cudaStream_t stream) {
  const ModelConfig& c = source.config;
  const WeightFormat f = formats.weights;
  const int64_t bytes = weight_bytes(c, formats);
  if (source.synthetic) {
    if (formats.head != WeightFormat::fp16)
      throw std::runtime_error(fmt::format("preset {}: the output head of a preset is fp16, not {}", c.name,
                                           to_string(formats.head)));
    check_fits(source, f, bytes + rtn_scratch_bytes(c, f == WeightFormat::w4a16), reserve_bytes);
    DeviceWeights w = allocate(c, f, WeightFormat::fp16);
    fill_synthetic_weights(w, source.seed, stream);
    return w;
  }
  Checkpoint ck = open_checkpoint(source.checkpoint_dir);
  // cuda_supports() refuses this pairing; this is the loader's own guard. (An unquantized checkpoint
  // loads as w4a16: its linears are quantized on the GPU as they arrive.)
  if (ck.awq && f != WeightFormat::w4a16)
    throw std::runtime_error(fmt::format("{}: an AWQ (4-bit) checkpoint does not load as --weights {}",
                                         source.checkpoint_dir, to_string(f)));
  // A 4-bit head (output.qweight, from `ridgeline quantize --quantize-head`; open_checkpoint() has
  // checked its tensors) is repacked like the layers' linears. formats.head must say so (supports()
  // checks it too), so that `bytes` above and the cost model count the head that is loaded.
  const bool head_4bit = ck.awq && ck.has("output.qweight");
  if (head_4bit != (formats.head == WeightFormat::w4a16))
    throw std::runtime_error(fmt::format("{}: the checkpoint's output head is {}, but the formats say {}",
                                         source.checkpoint_dir, head_4bit ? "w4a16 (output.qweight)" : "fp16",
                                         to_string(formats.head)));
  if (head_4bit && !w4a16_shape_ok(c.hidden, c.vocab))
    throw std::runtime_error(fmt::format(
        "{}: a 4-bit output head (output.qweight) needs a vocab_size that is a multiple of 16 on the "
        "CUDA backend, not {}: quantize without --quantize-head, or use --device cpu",
        source.checkpoint_dir, c.vocab));
  check_fits(source, f, bytes + rtn_scratch_bytes(c, f == WeightFormat::w4a16 && !ck.awq), reserve_bytes);
  DeviceWeights w = allocate(c, f, formats.head);
  upload_checkpoint(w, ck, stream);  // checks every tensor's size against `c`
  return w;
}

}  // namespace ridgeline::cuda
