// Roofline arithmetic: where a (flops, bytes, measured time) point sits against the device's two
// ceilings, timing summaries, and the "ridge batch" at which decode stops being memory-bound.
// Units everywhere: time in microseconds, bandwidth in GB/s (1e9 B/s), compute in TFLOP/s
// (1e12 FLOP/s), intensity in FLOP/byte, utilizations as fractions (1.0 = at the roof).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ridgeline {

struct Ceilings {
  double peak_GBps = 0;    // memory roof, GB/s
  double peak_tflops = 0;  // compute roof (dense fp16 tensor, fp32 accumulate), TFLOP/s
  std::string source;      // "measured" | "datasheet"
  // What `ridgeline probe` measured, when it did (0: not measured). peak_GBps is the higher of the
  // two because read-mostly kernels can beat a copy (docs/DESIGN.md, "Measuring honestly").
  double copy_GBps = 0;  // device-to-device copy, bytes read + written
  double read_GBps = 0;  // read-only streaming reduction

  // The intensity (FLOP/B) at which the two roofs meet: tflops*1e12 / (GBps*1e9).
  double ridge() const { return peak_tflops * 1e12 / (peak_GBps * 1e9); }
};

// Measured ceilings from the probe's three numbers: peak bandwidth = max(copy, read-only stream).
Ceilings measured_ceilings(double copy_GBps, double read_GBps, double tflops);

// One op (or a step, or a sum over ops of one kind) placed on the roofline.
struct RooflinePoint {
  double time_us = 0;                // measured (median) time
  double flops = 0;                  // cost model
  double bytes = 0;                  // cost model: minimum DRAM traffic
  double arithmetic_intensity = 0;   // flops / bytes
  double achieved_GBps = 0;          // bytes / time
  double bandwidth_utilization = 0;  // achieved_GBps / peak_GBps
  double achieved_tflops = 0;        // flops / time
  double compute_utilization = 0;    // achieved_tflops / peak_tflops
  double roofline_time_us = 0;       // max(bytes / peak bandwidth, flops / peak compute)
  double roofline_efficiency = 0;    // roofline_time_us / time_us (1.0 = running at the roof)
  std::string bound;                 // "memory" if intensity < ridge, else "compute"
};

// "memory" when intensity < ceilings.ridge(), else "compute".
const char* roofline_bound(double intensity, const Ceilings& c);
// The time the roofline allows for this much work: max(bytes/bandwidth, flops/compute), in µs.
double roofline_time_us(double flops, double bytes, const Ceilings& c);
// Throws std::runtime_error naming `what` unless time_us > 0, bytes > 0 and flops >= 0.
RooflinePoint roofline_point(double flops, double bytes, double time_us, const Ceilings& c,
                             const std::string& what = "op");

struct TimeStats {
  double median = 0, p10 = 0, p90 = 0;  // µs
  int n = 0;                            // samples
  // Mean and sample standard deviation (n - 1 in the denominator; 0 for one sample), µs. Absent in
  // reports written before they were recorded.
  std::optional<double> mean, stddev;
};

// Percentile q in [0, 1] of sorted samples by linear interpolation between closest ranks: position
// q*(n-1), numpy's default ("linear") method. The median is percentile 0.5, so an even count
// averages the two middle samples.
double percentile_sorted(const std::vector<double>& sorted, double q);
// Median, p10 and p90 as above, mean and standard deviation. Throws on an empty list or a
// non-finite sample.
TimeStats summarize(std::vector<double> samples);

// The batch at which `intensities` (one per batch, rising with batch) first reaches `ridge`,
// interpolated linearly in (log batch, log intensity) between the two measured batches that bracket
// it: in the memory-bound regime a decode step's intensity grows nearly in proportion to the batch,
// which log-log interpolation follows where plain linear interpolation would be biased. For when
// only intensities are at hand (e.g. from two reports); measured_ridge_batch, which has flops and
// bytes, interpolates those instead, exactly.
// Returns batches.front() when the first batch already reaches it, nullopt when none does.
// Throws when the lists differ in length, are empty, batches do not rise, or an entry is <= 0.
std::optional<double> interpolate_ridge_batch(const std::vector<double>& batches,
                                              const std::vector<double>& intensities, double ridge);

// One measured decode step (or the sum of one kind of op in it) at one batch size.
struct RidgeSample {
  double batch = 0;
  double flops = 0;    // cost model
  double bytes = 0;    // cost model
  double time_us = 0;  // measured median
};

// The measured ridge batch: the knee of the empirical roofline the samples trace out.
//  - the measured bandwidth roof is the bandwidth the step achieves at its smallest batch (where it
//    is memory-bound by a wide margin);
//  - the measured compute roof is the highest FLOP rate achieved at any batch;
//  - their ratio is the measured ridge intensity, and the measured ridge batch is where the
//    cost-model intensity of the step reaches it, between the two samples that bracket it, with
//    flops and bytes interpolated linearly in the batch (exact for a decode step at fixed context,
//    whose costs are affine in the batch; see predicted_ridge_batch).
// The knee is only reported when a compute roof was really met: the sample that sets it must
// (a) achieve at least `tolerance` less bandwidth than the smallest batch did (it has left the
// bandwidth roof) and (b) have a cost-model intensity at or above `device_ridge` (the probe's
// ridge: it is compute-bound on the device's roofline). A loss of bandwidth below the device ridge
// is kernel inefficiency or a shift in the op mix (say, attention's share growing), not a compute
// roof. Otherwise the answer is nullopt: "not reached within the measured batches".
// Note that "compute utilization = bandwidth utilization" is NOT a usable definition: both divide
// by the same measured time, so their ratio is intensity/ridge whatever was measured.
// Samples may come in any order; needs two distinct batches.
std::optional<double> measured_ridge_batch(std::vector<RidgeSample> samples, double device_ridge,
                                           double tolerance = 0.10);

}  // namespace ridgeline
