// What built this binary, for the reports it writes: the git commit stamped at BUILD time (by
// cmake/git_stamp.cmake, with "-dirty" when tracked files differed from it) and the compilers.
#pragma once

#include <string>

namespace ridgeline {

inline constexpr const char* kGitCommitVariable = "RIDGELINE_GIT_COMMIT";

// $RIDGELINE_GIT_COMMIT when set and not empty at run time (a machine whose copy of .git is stale:
// the caller knows the commit), else the build's stamp; "" when neither knows.
std::string build_git_commit();
// The C++ compiler ("GNU 12.2.0") and, in a CUDA build, nvcc ("NVIDIA 13.0.88"; "" otherwise).
std::string build_cxx_compiler();
std::string build_cuda_compiler();

}  // namespace ridgeline
