#include "engine/cpu_backend.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "engine/backend_factory.h"
#include "engine/checkpoint.h"
#include "engine/host_weights.h"
#include "engine/inject_delay.h"
#include "engine/ops.h"
#include "engine/rtn_weights.h"
#include "kernels/cpu/reference.h"

namespace ridgeline {
namespace {

struct CpuSequence {
  int length = 0;
  std::vector<std::vector<float>> k, v;  // per layer: [length, kv_dim]
  std::vector<float> last_logits;        // [vocab] after the last forward
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(HostWeights w, const BackendOptions& o) : w_(std::move(w)), opt_(o), names_(w_.config.n_layers) {
    if (opt_.max_kv_tokens <= 0) {
      // Like the CUDA backend's cache, this one holds what memory allows (the weights are loaded
      // already), so that a batch x context that cannot fit is refused up front rather than grown
      // into until the machine runs out. A quarter stays free for activations and the rest.
      int64_t room = available_host_memory_bytes() / 4 * 3;
      if (opt_.memory_cap_bytes > 0) room = std::min(room, opt_.memory_cap_bytes);
      opt_.max_kv_tokens =
          std::min(int64_t(opt_.max_sequences) * w_.config.max_positions, room / kv_bytes_per_token());
    }
    check_injected_delay(w_.config);
  }

  // The KV cache holds float32 whatever the format (int8 and int4 are fake-quantized: their values,
  // float32's bytes).
  int64_t kv_bytes_per_token() const {
    return int64_t(2) * w_.config.n_layers * w_.config.kv_dim() * int64_t(sizeof(float));
  }

  // The activations run() allocates for `rows` new tokens of `seqs` sequences, checked against the
  // host memory left before they are allocated.
  void check_activation_memory(int64_t rows, int64_t seqs) const {
    const ModelConfig& c = w_.config;
    const int64_t per_row =
        4 * int64_t(c.hidden) + c.qkv_dim() + 2 * int64_t(c.q_dim()) + 3 * int64_t(c.intermediate);
    const int64_t per_seq = 3 * int64_t(c.hidden) + 2 * int64_t(c.vocab);
    check_host_memory((rows * per_row + seqs * per_seq) * int64_t(sizeof(float)),
                      fmt::format("a forward over {} tokens of {} sequences", rows, seqs));
  }

  const ModelConfig& config() const override { return w_.config; }
  DeviceKind device() const override { return DeviceKind::cpu; }
  std::string device_name() const override { return describe_device(DeviceKind::cpu).name; }
  const Formats& formats() const override { return opt_.formats; }

  int create_sequence() override {
    if (int(seqs_.size()) >= opt_.max_sequences)
      throw std::runtime_error(fmt::format("all {} sequence slots are in use", opt_.max_sequences));
    int id = next_id_++;
    CpuSequence s;
    s.k.resize(w_.config.n_layers);
    s.v.resize(w_.config.n_layers);
    seqs_.emplace(id, std::move(s));
    return id;
  }

  void release_sequence(int seq) override {
    auto it = seqs_.find(seq);
    if (it == seqs_.end()) return;
    used_tokens_ -= it->second.length;
    seqs_.erase(it);
  }

  int sequence_length(int seq) const override { return find(seq).length; }
  int64_t capacity_tokens() const override { return opt_.max_kv_tokens - used_tokens_; }

  void forward(std::span<const int> seq_ids, std::span<const std::vector<int>> tokens,
               float* logits) override {
    const ModelConfig& c = w_.config;
    const int64_t new_tokens =
        validate_forward(c, seq_ids, tokens, [this](int seq) { return find(seq).length; });
    if (new_tokens > capacity_tokens())
      throw std::runtime_error(
          fmt::format("KV cache full: {} new tokens, room for {}", new_tokens, capacity_tokens()));
    check_activation_memory(new_tokens, int64_t(seq_ids.size()));
    std::vector<CpuSequence*> seqs;
    for (int id : seq_ids) seqs.push_back(&seqs_.at(id));
    run(seqs, tokens, nullptr);
    used_tokens_ += new_tokens;
    if (logits)
      for (size_t i = 0; i < seqs.size(); ++i)
        std::copy(seqs[i]->last_logits.begin(), seqs[i]->last_logits.end(), logits + i * c.vocab);
  }

