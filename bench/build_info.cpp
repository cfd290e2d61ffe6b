#include "bench/build_info.h"

#include <cstdlib>

namespace ridgeline {

// Defined in the generated <build>/generated/build_stamp.cpp.
extern const char kBuildGitCommit[], kBuildCxxCompiler[], kBuildCudaCompiler[];

std::string build_git_commit() {
  if (const char* v = std::getenv(kGitCommitVariable); v && *v) return v;
  return kBuildGitCommit;
}

std::string build_cxx_compiler() {
  return kBuildCxxCompiler;
}

std::string build_cuda_compiler() {
  return kBuildCudaCompiler;
}

}  // namespace ridgeline
