// `quantize --device`: where AWQ's calibration forward and scale search run. The GPU path itself is
// tested against the CPU quantizer in tests/gpu/test_quantize_awq_gpu.cpp; here, what every machine
// can check: the flag's usage errors, and that asking for the GPU where none answers (or in a build
// without CUDA) is one clear line and a non-zero exit, with nothing written.
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/backend_factory.h"
#include "engine/model_source.h"
#include "engine/quantize.h"
#include "test_util.h"
#include "tests/error_message.h"
#include "tests/safetensors_writer.h"

namespace ridgeline {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

const std::string kCalibration = test::data_path("../../engine/data/calibration.txt");

TEST(QuantizeDevice, CudaWithoutAGpuIsOneClearLineAndWritesNothing) {
  std::string why;
  if (gpu_available(&why))
    GTEST_SKIP() << "a GPU answers here: tests/gpu/test_quantize_awq_gpu.cpp covers it";
  testing::TempDir dir;
  const std::string out = dir.file("q");
  const auto r = test::run_cli(
      fmt::format("quantize --model {} --out {} --method awq --device cuda --calib {}",
                  test::tiny_model_arg(), test::shell_quote(out), test::shell_quote(kCalibration)));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--device cuda: GPU not available: " + why));
  EXPECT_FALSE(fs::exists(out));

  // The library says the same to a caller that skips the CLI's check, before touching the folder.
  QuantizeOptions o;
  o.method = QuantMethod::awq;
  o.device = DeviceKind::cuda;
  o.calibration_file = kCalibration;
  EXPECT_THAT(
      error_of([&] { quantize_model(resolve_model(test::data_path("tiny-internlm2-chat")), out, o); }),
      HasSubstr("quantize --device cuda: GPU not available"));
  EXPECT_FALSE(fs::exists(out));
}

TEST(QuantizeDevice, UsageErrorsNameTheFlag) {
  testing::TempDir dir;
  auto r = test::run_cli(fmt::format("quantize --model {} --out {} --method rtn --device cuda",
                                     test::tiny_model_arg(), test::shell_quote(dir.file("q"))));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--device cuda goes with --method awq"));
  r = test::run_cli(fmt::format("quantize --model {} --out {} --method awq --device tpu",
                                test::tiny_model_arg(), test::shell_quote(dir.file("q"))));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--device: "));
  EXPECT_FALSE(fs::exists(dir.file("q")));

  QuantizeOptions o;  // RTN on the device is refused by the library too
  o.device = DeviceKind::cuda;
  EXPECT_THAT(error_of([&] {
                quantize_model(resolve_model(test::data_path("tiny-internlm2-chat")), dir.file("q"), o);
              }),
              HasSubstr("--device cuda runs AWQ's search (--method awq)"));
}

}  // namespace
}  // namespace ridgeline