  void sample(std::span<const int> seq_ids, std::span<const SamplingParams> params, int* out) override {
    for (size_t i = 0; i < seq_ids.size(); ++i) {
      const CpuSequence& s = find(seq_ids[i]);
      if (s.last_logits.empty()) throw std::logic_error("sample() before forward() on this sequence");
      const SamplingParams& p = params[i];
      double u = ref::sampling_uniform(p.seed, uint64_t(s.length));
      out[i] = ref::sample(s.last_logits.data(), w_.config.vocab, p.temperature, p.top_k, p.top_p, u);
    }
  }

  void fill_context(int seq, int length, uint64_t seed) override {
    CpuSequence& s = seqs_.at(find_id(seq));
    if (s.length != 0) throw std::logic_error("fill_context() needs an empty sequence");
    check_fits(0, length);
    if (length > capacity_tokens())
      throw std::runtime_error(
          fmt::format("KV cache full: {} tokens, room for {}", length, capacity_tokens()));
    const int64_t n = int64_t(length) * w_.config.kv_dim();
    for (int l = 0; l < w_.config.n_layers; ++l) {
      s.k[l].resize(n);
      s.v[l].resize(n);
      for (int64_t i = 0; i < n; ++i) {
        s.k[l][i] = ref::sampling_uniform(seed + 2 * l, i) * 2 - 1;
        s.v[l][i] = ref::sampling_uniform(seed + 2 * l + 1, i) * 2 - 1;
      }
    }
    s.length = length;
    used_tokens_ += length;
  }

  DecodeTiming benchmark_decode(std::span<const int> seq_ids, int warmup, int iters) override {
    std::vector<std::vector<int>> tokens(seq_ids.size(), std::vector<int>{w_.config.bos_id});
    validate_forward(w_.config, seq_ids, tokens, [this](int seq) { return find(seq).length; });
    check_activation_memory(int64_t(seq_ids.size()), int64_t(seq_ids.size()));
    std::vector<CpuSequence*> seqs;
    for (int id : seq_ids) seqs.push_back(&seqs_.at(id));
    DecodeTiming t;
    t.method = "cpu: steady_clock around each decode step; per-op steady_clock in a separate pass";
    auto step = [&](std::vector<OpSamples>* ops) {
      std::vector<int> lengths;
      for (auto* s : seqs) lengths.push_back(s->length);
      run(seqs, tokens, ops);
      op(ops, names_(OpType::sample), [&] {
        for (auto* s : seqs) ref::argmax(s->last_logits.data(), w_.config.vocab);
      });
      for (size_t i = 0; i < seqs.size(); ++i) truncate(*seqs[i], lengths[i]);
    };
    time_steps(t, warmup, iters, step);
    return t;
  }

  DecodeTiming benchmark_prefill(std::span<const int> seq_ids, int tokens_per_seq, int warmup,
                                 int iters) override {
    if (iters < 1 || warmup < 0 || tokens_per_seq < 1)
      throw std::invalid_argument("benchmark_prefill: needs tokens_per_seq >= 1, iters >= 1 and warmup >= 0");
    const auto tokens = benchmark_prefill_tokens(w_.config, seq_ids.size(), tokens_per_seq);
    const int64_t new_tokens =
        validate_forward(w_.config, seq_ids, tokens, [this](int seq) { return find(seq).length; });
    std::vector<CpuSequence*> seqs;
    for (int id : seq_ids) {
      if (find(id).length != 0) throw std::logic_error("benchmark_prefill() needs empty sequences");
      seqs.push_back(&seqs_.at(id));
    }
    if (new_tokens > capacity_tokens())
      throw std::runtime_error(
          fmt::format("KV cache full: {} new tokens, room for {}", new_tokens, capacity_tokens()));
    check_activation_memory(new_tokens, int64_t(seq_ids.size()));
    DecodeTiming t;
    t.method =
        "cpu: steady_clock around each whole prefill (forward over every prompt token, then the greedy "
        "sample of the first token); per-op steady_clock in a separate pass";
    auto prefill = [&](std::vector<OpSamples>* ops) {
      run(seqs, tokens, ops);
      op(ops, names_(OpType::sample), [&] {
        for (auto* s : seqs) ref::argmax(s->last_logits.data(), w_.config.vocab);
      });
      for (auto* s : seqs) {
        truncate(*s, 0);
        s->last_logits.clear();
      }
    };
    time_steps(t, warmup, iters, prefill);
    return t;
  }

