# Fails when a function that librouse defines out of line, and that code
# compiled elsewhere may call, takes an argument narrower than int: bool, a
# char or short type, or one of rouse's enums with an 8- or 16-bit
# underlying type.
#
# Why: the x86-64 calling convention leaves the upper bits of such an
# argument's register undefined, but clang's callees assume the caller
# widened it to 32 bits, and g++'s callers do not always (a constant may go
# in as a byte move). A librouse built with clang and called from code built
# with g++ then reads garbage: a process-private futex wake became a shared
# one, which no private waiter sees (a lost wake-up). Out-of-line arguments
# are therefore int-sized; public functions that take a narrower type are
# inline and widen before the call.
#
#   cmake -DNM=<nm> -DLIBRARY=<librouse.a> -DINCLUDE_DIR=<include> -P narrow_arguments.cmake

# Called only from inside the library (private members, test hooks built
# with it): both sides are compiled by one compiler.
set(internal_only
  "rouse::io::reactor::wait("
  "rouse::io::reactor::uring_park("
  "rouse::platform::detail::force_wait_any_polling(")

execute_process(COMMAND ${NM} -C --defined-only ${LIBRARY} OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${LIBRARY}")
endif()

# rouse's enums with a narrow underlying type, from the headers.
file(GLOB_RECURSE headers ${INCLUDE_DIR}/rouse/*.hpp)
set(narrow_enums "")
foreach(h IN LISTS headers)
  file(STRINGS ${h} lines REGEX "enum class [A-Za-z_]+ : std::u?int(8|16)_t")
  foreach(l IN LISTS lines)
    string(REGEX REPLACE ".*enum class ([A-Za-z_]+) : .*" "\\1" name "${l}")
    list(APPEND narrow_enums ${name})
  endforeach()
endforeach()
list(REMOVE_DUPLICATES narrow_enums)
list(JOIN narrow_enums "|" enum_alternatives)

string(REPLACE "\n" ";" lines "${symbols}")
set(checked 0)
set(bad "")
foreach(line IN LISTS lines)
  if(NOT line MATCHES "^[0-9a-f]+ T (rouse::.*)$")
    continue()
  endif()
  set(symbol "${CMAKE_MATCH_1}")
  string(FIND "${symbol}" "(" open)
  if(open EQUAL -1)
    continue()
  endif()
  math(EXPR checked "${checked} + 1")
  string(SUBSTRING "${symbol}" ${open} -1 params)
  set(narrow FALSE)
  if(params MATCHES "[(, ](bool|char|signed char|unsigned char|short|unsigned short)[,)]")
    set(narrow TRUE)
  elseif(NOT enum_alternatives STREQUAL "" AND params MATCHES "::(${enum_alternatives})[,)]")
    set(narrow TRUE)
  endif()
  if(narrow)
    set(allowed FALSE)
    foreach(prefix IN LISTS internal_only)
      string(FIND "${symbol}" "${prefix}" at)
      if(at EQUAL 0)
        set(allowed TRUE)
      endif()
    endforeach()
    if(NOT allowed)
      list(APPEND bad "${symbol}")
    endif()
  endif()
endforeach()

if(checked EQUAL 0)
  message(FATAL_ERROR "no function of rouse found in ${LIBRARY}: the check saw nothing")
endif()
if(bad)
  list(JOIN bad "\n  " text)
  message(FATAL_ERROR "out-of-line functions with arguments narrower than int (see the top of this file):\n  ${text}")
endif()
message(STATUS "${checked} out-of-line functions checked; narrow enums: ${narrow_enums}")
