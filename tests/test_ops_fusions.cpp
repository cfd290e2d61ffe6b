// The op table with the CUDA backend's small-batch fusions (engine/ops.h: Fusions, cuda_fusions):
// when they apply, which ops disappear, and the bytes and FLOPs the fused ops are counted with. The
// CUDA backend running exactly these ops is tests/gpu/test_cuda_engine.cpp.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "analysis/cost_model.h"
#include "engine/model_source.h"
#include "engine/ops.h"

using namespace ridgeline;

namespace {

StepShape decode(int batch, WeightFormat w = WeightFormat::fp16) {
  StepShape s;
  s.batch = batch;
  s.context = {1024};
  s.formats.weights = w;
  return s;
}

std::vector<OpType> layer_types(const std::vector<Op>& ops, int layer) {
  std::vector<OpType> v;
  for (const Op& op : ops)
    if (op.layer == layer) v.push_back(op.type);
  return v;
}

int64_t total_bytes(const std::vector<Op>& ops) {
  int64_t b = 0;
  for (const Op& op : ops) b += op.bytes();
  return b;
}

}  // namespace

TEST(OpTableFusions, CudaFusesFp16DecodeStepsOfOneOrTwoRowsAndW4A16StepsOfOne) {
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  const Fusions all{.swiglu_in_w13 = true, .norm_in_gemv = true, .rope_in_wqkv = true};
  EXPECT_EQ(cuda_fusions(c, decode(1)), all);
  EXPECT_EQ(cuda_fusions(c, decode(2)), all);
  // Every decode step whose wqkv does not rotate has its attention do it (rope_in_attention).
  const Fusions rope_only{.rope_in_attention = true};
  const Fusions swiglu_and_rope{.swiglu_in_w13 = true, .rope_in_attention = true};
  for (int batch : {4, 8, 16})  // B=3 runs as 4 rows: gemv_tc_swiglu, the norms launched
    EXPECT_EQ(cuda_fusions(c, decode(batch)), swiglu_and_rope) << "B=" << batch;
  EXPECT_EQ(cuda_fusions(c, decode(32)), rope_only) << "past the tensor-core GEMV: cuBLASLt";
  ModelConfig odd_hidden = c;  // gemv_tc takes inputs in steps of 32
  odd_hidden.hidden = 2056;
  EXPECT_EQ(cuda_fusions(odd_hidden, decode(4)), rope_only);
  EXPECT_EQ(cuda_fusions(c, decode(4, WeightFormat::w4a16)), rope_only) << "fp16 weights only";
  EXPECT_EQ(cuda_fusions(c, decode(1, WeightFormat::w4a16)), all)
      << "w4a16_gemv_fused with the RoPE epilogue at 1.8b's width";
  EXPECT_EQ(cuda_fusions(preset_config("internlm2-chat-7b"), decode(1, WeightFormat::w4a16)), all)
      << "and at 7b's (its RoPE pair split finer: kernels/w4a16_gemv.cu)";
  EXPECT_EQ(cuda_fusions(c, decode(2, WeightFormat::w4a16)), rope_only) << "measured slower at two rows";
  EXPECT_EQ(cuda_fusions(c, decode(3, WeightFormat::w4a16)), rope_only);
  StepShape prefill = decode(1);
  prefill.new_tokens_per_seq = 2;
  prefill.context = {2};
  EXPECT_EQ(cuda_fusions(c, prefill), Fusions{});
  ModelConfig wide = c;  // normed rows past the GEMV's shared memory: SwiGLU only
  wide.hidden = 16384;
  EXPECT_EQ(cuda_fusions(wide, decode(1)), swiglu_and_rope);
  EXPECT_EQ(cuda_fusions(wide, decode(1, WeightFormat::w4a16)), rope_only)
      << "the W4A16 GEMV fuses SwiGLU only behind its norm prologue";
  EXPECT_EQ(StepShape{}.fusions, Fusions{}) << "the default (CPU) table is unfused";
  for (KvFormat kv : {KvFormat::int8, KvFormat::int4})
    for (WeightFormat w : {WeightFormat::fp16, WeightFormat::w4a16}) {
      StepShape s = decode(1, w);
      s.formats.kv = kv;
      EXPECT_EQ(cuda_fusions(c, s),
                (Fusions{.swiglu_in_w13 = true, .norm_in_gemv = true, .rope_in_attention = true}))
          << "with " << to_string(kv)
          << " KV rope_kv_write's work goes into attention, not wqkv (a row's scale needs its whole head)";
    }
  for (int head_dim : {48, 512}) {  // not whole W4A16 strip pairs; past the epilogue's table
    ModelConfig odd = c;
    odd.head_dim = head_dim;
    EXPECT_FALSE(cuda_fusions(odd, decode(1)).rope_in_wqkv) << "head_dim " << head_dim;
    EXPECT_TRUE(cuda_fusions(odd, decode(1)).norm_in_gemv) << "head_dim " << head_dim;
    EXPECT_FALSE(cuda_fusions(odd, decode(1)).rope_in_attention) << "decode attention runs 64 and 128";
  }
  ModelConfig hd64 = c;  // decode attention's other head_dim; rope_in_wqkv takes it at B <= 2
  hd64.head_dim = 64;
  EXPECT_EQ(cuda_fusions(hd64, decode(4)), swiglu_and_rope);
  ModelConfig group16 = c;  // past decode attention's GQA group of 8 (it would refuse the step anyway)
  group16.n_heads = 128;
  EXPECT_FALSE(cuda_fusions(group16, decode(4)).rope_in_attention);
}