 private:
  int find_id(int seq) const {
    find(seq);
    return seq;
  }

  void check_fits(int64_t length, int64_t more) const {
    if (length + more > max_sequence_length())
      throw std::runtime_error(fmt::format("sequence would hold {} tokens, more than the context limit of {}",
                                           length + more, max_sequence_length()));
  }

  static void truncate(CpuSequence& s, int length) {
    const size_t keep = s.k.empty() || s.length == 0 ? 0 : s.k[0].size() / s.length * length;
    for (auto& k : s.k) k.resize(keep);
    for (auto& v : s.v) v.resize(keep);
    s.length = length;
  }

  const CpuSequence& find(int seq) const {
    auto it = seqs_.find(seq);
    if (it == seqs_.end()) throw std::invalid_argument(fmt::format("unknown sequence {}", seq));
    return it->second;
  }

  // `warmup` untimed runs of `step(nullptr)`, `iters` timed ones into t.step_us, then `iters` runs
  // timing each op into t.ops (a separate pass: per-op clocks would slow the timed steps).
  template <class F>
  static void time_steps(DecodeTiming& t, int warmup, int iters, F&& step) {
    for (int i = 0; i < warmup; ++i) step(nullptr);
    for (int i = 0; i < iters; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      step(nullptr);
      t.step_us.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    for (int i = 0; i < iters; ++i) step(&t.ops);
  }

  // Runs `f` as op `name`, timing it into `ops` when profiling.
  template <class F>
  static void op(std::vector<OpSamples>* ops, const std::string& name, F&& f) {
    if (!ops) {
      f();
      cpu_injected_delay(name);
      return;
    }
    auto t0 = std::chrono::steady_clock::now();
    f();
    cpu_injected_delay(name);
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    auto it = std::find_if(ops->begin(), ops->end(), [&](const OpSamples& o) { return o.name == name; });
    if (it == ops->end()) it = ops->insert(ops->end(), OpSamples{name, {}});
    it->us.push_back(us);
  }

  // The forward over the new tokens of several sequences, rows concatenated. Reads like the model:
  // embed, then per layer attention_norm -> wqkv -> rope_kv_write -> attention -> wo -> ffn_norm ->
  // w13 -> swiglu -> w2; then norm and output on each sequence's last row.
  void run(const std::vector<CpuSequence*>& seqs, std::span<const std::vector<int>> tokens,
           std::vector<OpSamples>* ops) {
    const ModelConfig& c = w_.config;
    const int d = c.hidden, hd = c.head_dim, kvd = c.kv_dim(), qd = c.q_dim(), inter = c.intermediate;
    const double pos_scale = c.rope_scaling == RopeScaling::linear ? c.rope_factor : 1.0;
    // Row r belongs to sequence row_seq[r] at position row_pos[r].
    std::vector<int> ids, row_seq, row_pos, last_row;
    for (size_t i = 0; i < seqs.size(); ++i) {
      for (size_t t = 0; t < tokens[i].size(); ++t) {
        ids.push_back(tokens[i][t]);
        row_seq.push_back(int(i));
        row_pos.push_back(seqs[i]->length + int(t));
      }
      last_row.push_back(int(ids.size()) - 1);
    }
    const int n = int(ids.size());
    std::vector<double> base(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i)
      base[i] = rope_base_for_length(c, seqs[i]->length + int(tokens[i].size()));
    for (size_t i = 0; i < seqs.size(); ++i) {
      int64_t total = int64_t(seqs[i]->length + tokens[i].size()) * kvd;
      for (int l = 0; l < c.n_layers; ++l) {
        seqs[i]->k[l].resize(total);
        seqs[i]->v[l].resize(total);
      }
    }

    std::vector<float> residual(int64_t(n) * d), x(int64_t(n) * d), qkv(int64_t(n) * c.qkv_dim());
    std::vector<float> q(int64_t(n) * qd), attn(int64_t(n) * qd), proj(int64_t(n) * d);
    std::vector<float> gate(int64_t(n) * inter), up(gate.size()), act(gate.size());
    op(ops, names_(OpType::embed),
       [&] { ref::embed(w_.tok_embeddings.data.data(), c.vocab, d, ids, residual.data()); });

    const float* pending = nullptr;  // the last sublayer's output, added into the residual by the next norm
    for (int l = 0; l < c.n_layers; ++l) {
      const LayerWeights& L = w_.layers[l];
      op(ops, names_(OpType::attention_norm, l), [&] {
        ref::add_rmsnorm(residual.data(), pending, L.attention_norm.data.data(), n, d, c.norm_eps, x.data());
      });
      op(ops, names_(OpType::wqkv, l),
         [&] { ref::linear(x.data(), L.wqkv.data.data(), n, d, c.qkv_dim(), qkv.data()); });
      op(ops, names_(OpType::rope_kv_write, l), [&] {
        for (int r = 0; r < n; ++r) {
          CpuSequence& s = *seqs[row_seq[r]];
          float* qt = q.data() + int64_t(r) * qd;
          float* kt = s.k[l].data() + int64_t(row_pos[r]) * kvd;
          float* vt = s.v[l].data() + int64_t(row_pos[r]) * kvd;
          ref::split_qkv(qkv.data() + int64_t(r) * c.qkv_dim(), c.n_heads, c.n_kv_heads, hd, qt, kt, vt);
          for (int h = 0; h < c.n_heads; ++h)
            ref::rope(qt + int64_t(h) * hd, hd, row_pos[r], base[row_seq[r]], pos_scale);
          for (int h = 0; h < c.n_kv_heads; ++h) {
            ref::rope(kt + int64_t(h) * hd, hd, row_pos[r], base[row_seq[r]], pos_scale);
            if (opt_.formats.kv != KvFormat::fp16) {
              ref::fake_quantize_kv(kt + int64_t(h) * hd, hd, kv_bits(opt_.formats.kv));
              ref::fake_quantize_kv(vt + int64_t(h) * hd, hd, kv_bits(opt_.formats.kv));
            }
          }
        }
      });
      op(ops, names_(OpType::attention, l), [&] {
        for (int r = 0; r < n; ++r) {  // causal: row r sees positions [0, row_pos[r]]
          const CpuSequence& s = *seqs[row_seq[r]];
          ref::attention(q.data() + int64_t(r) * qd, s.k[l].data(), s.v[l].data(), kvd, row_pos[r] + 1,
                         c.n_heads, c.n_kv_heads, hd, attn.data() + int64_t(r) * qd);
        }
      });
      op(ops, names_(OpType::wo, l),
         [&] { ref::linear(attn.data(), L.wo.data.data(), n, qd, d, proj.data()); });
      op(ops, names_(OpType::ffn_norm, l), [&] {
        ref::add_rmsnorm(residual.data(), proj.data(), L.ffn_norm.data.data(), n, d, c.norm_eps, x.data());
      });
      op(ops, names_(OpType::w13, l), [&] {
        ref::linear(x.data(), L.w1.data.data(), n, d, inter, gate.data());
        ref::linear(x.data(), L.w3.data.data(), n, d, inter, up.data());
      });
      op(ops, names_(OpType::swiglu, l),
         [&] { ref::swiglu(gate.data(), up.data(), int64_t(gate.size()), act.data()); });
      op(ops, names_(OpType::w2, l),
         [&] { ref::linear(act.data(), L.w2.data.data(), n, inter, d, proj.data()); });
      pending = proj.data();
    }
    // Only each sequence's last position needs logits: norm and head on those rows alone.
    const int m = int(seqs.size());
    std::vector<float> last(int64_t(m) * d), last_pending(int64_t(m) * d), xn(int64_t(m) * d),
        logits(int64_t(m) * c.vocab);
    for (int i = 0; i < m; ++i) {
      std::copy_n(residual.data() + int64_t(last_row[i]) * d, d, last.data() + int64_t(i) * d);
      std::copy_n(pending + int64_t(last_row[i]) * d, d, last_pending.data() + int64_t(i) * d);
    }
    op(ops, names_(OpType::norm), [&] {
      ref::add_rmsnorm(last.data(), last_pending.data(), w_.norm.data.data(), m, d, c.norm_eps, xn.data());
    });
    op(ops, names_(OpType::output),
       [&] { ref::linear(xn.data(), w_.output.data.data(), m, d, c.vocab, logits.data()); });
    for (int i = 0; i < m; ++i) {
      seqs[i]->last_logits.assign(logits.begin() + int64_t(i) * c.vocab,
                                  logits.begin() + int64_t(i + 1) * c.vocab);
      seqs[i]->length += int(tokens[i].size());
    }
  }

  HostWeights w_;
  BackendOptions opt_;
  OpNames names_;
  std::map<int, CpuSequence> seqs_;
  int next_id_ = 0;
  int64_t used_tokens_ = 0;
};

}  // namespace

Support cpu_supports(const ModelSource& source, const Formats& formats) {
  const ModelConfig& c = source.config;
  const bool awq = c.quant_bits != 0;
  if (awq && formats.weights != WeightFormat::w4a16)
    return {false, fmt::format("cpu: --weights {}: this checkpoint is AWQ 4-bit, it runs as --weights w4a16",
                               to_string(formats.weights))};
  // Unquantized checkpoints and presets run as w4a16 with their layer linears quantized at load
  // (round-to-nearest, engine/rtn_weights.h), as the CUDA backend quantizes them on the GPU.
  if (!awq && formats.weights == WeightFormat::w4a16) {
    const int g = formats.group_size;
    if (g <= 0 || c.hidden % g != 0 || c.q_dim() % g != 0 || c.intermediate % g != 0)
      return {false,
              fmt::format("cpu: --weights w4a16 quantizes {} at load in groups of {} inputs, which must "
                          "divide every linear's inputs (hidden {}, q_dim {}, intermediate {})",
                          source.synthetic ? "preset " + c.name : "this checkpoint", g, c.hidden, c.q_dim(),
                          c.intermediate)};
  }
  if (awq && c.quant_group_size > 0 && formats.group_size != c.quant_group_size)
    return {false, fmt::format("cpu: this checkpoint's w4a16 group size is {}, not {}", c.quant_group_size,
                               formats.group_size)};
  return {};
}

std::unique_ptr<Backend> make_cpu_backend(HostWeights weights, const BackendOptions& options) {
  ModelSource source;
  source.config = weights.config;
  if (Support s = cpu_supports(source, options.formats); !s) throw std::runtime_error(s.reason);
  if (options.formats.weights == WeightFormat::w4a16 && weights.config.quant_bits == 0)
    rtn_quantize_linears(weights, options.formats.group_size);
  return std::make_unique<CpuBackend>(std::move(weights), options);
}

std::unique_ptr<Backend> make_cpu_backend(const ModelSource& source, const BackendOptions& options) {
  if (Support s = cpu_supports(source, options.formats); !s) throw std::runtime_error(s.reason);
  if (source.synthetic) return make_cpu_backend(synthetic_host_weights(source.config, source.seed), options);
  Checkpoint ck = open_checkpoint(source.checkpoint_dir);
  ck.config = source.config;  // the caller's resolved config, as the CUDA backend takes it, not a reread
  return make_cpu_backend(load_host_weights(ck), options);
}

}  // namespace ridgeline
