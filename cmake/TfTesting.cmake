# Test helpers shared by every directory.
#
# tf_unit_test(NAME SOURCES a.c b.c [LIBS lib...] [TIMEOUT s])
#   A C test program that needs no server: label "unit".
# tf_integration_test(NAME COMMAND cmd args... [TIMEOUT s])
#   A test against the real stack (Kafka + PostgreSQL), label "integration".
#   It reads TRADEFLOW_BROKERS / PG* from the environment (deploy/stack.sh env)
#   and gets TF_BUILD_DIR and TF_SOURCE_DIR.
set(TF_TEST_TIMEOUT_SCALE 1)
if(TF_SANITIZE)
  set(TF_TEST_TIMEOUT_SCALE 3)
endif()

function(tf_unit_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  math(EXPR _to "${T_TIMEOUT} * ${TF_TEST_TIMEOUT_SCALE}")
  add_executable(${name} ${T_SOURCES})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${T_LIBS} tfcommon)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT ${_to}
    ENVIRONMENT "TF_BUILD_DIR=${CMAKE_BINARY_DIR};TF_SOURCE_DIR=${CMAKE_SOURCE_DIR};TRADEFLOW_SCHEMA_DIR=${CMAKE_SOURCE_DIR}/schemas")
endfunction()

function(tf_integration_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  math(EXPR _to "${T_TIMEOUT} * ${TF_TEST_TIMEOUT_SCALE}")
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT ${_to}
    ENVIRONMENT "TF_BUILD_DIR=${CMAKE_BINARY_DIR};TF_SOURCE_DIR=${CMAKE_SOURCE_DIR};TF_SANITIZE=${TF_SANITIZE};TRADEFLOW_SCHEMA_DIR=${CMAKE_SOURCE_DIR}/schemas")
endfunction()
