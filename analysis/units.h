// Rates printed for people: three significant digits, in the project's usual unit (GB/s, TFLOP/s)
// or a smaller one when the value is under 1 of it, so that a CPU's 0.04 TFLOP/s reads "40.0
// GFLOP/s" rather than "0.0 TFLOP/s".
#pragma once

#include <string>

namespace ridgeline {

std::string format_bandwidth(double GBps);    // "3010 GB/s", "12.4 GB/s", "850 MB/s"
std::string format_flops(double tflops);      // "989 TFLOP/s", "1.52 TFLOP/s", "85.3 GFLOP/s"
std::string format_duration(double seconds);  // "45 s", "3 min 10 s", "2 h 05 min"

}  // namespace ridgeline
