// The op table with the CUDA backend's small-batch fusions (engine/ops.h: Fusions, cuda_fusions):
// when they apply, which ops disappear, and the bytes and FLOPs the fused ops are counted with. The
// CUDA backend running exactly these ops is tests/gpu/test_cuda_engine.cpp.
#include <gtest/gtest.h>

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
  const Fusions swiglu_only{.swiglu_in_w13 = true};
  for (int batch : {4, 8, 16})  // B=3 runs as 4 rows: gemv_tc_swiglu, the norms and RoPE launched
    EXPECT_EQ(cuda_fusions(c, decode(batch)), swiglu_only) << "B=" << batch;
  EXPECT_EQ(cuda_fusions(c, decode(32)), Fusions{}) << "past the tensor-core GEMV: cuBLASLt";
  ModelConfig odd_hidden = c;  // gemv_tc takes inputs in steps of 32
  odd_hidden.hidden = 2056;
  EXPECT_EQ(cuda_fusions(odd_hidden, decode(4)), Fusions{});
  EXPECT_EQ(cuda_fusions(c, decode(4, WeightFormat::w4a16)), Fusions{}) << "fp16 weights only";
  EXPECT_EQ(cuda_fusions(c, decode(1, WeightFormat::w4a16)), all)
      << "w4a16_gemv_fused with the RoPE epilogue at 1.8b's width";
  EXPECT_EQ(cuda_fusions(preset_config("internlm2-chat-7b"), decode(1, WeightFormat::w4a16)), all)
      << "and at 7b's (its RoPE pair split finer: kernels/w4a16_gemv.cu)";
  EXPECT_EQ(cuda_fusions(c, decode(2, WeightFormat::w4a16)), Fusions{}) << "measured slower at two rows";
  EXPECT_EQ(cuda_fusions(c, decode(3, WeightFormat::w4a16)), Fusions{});
  StepShape prefill = decode(1);
  prefill.new_tokens_per_seq = 2;
  prefill.context = {2};
  EXPECT_EQ(cuda_fusions(c, prefill), Fusions{});
  ModelConfig wide = c;  // normed rows past the GEMV's shared memory: SwiGLU only
  wide.hidden = 16384;
  EXPECT_EQ(cuda_fusions(wide, decode(1)), (Fusions{.swiglu_in_w13 = true, .norm_in_gemv = false}));
  EXPECT_EQ(cuda_fusions(wide, decode(1, WeightFormat::w4a16)), Fusions{})
      << "the W4A16 GEMV fuses SwiGLU only behind its norm prologue";
  EXPECT_EQ(StepShape{}.fusions, Fusions{}) << "the default (CPU) table is unfused";
  for (KvFormat kv : {KvFormat::int8, KvFormat::int4})
    for (WeightFormat w : {WeightFormat::fp16, WeightFormat::w4a16}) {
      StepShape s = decode(1, w);
      s.formats.kv = kv;
      EXPECT_EQ(cuda_fusions(c, s), (Fusions{.swiglu_in_w13 = true, .norm_in_gemv = true}))
          << "rope_kv_write stays a launch with " << to_string(kv)
          << " KV (a row's scale needs its whole head)";
    }
  for (int head_dim : {48, 512}) {  // not whole W4A16 strip pairs; past the epilogue's table
    ModelConfig odd = c;
    odd.head_dim = head_dim;
    EXPECT_FALSE(cuda_fusions(odd, decode(1)).rope_in_wqkv) << "head_dim " << head_dim;
    EXPECT_TRUE(cuda_fusions(odd, decode(1)).norm_in_gemv) << "head_dim " << head_dim;
  }
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
    s.fusions.rope_in_wqkv = false;  // as with an int8/int4 cache; the RoPE epilogue is checked below
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
