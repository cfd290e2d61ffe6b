#include "analysis/roofline.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "analysis/stats.h"

namespace ridgeline {

Ceilings measured_ceilings(double copy_GBps, double read_GBps, double tflops) {
  if (!(copy_GBps > 0 || read_GBps > 0) || !(tflops > 0))
    throw std::runtime_error(
        fmt::format("measured ceilings need a positive bandwidth and compute rate, got copy {} GB/s, read {} "
                    "GB/s, {} TFLOP/s",
                    copy_GBps, read_GBps, tflops));
  Ceilings c;
  c.peak_GBps = std::max(copy_GBps, read_GBps);
  c.peak_tflops = tflops;
  c.source = "measured";
  c.copy_GBps = copy_GBps;
  c.read_GBps = read_GBps;
  return c;
}

const char* roofline_bound(double intensity, const Ceilings& c) {
  return intensity < c.ridge() ? "memory" : "compute";
}

double roofline_time_us(double flops, double bytes, const Ceilings& c) {
  // bytes / (GB/s * 1e9) seconds = bytes / (GB/s * 1e3) µs; flops / (TFLOP/s * 1e6) µs likewise.
  return std::max(bytes / (c.peak_GBps * 1e3), flops / (c.peak_tflops * 1e6));
}

RooflinePoint roofline_point(double flops, double bytes, double time_us, const Ceilings& c,
                             const std::string& what) {
  if (!(time_us > 0) || !std::isfinite(time_us))
    throw std::runtime_error(
        fmt::format("{}: measured time must be a positive number of µs, got {}", what, time_us));
  if (!(bytes > 0) || !(flops >= 0))
    throw std::runtime_error(
        fmt::format("{}: cost needs bytes > 0 and flops >= 0, got {} B, {} FLOP", what, bytes, flops));
  if (!(c.peak_GBps > 0) || !(c.peak_tflops > 0))
    throw std::runtime_error(fmt::format("{}: ceilings must be positive, got {} GB/s, {} TFLOP/s", what,
                                         c.peak_GBps, c.peak_tflops));
  RooflinePoint p;
  p.time_us = time_us;
  p.flops = flops;
  p.bytes = bytes;
  p.arithmetic_intensity = flops / bytes;
  p.achieved_GBps = bytes / (time_us * 1e3);
  p.bandwidth_utilization = p.achieved_GBps / c.peak_GBps;
  p.achieved_tflops = flops / (time_us * 1e6);
  p.compute_utilization = p.achieved_tflops / c.peak_tflops;
  p.roofline_time_us = roofline_time_us(flops, bytes, c);
  p.roofline_efficiency = p.roofline_time_us / time_us;
  p.bound = roofline_bound(p.arithmetic_intensity, c);
  return p;
}

double percentile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) throw std::runtime_error("percentile of an empty sample list");
  double pos = std::clamp(q, 0.0, 1.0) * double(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = pos - double(lo);
  return sorted[lo] + frac * (sorted[hi] - sorted[lo]);
}

TimeStats summarize(std::vector<double> samples) {
  if (samples.empty()) throw std::runtime_error("summarize: no timing samples");
  for (double s : samples)
    if (!std::isfinite(s)) throw std::runtime_error(fmt::format("summarize: non-finite timing sample {}", s));
  std::sort(samples.begin(), samples.end());
  TimeStats t;
  t.median = percentile_sorted(samples, 0.5);
  t.p10 = percentile_sorted(samples, 0.1);
  t.p90 = percentile_sorted(samples, 0.9);
  t.n = static_cast<int>(samples.size());
  t.mean = sample_mean(samples);
  t.stddev = sample_stddev(samples);
  return t;
}

std::optional<double> interpolate_ridge_batch(const std::vector<double>& batches,
                                              const std::vector<double>& intensities, double ridge) {
  if (batches.empty() || batches.size() != intensities.size())
    throw std::runtime_error(fmt::format("interpolate_ridge_batch: {} batches but {} intensities",
                                         batches.size(), intensities.size()));
  if (!(ridge > 0))
    throw std::runtime_error(fmt::format("interpolate_ridge_batch: ridge {} must be > 0", ridge));
  for (size_t i = 0; i < batches.size(); ++i) {
    if (!(batches[i] > 0) || !(intensities[i] > 0))
      throw std::runtime_error(
          fmt::format("interpolate_ridge_batch: batch {} has intensity {}; both must be > 0", batches[i],
                      intensities[i]));
    if (i > 0 && !(batches[i] > batches[i - 1]))
      throw std::runtime_error("interpolate_ridge_batch: batches must rise strictly");
  }
  if (intensities[0] >= ridge) return batches[0];
  for (size_t i = 1; i < batches.size(); ++i) {
    if (intensities[i] < ridge) continue;
    double li0 = std::log(intensities[i - 1]), li1 = std::log(intensities[i]);
    double lb0 = std::log(batches[i - 1]), lb1 = std::log(batches[i]);
    double t = (std::log(ridge) - li0) / (li1 - li0);  // li1 > log(ridge) > li0 here
    return std::exp(lb0 + t * (lb1 - lb0));
  }
  return std::nullopt;
}

std::optional<double> measured_ridge_batch(std::vector<RidgeSample> samples, double device_ridge,
                                           double tolerance) {
  for (const auto& s : samples)
    if (!(s.batch > 0) || !(s.bytes > 0) || !(s.flops > 0) || !(s.time_us > 0))
      throw std::runtime_error(
          fmt::format("measured_ridge_batch: batch {} needs positive batch, flops, bytes and time (got {} "
                      "FLOP, {} B, {} µs)",
                      s.batch, s.flops, s.bytes, s.time_us));
  std::sort(samples.begin(), samples.end(), [](const auto& a, const auto& b) { return a.batch < b.batch; });
  // Repeated batches: keep the first, the caller should have summarized them already.
  samples.erase(std::unique(samples.begin(), samples.end(),
                            [](const auto& a, const auto& b) { return a.batch == b.batch; }),
                samples.end());
  if (samples.size() < 2) return std::nullopt;

  auto bandwidth = [](const RidgeSample& s) { return s.bytes / s.time_us; };  // B/µs: only ratios matter
  auto flop_rate = [](const RidgeSample& s) { return s.flops / s.time_us; };
  double bw_roof = bandwidth(samples.front());
  const RidgeSample* top = &samples.front();
  for (const auto& s : samples)
    if (flop_rate(s) > flop_rate(*top)) top = &s;
  if (bandwidth(*top) > (1.0 - tolerance) * bw_roof) return std::nullopt;  // never left the bandwidth roof
  if (top->flops / top->bytes < device_ridge) return std::nullopt;  // left it, but not for a compute roof

  double ridge = flop_rate(*top) / bw_roof;  // FLOP/B
  if (samples.front().flops / samples.front().bytes >= ridge) return samples.front().batch;
  for (size_t j = 1; j < samples.size(); ++j) {
    const RidgeSample &a = samples[j - 1], &b = samples[j];
    if (b.flops / b.bytes < ridge) continue;
    // (fa + s (fb - fa)) / (ba + s (bb - ba)) = ridge; the denominator is > 0 because b is at or
    // above the ridge and a below it.
    double s = (ridge * a.bytes - a.flops) / ((b.flops - a.flops) - ridge * (b.bytes - a.bytes));
    return a.batch + s * (b.batch - a.batch);
  }
  return std::nullopt;  // intensity not monotonic in the batch: no bracket
}

}  // namespace ridgeline
