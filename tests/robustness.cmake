# Issue 14: nothing a feed contains stalls the pipeline; secrets masked;
# programs give up clearly on unreachable or refusing servers.
tf_unit_test(test_pg_classify SOURCES unit/test_pg_classify.c LIBS tfagg)
tf_integration_test(aggregate_isolate
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_aggregate_isolate.sh
  TIMEOUT 400)
set_property(TEST aggregate_isolate APPEND PROPERTY LABELS faults)
tf_unit_test(test_secret SOURCES unit/test_secret.c)
tf_integration_test(aggregate_validate
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_aggregate_validate.sh
  TIMEOUT 300)
tf_integration_test(startup_failures
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_startup_failures.sh
  TIMEOUT 300)
tf_integration_test(secrets_masked
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_secrets_masked.sh
  TIMEOUT 300)
set_property(TEST secrets_masked APPEND PROPERTY LABELS security)
foreach(_t aggregate_validate startup_failures)
  set_property(TEST ${_t} APPEND PROPERTY LABELS faults)
endforeach()
tf_integration_test(security_pgrefused
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_security_pgrefused.sh
  TIMEOUT 400)
set_property(TEST security_pgrefused APPEND PROPERTY LABELS security)
set_tests_properties(security_pgrefused PROPERTIES RESOURCE_LOCK tf_secure_stack)
