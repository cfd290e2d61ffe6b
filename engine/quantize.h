// `ridgeline quantize`: a model (checkpoint folder or preset) to a 4-bit AWQ checkpoint folder, on
// the CPU, one layer at a time (a layer's float32 weights, never the whole model's, are in memory).
// With device cuda, AWQ's calibration forward and scale search run on the GPU (engine/cuda/awq_gpu.h),
// one layer's weights on the device at a time; the folds, the rounding and the writing stay here.
//
// Methods: round-to-nearest (engine/quantize_rtn.h) and AWQ (engine/quantize_awq.h, calibrated on a
// text file; by default the bundled engine/data/calibration.txt). The folder written is what AutoAWQ
// and LMDeploy write and what open_checkpoint() reads:
//   config.json        the source's config with quantization_config {quant_method: awq, bits: 4,
//                      group_size, zero_point: true, version: gemm} and torch_dtype float16
//   model.safetensors  (or shards of at most max_shard_bytes + model.safetensors.index.json)
//                      linears as qweight/qzeros/scales (engine/awq_format.h); embeddings, norms and
//                      the output head fp16 (the head 4-bit too with quantize_head)
//   tokenizer files    copied from the source (presets: the bundled InternLM2 tokenizer)
// config.json is written last, so an interrupted run never leaves a folder that looks complete.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/formats.h"
#include "engine/model_source.h"
#include "engine/quantize_awq.h"

namespace ridgeline {

enum class QuantMethod { rtn, awq };
const char* to_string(QuantMethod m);                  // "rtn" | "awq"
QuantMethod parse_quant_method(const std::string& s);  // throws std::invalid_argument naming the choices

struct QuantizeOptions {
  QuantMethod method = QuantMethod::rtn;
  int group_size = kDefaultGroupSize;
  bool quantize_head = false;    // the output head 4-bit too (about a third of a 4-bit 1.8b's bytes)
  std::string calibration_file;  // awq: empty means default_calibration_file()
  int calib_seq_len = 512;       // calibration text is cut into sequences of this many tokens (<s> included)
  int max_calib_tokens = 4096;   // tokens the statistics are taken over, at most
  int max_search_tokens = 512;   // tokens the scale search measures the error on, at most
  int grid = 20;                 // alphas searched per group
  int64_t max_shard_bytes = int64_t{4} << 30;        // one model.safetensors below this, shards above
  std::function<void(const std::string&)> progress;  // one line per step (stderr in the CLI); may be empty
  // awq: where the calibration forward and the scale search run (cuda: engine/cuda/awq_gpu.h)
  DeviceKind device = DeviceKind::cpu;
};

struct QuantizeSummary {
  std::string out_dir;
  std::vector<std::string> files;              // written, relative to out_dir
  int64_t bytes = 0;                           // of the safetensors written
  int64_t calib_tokens = 0;                    // awq
  std::vector<std::vector<AwqChoice>> layers;  // awq: per layer, its four groups
  std::vector<AwqChoice> head;                 // awq with quantize_head: the output head's choice
  double seconds = 0;
  double device_seconds = 0;  // awq on cuda: GPU time of the calibration forward and the search
};

// Quantizes `source` into the new folder `out_dir` (created; refused when it exists and is not
// empty). Throws std::runtime_error with one line naming the file, tensor or option on any problem:
// an already quantized source, a group size that does not divide a linear's inputs, a missing
// calibration text or tokenizer, not enough host memory, device cuda with RTN or without a GPU.
QuantizeSummary quantize_model(const ModelSource& source, const std::string& out_dir,
                               const QuantizeOptions& options);

// The bundled calibration text, <data>/calibration.txt in ridgeline's data folder (engine/data_paths.h;
// the file ships from engine/data/calibration.txt). Throws naming the place when it is not there.
std::string default_calibration_file();

// The calibration text cut into sequences: <s> then up to seq_len - 1 tokens each, `max_tokens` in all.
std::vector<std::vector<int>> calibration_sequences(const std::string& text,
                                                    const std::string& tokenizer_path, int seq_len,
                                                    int max_tokens);

}  // namespace ridgeline
