// AWQ's heavy parts on the GPU (`ridgeline quantize --method awq --device cuda`): per layer, the float32
// calibration forward over every calibration sequence (cuBLAS SGEMMs, RMSNorm, RoPE, causal attention,
// SwiGLU), the per-channel statistics of each linear's input, and for every alpha of the grid the
// scaled weights' fake 4-bit quantization and the error GEMM on the search rows. The algorithm is the
// CPU's (engine/quantize_awq.h), sharing its pieces: the statistics come back to the host, which
// builds the same candidate scales (awq_candidates), picks the same way (awq_pick) and folds with the
// same code (awq_fold_layer, by the caller); only where the activations and the errors are computed
// differs. Float32 throughout, TF32 off: on the tiny model the choices must match the CPU's.
//
// The calibration stream (every sequence's residual) stays on the device from layer to layer; one
// layer's weights are on the device at a time. This header is free of CUDA headers so that
// engine/quantize.cpp can use it in every build; without CUDA (engine/awq_gpu_none.cpp) the
// constructor throws.
#pragma once

#include <memory>
#include <vector>

#include "engine/config.h"
#include "engine/quantize_awq.h"
#include "engine/weights.h"

namespace ridgeline {

// Device time of one search_layer / search_head call, in seconds, by part (CUDA events between them).
struct AwqGpuTime {
  double upload = 0;   // the float32 weights, host to device
  double forward = 0;  // the calibration forward (the head: the final norm) and the statistics
  double search = 0;   // every candidate's fake quantization, error GEMM and sum of squares
  double total() const { return upload + forward + search; }
};

class AwqGpuSearch {
 public:
  // Uploads the start of the calibration stream (start_calibration's embeddings). Throws
  // "quantize --device cuda: GPU not available: <why>" where no GPU answers (or this build has no
  // CUDA), and a CUDA error naming the buffer when the device memory does not suffice.
  AwqGpuSearch(const ModelConfig& c, const Calibration& start, const AwqOptions& o);
  ~AwqGpuSearch();
  AwqGpuSearch(const AwqGpuSearch&) = delete;
  AwqGpuSearch& operator=(const AwqGpuSearch&) = delete;

  // Steps 1 and 2 of engine/quantize_awq.h for layer `L` (float32, as loaded): runs it over the
  // stream, which becomes the layer's float output, and searches its four groups. The folds are the
  // caller's (awq_fold_layer), exactly as on the CPU.
  AwqLayerSearch search_layer(const LayerWeights& L);

  // The output head's search, on the final norm of the stream (after the last layer); `rows` receives
  // the number of search rows. The fold is the caller's (awq_fold_head).
  AwqSearch search_head(const HostTensor& norm, const HostTensor& output, int64_t* rows);

  // The stream as it stands (every calibration row's residual, [rows, hidden]), downloaded: what the
  // CPU's Calibration::residual holds after the same layers (tests compare the two).
  std::vector<float> residual() const;

  // Device time so far (events around each layer's uploads, kernels, GEMMs and downloads), seconds.
  double device_seconds() const;
  // The last search_layer / search_head call's device time.
  AwqGpuTime last_time() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ridgeline
