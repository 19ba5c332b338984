# jobq_add_test(NAME name SOURCES ... [LIBS ...] LABELS ... TIMEOUT s)
function(jobq_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  jobq_warnings(${T_NAME})
  target_include_directories(${T_NAME} PRIVATE ${CMAKE_SOURCE_DIR}/tests/support)
  target_link_libraries(${T_NAME} PRIVATE jobq_test_support ${T_LIBS}
    PkgConfig::CMOCKA)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}"
    TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "JOBQ_BIN_DIR=${CMAKE_BINARY_DIR}/apps")
endfunction()
