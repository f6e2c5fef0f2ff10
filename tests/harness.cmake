# The test harness itself (issue 2): the admin tool the shell tests use, the
# first integration test on the real stack, and checks that a missing server
# is reported loudly and quickly.

# tf_admin: create/delete topics and ping the brokers (tests/integration/lib.sh).
add_executable(tf_admin ${CMAKE_CURRENT_SOURCE_DIR}/integration/tf_admin.c)
target_link_libraries(tf_admin PRIVATE tfcommon PkgConfig::RDKAFKA)
set_target_properties(tf_admin PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

# Kafka produce/consume and PostgreSQL write/read with the project's C code.
add_executable(test_harness ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_harness.c)
target_include_directories(test_harness PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_harness PRIVATE tfcommon PkgConfig::RDKAFKA PkgConfig::PQ)
set_target_properties(test_harness PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

tf_integration_test(harness_roundtrip COMMAND $<TARGET_FILE:test_harness> -n 2000 TIMEOUT 120)
# The same program against closed ports: must fail, name the server, and do
# so within a bounded time.
tf_integration_test(harness_down
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/harness_down.sh $<TARGET_FILE:test_harness>
  TIMEOUT 120)
# tests/integration/lib.sh: unique databases and topics, clean-up at exit
# (also when the test sets its own EXIT trap), loud failure without a stack.
tf_integration_test(harness_lib
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/harness_lib.sh TIMEOUT 120)

# Serverless (label unit): with nothing listening, test_harness must fail at
# once and name both servers. PASS_REGULAR_EXPRESSION checks the message;
# the TIMEOUT bounds the time (the probes take 3 s each at most).
add_test(NAME harness_noserver
  COMMAND ${CMAKE_COMMAND} -E env TRADEFLOW_BROKERS=127.0.0.1:1 PGHOST=127.0.0.1 PGPORT=1
          $<TARGET_FILE:test_harness> -T 3 -n 1)
set_tests_properties(harness_noserver PROPERTIES LABELS unit TIMEOUT 20
  PASS_REGULAR_EXPRESSION "FAIL: Kafka at 127.0.0.1:1 is unreachable.*PostgreSQL at 127.0.0.1:1 is unreachable")

# deploy/stack.sh's commands on a second, private stack (free ports).
tf_integration_test(harness_stack
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/harness_stack.sh TIMEOUT 300)
set_tests_properties(harness_stack PROPERTIES SKIP_RETURN_CODE 77)

# Static checks of the shell tests (tests/integration/lint_tests.sh): no EXIT
# trap beside lib.sh's clean-up, no check whose verdict is thrown away.
add_test(NAME tests_lint COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/lint_tests.sh)
set_tests_properties(tests_lint PROPERTIES LABELS unit TIMEOUT 60)