TEST(OpTableFusions, FusedDecodeTableHasNoSwigluAndW13WritesTheActivation) {
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  for (int batch : {1, 2, 16}) {  // gemv_fused at 1-2 rows, gemv_tc_swiglu up to 16
    StepShape s = decode(batch);
    s.fusions.swiglu_in_w13 = true;
    const auto fused = step_ops(c, s);
    ASSERT_EQ(fused.size(), 1u + 8u * 24u + 3u);
    for (int l = 0; l < c.n_layers; ++l)
      EXPECT_EQ(
          layer_types(fused, l),
          (std::vector<OpType>{OpType::attention_norm, OpType::wqkv, OpType::rope_kv_write, OpType::attention,
                               OpType::wo, OpType::ffn_norm, OpType::w13, OpType::w2}))
          << "layer " << l;
    for (const Op& op : fused) {
      EXPECT_NE(op.type, OpType::swiglu) << op.name;
      EXPECT_EQ(op.name, op_name(op.type, op.layer));
      if (op.type != OpType::w13) continue;
      const int64_t T = batch, H = c.hidden, I = c.intermediate;
      ASSERT_EQ(op.writes.size(), 1u);
      EXPECT_EQ(op.writes[0].name, "act");
      EXPECT_EQ(op.writes[0].shape, (std::vector<int64_t>{T, I}));
      // x, W13 [2I, H] and act, all fp16: what gemv_swiglu moves.
      EXPECT_EQ(op.bytes(), 2 * T * H + 2 * 2 * I * H + 2 * T * I) << op.name;
    }
    // Against the unfused table: per layer the gate_up write and the swiglu op (gate_up read, act
    // written) are gone and w13 writes act instead: 2T*2I + (2T*2I + 2T*I) - 2T*I = 8*T*I bytes.
    StepShape plain = decode(batch);
    const auto unfused = step_ops(c, plain);
    EXPECT_EQ(unfused.size(), fused.size() + size_t(c.n_layers));
    EXPECT_EQ(total_bytes(unfused) - total_bytes(fused), int64_t{c.n_layers} * 8 * batch * c.intermediate);
  }
}

