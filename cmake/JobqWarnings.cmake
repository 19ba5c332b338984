# jobq_warnings(target): the one list of warning flags for our own code.
function(jobq_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wformat=2 -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wconversion -Wno-sign-conversion
    -Wundef -Wvla)
  if(JOBQ_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
