# What the `ridgeline` executable needs beyond the ridgeline libraries: CLI11 (header-only, Debian
# libcli11-dev, installed by scripts/setup.sh) and the version `ridgeline --version` prints.
# Included by the root CMakeLists.txt after add_executable(ridgeline).
#
# A machine without the package (a bare GPU image) can carry the headers instead:
#   dpkg -x libcli11-dev_*.deb cli11 && cmake ... -DCLI11_INCLUDE_DIR=$PWD/cli11/usr/include
set(CLI11_INCLUDE_DIR "" CACHE PATH "Folder holding CLI/CLI.hpp, for machines without libcli11-dev")
if(CLI11_INCLUDE_DIR)
  if(NOT EXISTS "${CLI11_INCLUDE_DIR}/CLI/CLI.hpp")
    message(FATAL_ERROR "CLI11_INCLUDE_DIR=${CLI11_INCLUDE_DIR} holds no CLI/CLI.hpp")
  endif()
  target_include_directories(ridgeline SYSTEM PRIVATE "${CLI11_INCLUDE_DIR}")
else()
  find_package(CLI11 CONFIG QUIET)
  if(TARGET CLI11::CLI11)
    target_link_libraries(ridgeline PRIVATE CLI11::CLI11)
  else()
    find_path(RIDGELINE_CLI11_HEADERS CLI/CLI.hpp)
    if(NOT RIDGELINE_CLI11_HEADERS)
      message(FATAL_ERROR "CLI11 not found: install libcli11-dev (scripts/setup.sh does), or pass "
                          "-DCLI11_INCLUDE_DIR=<folder holding CLI/CLI.hpp>")
    endif()
    target_include_directories(ridgeline SYSTEM PRIVATE "${RIDGELINE_CLI11_HEADERS}")
  endif()
endif()
target_compile_definitions(ridgeline PRIVATE RIDGELINE_VERSION="${PROJECT_VERSION}")
