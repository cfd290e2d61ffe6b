#include "engine/cuda/cupti_op_timer.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

#ifdef RIDGELINE_HAVE_CUPTI
#include <cupti.h>
#endif

namespace ridgeline::cuda {

#ifdef RIDGELINE_HAVE_CUPTI
namespace {

constexpr size_t kBufferBytes = 8u << 20;

// CUPTI delivers records through C callbacks, so what they fill lives here; one timer at a time.
struct Records {
  std::mutex mu;
  std::map<uint32_t, uint64_t> external_of;  // correlation id -> op index
  std::map<uint32_t, uint64_t> kernel_ns;    // correlation id -> summed kernel duration
  bool keep_spans = false;
  std::vector<CuptiOpTimer::Span> spans;
} g_records;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard<std::mutex> lock(g_records.mu);
  CUpti_Activity* rec = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      auto* k = reinterpret_cast<CUpti_ActivityKernel10*>(rec);
      g_records.kernel_ns[k->correlationId] += k->end - k->start;
      if (g_records.keep_spans) g_records.spans.push_back({k->name ? k->name : "?", k->start, k->end});
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) {
      auto* e = reinterpret_cast<CUpti_ActivityExternalCorrelation*>(rec);
      if (e->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0)
        g_records.external_of[e->correlationId] = e->externalId;
    }
  }
  std::free(buffer);
}

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* msg = nullptr;
  cuptiGetResultString(r, &msg);
  throw std::runtime_error(std::string("CUPTI ") + what + ": " + (msg ? msg : "unknown error"));
}

const CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
                                     CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, CUPTI_ACTIVITY_KIND_RUNTIME,
                                     CUPTI_ACTIVITY_KIND_DRIVER};

}  // namespace

struct CuptiOpTimer::State {
  int enabled = 0;
};

CuptiOpTimer::CuptiOpTimer() : state_(std::make_unique<State>()) {
  check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "register callbacks");
  try {
    for (CUpti_ActivityKind k : kKinds) {
      check(cuptiActivityEnable(k), "enable activity");
      ++state_->enabled;
    }
  } catch (...) {
    for (int i = 0; i < state_->enabled; ++i) cuptiActivityDisable(kKinds[i]);
    throw;
  }
  std::lock_guard<std::mutex> lock(g_records.mu);
  g_records.external_of.clear();
  g_records.kernel_ns.clear();
  g_records.spans.clear();
  g_records.keep_spans = false;
}

CuptiOpTimer::~CuptiOpTimer() {
  cuptiActivityFlushAll(1);
  for (int i = 0; i < state_->enabled; ++i) cuptiActivityDisable(kKinds[i]);
}

void CuptiOpTimer::begin_op(uint64_t op_index) {
  check(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, op_index), "push id");
}

void CuptiOpTimer::end_op() {
  uint64_t id = 0;
  check(cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &id), "pop id");
}

std::vector<double> CuptiOpTimer::collect() {
  check(cuptiActivityFlushAll(1), "flush");
  std::lock_guard<std::mutex> lock(g_records.mu);
  std::vector<double> us;
  for (const auto& [corr, ns] : g_records.kernel_ns) {
    auto it = g_records.external_of.find(corr);
    if (it == g_records.external_of.end()) continue;  // a kernel outside any op
    if (us.size() <= it->second) us.resize(it->second + 1, 0.0);
    us[it->second] += ns * 1e-3;
  }
  g_records.external_of.clear();
  g_records.kernel_ns.clear();
  return us;
}

void CuptiOpTimer::keep_spans(bool on) {
  std::lock_guard<std::mutex> lock(g_records.mu);
  g_records.keep_spans = on;
}

std::vector<CuptiOpTimer::Span> CuptiOpTimer::collect_spans() {
  check(cuptiActivityFlushAll(1), "flush");
  std::lock_guard<std::mutex> lock(g_records.mu);
  std::vector<Span> spans = std::move(g_records.spans);
  g_records.spans.clear();
  g_records.external_of.clear();
  g_records.kernel_ns.clear();
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.start_ns < b.start_ns; });
  return spans;
}

#else

struct CuptiOpTimer::State {};
CuptiOpTimer::CuptiOpTimer() {
  throw std::runtime_error("this build has no CUPTI");
}
CuptiOpTimer::~CuptiOpTimer() = default;
void CuptiOpTimer::begin_op(uint64_t) {}
void CuptiOpTimer::end_op() {}
std::vector<double> CuptiOpTimer::collect() {
  return {};
}
void CuptiOpTimer::keep_spans(bool) {}
std::vector<CuptiOpTimer::Span> CuptiOpTimer::collect_spans() {
  return {};
}

#endif

}  // namespace ridgeline::cuda