TEST(OpTableFusions, CostModelCountsSwigluFlopsInTheFusedW13) {
  const ModelConfig c = preset_config("internlm2-chat-7b");
  StepShape plain = decode(1), fused = decode(1);
  fused.fusions.swiglu_in_w13 = true;  // SwiGLU alone: the norms' FLOPs are checked with them below
  double flops_plain = 0, flops_fused = 0;
  for (const OpCost& op : step_costs(c, plain)) flops_plain += op.flops;
  for (const OpCost& op : step_costs(c, fused)) flops_fused += op.flops;
  EXPECT_DOUBLE_EQ(flops_fused, flops_plain);  // the same arithmetic, fewer launches
  EXPECT_EQ(step_costs(c, fused).size() + size_t(c.n_layers), step_costs(c, plain).size());
  // ... and in w13 in particular (the totals would not see SwiGLU's FLOPs counted in w2 instead).
  auto flops_of = [](const std::vector<OpCost>& ops, const std::string& name) {
    for (const OpCost& op : ops)
      if (op.name == name) return op.flops;
    ADD_FAILURE() << "no op " << name;
    return 0.0;
  };
  const std::vector<OpCost> p = step_costs(c, plain), f = step_costs(c, fused);
  for (int l : {0, c.n_layers - 1}) {
    const std::string w13 = "layers." + std::to_string(l) + ".w13",
                      w2 = "layers." + std::to_string(l) + ".w2";
    EXPECT_DOUBLE_EQ(flops_of(f, w13),
                     flops_of(p, w13) + flops_of(p, "layers." + std::to_string(l) + ".swiglu"));
    EXPECT_DOUBLE_EQ(flops_of(f, w2), flops_of(p, w2));
    EXPECT_GT(flops_of(p, "layers." + std::to_string(l) + ".swiglu"), 0.0);
  }
}

TEST(OpTableFusions, FusedNormsLeaveSixOpsALayerAndMoveTheResidualAddIntoTheGemvs) {
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  for (int batch : {1, 2}) {
    StepShape s = decode(batch);
    s.fusions = cuda_fusions(c, s);
    ASSERT_TRUE(s.fusions.norm_in_gemv);
    s.fusions.rope_in_wqkv = false;  // RoPE as its own launch; both of its fused forms are checked below
    const auto fused = step_ops(c, s);
    ASSERT_EQ(fused.size(), 1u + 6u * 24u + 3u);
    EXPECT_EQ(fused[fused.size() - 3].name, "norm");
    EXPECT_EQ(fused[fused.size() - 2].name, "output");
    for (int l = 0; l < c.n_layers; ++l)
      EXPECT_EQ(layer_types(fused, l),
                (std::vector<OpType>{OpType::wqkv, OpType::rope_kv_write, OpType::attention, OpType::wo,
                                     OpType::w13, OpType::w2}))
          << "layer " << l;
    const int64_t T = batch, H = c.hidden, I = c.intermediate, Q = c.q_dim(), QKV = c.qkv_dim();
    for (const Op& op : fused) {
      if (op.layer >= 0) {
        EXPECT_NE(op.kind, OpKind::norm) << op.name;
      }
      switch (op.type) {
        case OpType::wqkv:  // residual rows (f32) + attention_norm.weight + W, writes qkv
          EXPECT_EQ(op.bytes(), 4 * T * H + 2 * H + 2 * QKV * H + 2 * T * QKV) << op.name;
          break;
        case OpType::wo:  // attn + W + the residual read and written
          EXPECT_EQ(op.bytes(), 2 * T * Q + 2 * H * Q + 2 * 4 * T * H) << op.name;
          break;
        case OpType::w13:  // residual rows + ffn_norm.weight + W13, writes act
          EXPECT_EQ(op.bytes(), 4 * T * H + 2 * H + 4 * I * H + 2 * T * I) << op.name;
          break;
        case OpType::w2:
          EXPECT_EQ(op.bytes(), 2 * T * I + 2 * H * I + 2 * 4 * T * H) << op.name;
          break;
        case OpType::norm:  // the final norm: the residual read, no add, x written
          EXPECT_EQ(op.bytes(), 4 * T * H + 2 * H + 2 * T * H) << op.name;
          break;
        default:
          break;
      }
    }
    // The FLOPs move with the work: the same total as the unfused step.
    double flops_plain = 0, flops_fused = 0;
    for (const OpCost& op : step_costs(c, decode(batch))) flops_plain += op.flops;
    for (const OpCost& op : step_costs(c, s)) flops_fused += op.flops;
    EXPECT_DOUBLE_EQ(flops_fused, flops_plain);
  }
}

