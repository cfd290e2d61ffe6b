// A 4-bit output head (`ridgeline quantize --quantize-head`) in reports: each run records the head's
// format, the bytes are the 4-bit head's, the headline and `compare` keep the two heads apart, and a
// report written before heads had a format reads as fp16.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "analysis/compare.h"
#include "analysis/cost_model.h"
#include "analysis/report.h"
#include "analysis/report_view.h"
#include "engine/model_source.h"

using namespace ridgeline;
using ::testing::HasSubstr;

namespace {

const Ceilings kCeil{3000, 700, "measured", 2900, 3000};

// Every op at its roofline time, the step their sum: the bytes and FLOPs are what is tested.
RunRecord run_at_roofline(const ModelConfig& c, const StepShape& s) {
  std::map<std::string, std::vector<double>> ops;
  double sum = 0;
  for (const auto& op : step_costs(c, s)) {
    const double t = roofline_time_us(op.flops, op.bytes, kCeil);
    ops[op.name] = {t};
    sum += t;
  }
  return build_run(c, s, kCeil, {sum}, ops, "roofline times");
}

Formats w4a16(WeightFormat head) {
  Formats f{WeightFormat::w4a16, 128, KvFormat::fp16};
  f.head = head;
  return f;
}

Report report_with_both_heads() {
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  Report r;
  r.created = "2025-01-31T12:00:00Z";
  r.git_commit = "0123abc";
  r.command = "ridgeline sweep";
  r.method = "roofline times";
  r.device.name = "NVIDIA H200";
  r.device.backend = "cuda";
  r.device.sm_count = 132;
  r.device.peak = kCeil;
  r.model.name = c.name;
  r.model.params = c.params();
  r.model.config = c;
  for (WeightFormat head : {WeightFormat::fp16, WeightFormat::w4a16})
    for (int batch : {1, 16, 64, 256})
      r.runs.push_back(run_at_roofline(c, StepShape{batch, {1024}, 1, w4a16(head)}));
  r.headline = build_headline(c, r.runs, kCeil);
  return r;
}

}  // namespace

TEST(ReportHeadFormat, RunsRecordTheHeadAndCountItsFourBitBytes) {
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  const RunRecord fp16_head = run_at_roofline(c, StepShape{1, {1024}, 1, w4a16(WeightFormat::fp16)});
  const RunRecord head4 = run_at_roofline(c, StepShape{1, {1024}, 1, w4a16(WeightFormat::w4a16)});
  EXPECT_EQ(fp16_head.head, "fp16");
  EXPECT_EQ(head4.head, "w4a16");
  // The 1.8b head [92544, 2048]: 379,060,224 bytes as fp16, 100,687,872 as w4a16 (scales and zeros in).
  EXPECT_EQ(fp16_head.step.point.bytes - head4.step.point.bytes, 278'372'352.0);
  EXPECT_EQ(run_title(head4), "B=1, context 1024, w4a16 (4-bit head) weights + fp16 KV");
  EXPECT_EQ(format_label("w4a16", "int8", 64, "w4a16"), "w4a16 (group 64, 4-bit head) weights + int8 KV");
  EXPECT_EQ(format_label("fp16", "fp16", 128), "fp16 weights + fp16 KV");
}

TEST(ReportHeadFormat, JsonCarriesTheHeadAndOlderReportsReadAsFp16) {
  const Report r = report_with_both_heads();
  nlohmann::json j = to_json(r);
  EXPECT_TRUE(validate_report(j).empty());
  EXPECT_EQ(j["runs"][0]["head"], "fp16");
  EXPECT_EQ(j["runs"][4]["head"], "w4a16");
  ASSERT_EQ(j["headline"].size(), 2u);
  EXPECT_EQ(j["headline"][1]["head"], "w4a16");
  const Report back = report_from_json(j);
  EXPECT_EQ(back.runs[4].head, "w4a16");
  EXPECT_EQ(back.headline[1].head, "w4a16");

  // Written before the head had a format: no "head" anywhere.
  nlohmann::json old = j;
  for (auto& run : old["runs"]) run.erase("head");
  for (auto& h : old["headline"]) h.erase("head");
  EXPECT_TRUE(validate_report(old).empty());
  EXPECT_EQ(report_from_json(old).runs[4].head, "fp16");
  EXPECT_EQ(report_from_json(old).headline[1].head, "fp16");

  j["runs"][2]["head"] = "int4";
  EXPECT_THAT(validate_report(j), ::testing::Contains(HasSubstr("$.runs[2].head")));
}

TEST(ReportHeadFormat, HeadlineAndCompareKeepTheHeadsApart) {
  const Report r = report_with_both_heads();
  ASSERT_EQ(r.headline.size(), 2u);
  EXPECT_EQ(r.headline[0].head, "fp16");
  EXPECT_EQ(r.headline[1].head, "w4a16");
  // Fewer weight bytes per step: the cost model's GEMMs turn compute-bound at a smaller batch.
  ASSERT_TRUE(r.headline[0].predicted_gemm_ridge_batch && r.headline[1].predicted_gemm_ridge_batch);
  EXPECT_LT(*r.headline[1].predicted_gemm_ridge_batch, *r.headline[0].predicted_gemm_ridge_batch);

  const ConfigKey a = config_key("m", r.runs[0]), b = config_key("m", r.runs[4]);
  EXPECT_EQ(r.runs[0].batch, r.runs[4].batch);
  EXPECT_NE(a, b);
  EXPECT_THAT(config_label(b), HasSubstr("w4a16(4-bit head)/fp16"));
  const std::vector<RunFormat> formats = report_formats(r);
  ASSERT_EQ(formats.size(), 2u);
  EXPECT_EQ(formats[1].label(), "w4a16 (4-bit head) weights + fp16 KV");
}

// A w4a16 row with the default fp16 head looks like "all 4-bit" to a reader; the format comparison
// says what stays fp16, and only when such a row is compared.
TEST(ReportHeadFormat, TheFormatComparisonSaysWhatW4a16KeepsInFp16) {
  const Report both = report_with_both_heads();
  const auto said = format_comparison_sentences(both);
  ASSERT_FALSE(said.empty());
  EXPECT_THAT(said.back(), HasSubstr("the embeddings and the output head stay fp16 unless the label says "
                                     "\"4-bit head\""));
  // fp16 weights beside w4a16 with a 4-bit head: compared, and nothing of the w4a16 row stays fp16.
  Report four_bit_head = both;
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  for (RunRecord& run : four_bit_head.runs)
    if (run.head == "fp16")
      run = run_at_roofline(
          c, StepShape{run.batch, {1024}, 1, Formats{WeightFormat::fp16, 128, KvFormat::fp16}});
  const auto other = format_comparison_sentences(four_bit_head);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_THAT(other[0], HasSubstr("w4a16 (4-bit head) weights + fp16 KV against fp16 weights + fp16 KV"));
}
