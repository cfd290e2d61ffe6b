# The one-way arrows of docs/DESIGN.md, checked on every build (the `layering` target runs this
# script before any library compiles): a source file may include ridgeline headers only from the
# folders its own folder depends on, so an upward include fails the build with the file, the line
# and the rule it breaks.
#
#   kernels/   -> kernels/
#   engine/    -> engine/, kernels/
#   analysis/  -> analysis/, and the model contract engine/{config,formats,ops}.h (plain data) with its
#                 file reader engine/text_file.h (reports, gzipped or not)
#   bench/     -> bench/, engine/, analysis/, kernels/
#   cli/       -> cli/, bench/, engine/ (never engine/cuda/: the CLI reaches backends through
#                 engine/backend_factory.h), analysis/
# and no #ifdef on the CUDA build outside engine/ and bench/ (the CUDA backend is chosen at run time).
#
# Usage: cmake -DRIDGELINE_SOURCE=<repo root> -P cmake/layering.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT RIDGELINE_SOURCE)
  message(FATAL_ERROR "layering.cmake: pass -DRIDGELINE_SOURCE=<repository root>")
endif()

set(allowed_kernels "kernels/")
set(allowed_engine "engine/;kernels/")
set(allowed_analysis "analysis/;engine/config.h;engine/formats.h;engine/ops.h;engine/text_file.h")
set(allowed_bench "bench/;engine/;analysis/;kernels/")
set(allowed_cli "cli/;bench/;engine/;analysis/")
set(forbidden_cli "engine/cuda/")

# Sets `out` to TRUE when `text` starts with one of the `prefixes`.
function(starts_with_any text prefixes out)
  foreach(prefix IN LISTS prefixes)
    string(LENGTH "${prefix}" n)
    string(SUBSTRING "${text}" 0 ${n} head)
    if(head STREQUAL prefix)
      set(${out} TRUE PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} FALSE PARENT_SCOPE)
endfunction()

set(errors "")
foreach(folder kernels engine analysis bench cli)
  file(GLOB_RECURSE files RELATIVE "${RIDGELINE_SOURCE}"
       "${RIDGELINE_SOURCE}/${folder}/*.h" "${RIDGELINE_SOURCE}/${folder}/*.cpp"
       "${RIDGELINE_SOURCE}/${folder}/*.cu" "${RIDGELINE_SOURCE}/${folder}/*.cuh")
  foreach(file IN LISTS files)
    file(STRINGS "${RIDGELINE_SOURCE}/${file}" lines REGEX "^[ \t]*#[ \t]*(include[ \t]*\"|if|ifdef|ifndef|elif)")
    foreach(line IN LISTS lines)
      if(line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
        set(inc "${CMAKE_MATCH_1}")
        if(NOT inc MATCHES "^(kernels|engine|analysis|bench|cli|tests)/")
          continue()  # a system or third-party header
        endif()
        starts_with_any("${inc}" "${allowed_${folder}}" allowed)
        starts_with_any("${inc}" "${forbidden_${folder}}" forbidden)
        if(NOT allowed OR forbidden)
          string(APPEND errors "  ${file}: #include \"${inc}\": ${folder}/ may include only ${allowed_${folder}}")
          if(forbidden_${folder})
            string(APPEND errors " (never ${forbidden_${folder}})")
          endif()
          string(APPEND errors "\n")
        endif()
      elseif(line MATCHES "RIDGELINE_HAVE_CUDA" AND NOT folder MATCHES "^(engine|bench)$")
        string(APPEND errors "  ${file}: \"${line}\": only engine/ and bench/ may depend on the CUDA build\n")
      endif()
    endforeach()
  endforeach()
endforeach()

if(errors)
  message(FATAL_ERROR "ridgeline layering: upward dependencies (docs/DESIGN.md, \"Layout\"):\n${errors}")
endif()