TEST(OpTableFusions, RopeInWqkvLeavesFiveOpsALayerAndWqkvWritesQAndTheNewKvRows) {
  for (const char* preset : {"internlm2-chat-1_8b", "internlm2-chat-7b"}) {
    const ModelConfig c = preset_config(preset);
    for (int batch : {1, 2}) {
      StepShape s = decode(batch);
      s.fusions = cuda_fusions(c, s);
      ASSERT_TRUE(s.fusions.rope_in_wqkv) << preset;
      StepShape no_rope = s;
      no_rope.fusions.rope_in_wqkv = false;
      const auto fused = step_ops(c, s), unfused = step_ops(c, no_rope);
      ASSERT_EQ(fused.size(), 1u + 5u * size_t(c.n_layers) + 3u);
      for (int l = 0; l < c.n_layers; ++l)
        EXPECT_EQ(layer_types(fused, l),
                  (std::vector<OpType>{OpType::wqkv, OpType::attention, OpType::wo, OpType::w13, OpType::w2}))
            << "layer " << l;
      const int64_t T = batch, H = c.hidden, Q = c.q_dim(), KV = c.kv_dim(), QKV = c.qkv_dim();
      for (const Op& op : fused) {
        if (op.type != OpType::wqkv) continue;
        // residual rows (f32) + attention_norm.weight + W + slots, positions and a block-table entry
        // per row; writes q and the new K and V rows (fp16).
        EXPECT_EQ(op.bytes(), 4 * T * H + 2 * H + 2 * QKV * H + 3 * 4 * T + 2 * T * Q + 2 * 2 * T * KV)
            << op.name;
        ASSERT_EQ(op.writes.size(), 3u);
        EXPECT_EQ(op.writes[0].name, "q");
      }
      // Per layer the qkv tensor's write and read are gone: 2 * 2T*QKV bytes.
      EXPECT_EQ(total_bytes(unfused) - total_bytes(fused), int64_t{c.n_layers} * 2 * 2 * T * QKV) << preset;
      double flops_plain = 0, flops_fused = 0;  // the FLOPs move into wqkv
      for (const OpCost& op : step_costs(c, no_rope)) flops_plain += op.flops;
      for (const OpCost& op : step_costs(c, s)) flops_fused += op.flops;
      EXPECT_DOUBLE_EQ(flops_fused, flops_plain) << preset;
    }
  }
}

