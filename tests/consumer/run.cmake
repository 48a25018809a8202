# Installs the rouse already built in ROUSE_BINARY_DIR into a scratch prefix,
# then configures, builds and runs tests/consumer against it with
# find_package(rouse), and compiles and runs the same program with the flags
# of the installed pkg-config file (where pkg-config exists). Works for a
# static and a shared build alike. Fails on any step.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(step)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
step(${CMAKE_COMMAND} --install ${ROUSE_BINARY_DIR} --prefix ${WORK_DIR}/prefix)
step(${CMAKE_COMMAND} -S ${ROUSE_SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build
     -G Ninja -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
     # The build's own flags: a sanitizer build installs an instrumented
     # library, which links only into an instrumented program.
     "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")
step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
step(${WORK_DIR}/build/consumer)

# pkg-config: the installed rouse.pc alone must be enough to build and run.
find_program(PKG_CONFIG NAMES pkg-config pkgconf)
if(PKG_CONFIG)
  file(GLOB_RECURSE pc_files ${WORK_DIR}/prefix/*/rouse.pc)
  list(LENGTH pc_files pc_count)
  if(NOT pc_count EQUAL 1)
    message(FATAL_ERROR "expected one installed rouse.pc, found: ${pc_files}")
  endif()
  get_filename_component(pc_dir ${pc_files} DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs rouse RESULT_VARIABLE rc OUTPUT_VARIABLE pc_flags
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags --libs rouse failed")
  endif()
  separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
  separate_arguments(extra_flags UNIX_COMMAND "${CXX_FLAGS} ${LINKER_FLAGS}")
  step(${CXX} -std=c++20 ${extra_flags} ${ROUSE_SOURCE_DIR}/tests/consumer/main.cpp ${pc_flags} -pthread
       -o ${WORK_DIR}/consumer_pc)
  get_filename_component(lib_dir ${pc_dir} DIRECTORY)
  set(ENV{LD_LIBRARY_PATH} ${lib_dir})
  step(${WORK_DIR}/consumer_pc)
else()
  message(STATUS "pkg-config not found: the pkg-config consumer is not checked")
endif()

# The installed files: one targets file named for the library type, no
# model-only header.
if(BUILD_SHARED)
  set(own shared)
  set(other static)
else()
  set(own static)
  set(other shared)
endif()
file(GLOB_RECURSE targets_files ${WORK_DIR}/prefix/*/rouse-*-targets.cmake ${WORK_DIR}/prefix/*/rouseTargets.cmake)
list(LENGTH targets_files targets_count)
if(NOT targets_count EQUAL 1 OR NOT targets_files MATCHES "/rouse-${own}-targets.cmake$")
  message(FATAL_ERROR "expected one installed rouse-${own}-targets.cmake, found: ${targets_files}")
endif()
get_filename_component(cmake_dir ${targets_files} DIRECTORY)
file(GLOB_RECURSE model_headers ${WORK_DIR}/prefix/*/relacy_sync.hpp)
if(model_headers)
  message(FATAL_ERROR "the model-only header was installed: ${model_headers}")
endif()

# The library type find_package picks (rouseConfig.cmake): with this build's
# alone, and with a stand-in of the other type installed beside it (a static
# and a shared rouse in one prefix, as a distribution ships them).
function(pick expect)  # then -D arguments for the flavour project
  string(MAKE_C_IDENTIFIER "${expect}_${ARGN}" tag)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${ROUSE_SOURCE_DIR}/tests/consumer/flavour -B ${WORK_DIR}/flavour_${tag}
                          -G Ninja -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                          -DEXPECT=${expect} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(expect STREQUAL "none")
    if(rc EQUAL 0 OR NOT err MATCHES "is not installed")
      message(FATAL_ERROR "find_package(rouse ${ARGN}) should fail (not installed); got (${rc}):\n${err}")
    endif()
  elseif(NOT rc EQUAL 0)
    message(FATAL_ERROR "find_package(rouse ${ARGN}) should pick ${expect} (${rc}):\n${out}\n${err}")
  endif()
endfunction()
pick(${own})
pick(none -DWANT=${other})
file(WRITE ${cmake_dir}/rouse-${other}-targets.cmake
     "if(NOT TARGET rouse::rouse)\n  add_library(rouse::rouse INTERFACE IMPORTED)\nendif()\n")
pick(shared)
pick(static -DBUILD_SHARED_LIBS=OFF)
pick(shared -DBUILD_SHARED_LIBS=ON)
pick(static -DWANT=static)
pick(shared -DWANT=shared)
pick(static -Drouse_SHARED_LIBS=OFF -DBUILD_SHARED_LIBS=ON)
file(REMOVE ${cmake_dir}/rouse-${other}-targets.cmake)

# An older standard gets rouse's own message (rouse/config.hpp) among the
# errors, not only the cascade its C++20 code would give.
file(WRITE ${WORK_DIR}/old_standard.cpp "#include <rouse/mutex.hpp>\nint main() {}\n")
execute_process(COMMAND ${CXX} -std=c++17 -fsyntax-only -I${WORK_DIR}/prefix/include ${WORK_DIR}/old_standard.cpp
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "rouse needs C\\+\\+20")
  message(FATAL_ERROR "compiling rouse/mutex.hpp with -std=c++17 should fail with rouse's message; got (${rc}):\n${err}")
endif()
