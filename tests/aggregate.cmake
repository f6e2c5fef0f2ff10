# tradeflow-aggregate (issue 5) and the fault suite (issue 7): integration
# tests on the real stack. The fault scenarios also carry the label "faults"
# (ctest -L faults).
foreach(_t semantics crash group poison migrate faults rebuild releases realistic)
  tf_integration_test(aggregate_${_t}
    COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_aggregate_${_t}.sh
    TIMEOUT 400)
endforeach()
tf_integration_test(cluster_failover
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_cluster_failover.sh
  TIMEOUT 400)
foreach(_t aggregate_crash aggregate_faults aggregate_poison cluster_failover)
  set_property(TEST ${_t} APPEND PROPERTY LABELS faults)
endforeach()
tf_integration_test(valgrind_core
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_valgrind.sh
  TIMEOUT 600)
set_tests_properties(valgrind_core PROPERTIES SKIP_RETURN_CODE 77)
set_property(TEST valgrind_core APPEND PROPERTY LABELS valgrind)
tf_integration_test(load_sustained
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_load.sh
  TIMEOUT 300)
set_property(TEST load_sustained APPEND PROPERTY LABELS load)
# aggregate_faults restarts the shared test stack's PostgreSQL and broker;
# cluster_failover and load_sustained need the machine to themselves (three
# more brokers; a fixed-rate feed): none may run beside other tests.
set_tests_properties(aggregate_faults cluster_failover load_sustained PROPERTIES RUN_SERIAL TRUE)
