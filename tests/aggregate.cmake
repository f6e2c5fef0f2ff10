# tradeflow-aggregate (issue 5): integration tests on the real stack.
foreach(_t semantics crash group poison migrate faults)
  tf_integration_test(aggregate_${_t}
    COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_aggregate_${_t}.sh
    TIMEOUT 400)
endforeach()