// Fusions::rope_in_attention: decode attention reads the wqkv output instead of q, rotates q itself
// and writes the new K/V rows, so the table has no q tensor and no rope_kv_write op; prefills keep it.
TEST(OpTableFusions, RopeInAttentionDropsRopeKvWriteAndAttentionReadsQkvAndWritesTheNewKvRows) {
  struct Case {
    const char* preset;
    int batch;
    KvFormat kv;
    WeightFormat weights;
    std::vector<OpType> layer;  // the ops of a layer
  };
  const std::vector<OpType> five{OpType::wqkv, OpType::attention, OpType::wo, OpType::w13, OpType::w2};
  const std::vector<OpType> seven{OpType::attention_norm, OpType::wqkv, OpType::attention, OpType::wo,
                                  OpType::ffn_norm,       OpType::w13,  OpType::w2};
  const std::vector<OpType> eight{OpType::attention_norm, OpType::wqkv, OpType::attention, OpType::wo,
                                  OpType::ffn_norm,       OpType::w13,  OpType::swiglu,    OpType::w2};
  const Case cases[] = {
      {"internlm2-chat-1_8b", 1, KvFormat::int8, WeightFormat::fp16, five},  // the norms in the GEMVs
      {"internlm2-chat-7b", 1, KvFormat::int4, WeightFormat::w4a16, five},
      {"internlm2-chat-1_8b", 16, KvFormat::fp16, WeightFormat::fp16, seven},  // gemv_tc_swiglu
      {"internlm2-chat-7b", 2, KvFormat::int8, WeightFormat::w4a16, eight},    // nothing else fused
      {"internlm2-chat-7b", 64, KvFormat::fp16, WeightFormat::fp16, eight},    // cuBLASLt
  };
  for (const Case& k : cases) {
    const ModelConfig c = preset_config(k.preset);
    StepShape s = decode(k.batch, k.weights);
    s.formats.kv = k.kv;
    s.fusions = cuda_fusions(c, s);
    const std::string what = std::string(k.preset) + " B=" + std::to_string(k.batch) + " " + to_string(k.kv) +
                             " KV " + to_string(k.weights) + " weights";
    ASSERT_TRUE(s.fusions.rope_in_attention && !s.fusions.rope_in_wqkv) << what;
    StepShape unfused_shape = s;
    unfused_shape.fusions.rope_in_attention = false;
    const auto fused = step_ops(c, s), unfused = step_ops(c, unfused_shape);
    ASSERT_EQ(fused.size(), 1u + k.layer.size() * size_t(c.n_layers) + 3u) << what;
    ASSERT_EQ(unfused.size(), fused.size() + size_t(c.n_layers)) << what;
    for (int l = 0; l < c.n_layers; ++l) EXPECT_EQ(layer_types(fused, l), k.layer) << what << " layer " << l;

    const int64_t T = k.batch, Q = c.q_dim(), QKV = c.qkv_dim(), hd = c.head_dim;
    const auto names = [](const std::vector<Tensor>& ts) {
      std::vector<std::string> v;
      for (const Tensor& t : ts) v.push_back(t.name);
      return v;
    };
    for (const Op& op : fused) {
      if (op.type == OpType::wqkv) {  // wqkv stores qkv as it does unfused
        ASSERT_EQ(op.writes.size(), 1u) << what;
        EXPECT_EQ(op.writes[0].name, "qkv") << what;
      }
      if (op.type != OpType::attention) continue;
      const std::string p = "layers." + std::to_string(op.layer) + ".";
      // The new token's position is its context length - 1 and its block-table entry is among the
      // context's: no positions, slots or entries beyond what attention reads anyway; a RoPE table
      // of head_dim/2 floats per sequence (dynamic NTK: each its own base).
      EXPECT_EQ(names(op.reads), (std::vector<std::string>{"qkv", "slots", "context_lens", "block_table",
                                                           p + "k_cache", p + "v_cache", "rope_inv_freq"}))
          << what;
      EXPECT_EQ(op.reads[0].shape, (std::vector<int64_t>{T, QKV})) << what;
      EXPECT_EQ(op.reads[6].dtype, Dtype::f32) << what;
      EXPECT_EQ(op.reads[6].shape, (std::vector<int64_t>{T, hd / 2})) << what;
      EXPECT_EQ(names(op.writes), (std::vector<std::string>{"attn", p + "k_cache", p + "v_cache"})) << what;
      EXPECT_EQ(op.writes[1].shape, (std::vector<int64_t>{T, c.n_kv_heads, hd})) << what;
      // The new rows in the cache's format: what rope_kv_write wrote.
      for (const Op& u : unfused)
        if (u.type == OpType::rope_kv_write && u.layer == op.layer) {
          EXPECT_EQ(bytes(op.writes[1]) + bytes(op.writes[2]), bytes(u.writes[1]) + bytes(u.writes[2]))
              << what;
        }
    }
    // Per layer rope_kv_write's slots, positions and block-table entries (12 B a row) and q's write and
    // read are gone, the RoPE tables (4 B a pair a row) read instead.
    EXPECT_EQ(total_bytes(unfused) - total_bytes(fused),
              int64_t{c.n_layers} * (12 * T + 2 * 2 * T * Q - 4 * T * hd / 2))
        << what;
    double flops_plain = 0, flops_fused = 0;  // the rotation's FLOPs move into attention
    for (const OpCost& op : step_costs(c, unfused_shape)) flops_plain += op.flops;
    for (const OpCost& op : step_costs(c, s)) flops_fused += op.flops;
    EXPECT_DOUBLE_EQ(flops_fused, flops_plain) << what;
  }

  // A prefill keeps rope_kv_write (its attention reads q for many tokens a sequence), and the table
  // refuses the fusion there and beside rope_in_wqkv, where the new rows would be written twice.
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  StepShape prefill = decode(1);
  prefill.formats.kv = KvFormat::int8;
  prefill.new_tokens_per_seq = 16;
  prefill.context = {16};
  prefill.fusions = cuda_fusions(c, prefill);
  EXPECT_FALSE(prefill.fusions.rope_in_attention);
  EXPECT_EQ(
      layer_types(step_ops(c, prefill), 0),
      (std::vector<OpType>{OpType::attention_norm, OpType::wqkv, OpType::rope_kv_write, OpType::attention,
                           OpType::wo, OpType::ffn_norm, OpType::w13, OpType::swiglu, OpType::w2}));
  prefill.fusions.rope_in_attention = true;
  EXPECT_THROW(step_ops(c, prefill), std::invalid_argument);
  StepShape both = decode(1);
  both.fusions.rope_in_wqkv = both.fusions.rope_in_attention = true;
  EXPECT_THROW(step_ops(c, both), std::invalid_argument);
}
