# Security (issue 7, item 4): Kafka over SASL/SCRAM and TLS, PostgreSQL over
# TLS, refusals, no secret in any output, and a wrong SCRAM password ending
# every Kafka program within a bound. Each test starts its own private stack
# (deploy/stack.sh up --secure) on free ports and removes it at exit, so they
# can run beside other tests, but only one at a time (one more JVM and
# PostgreSQL each on a small machine). `ctest -L security` runs them.
foreach(_t tls secrets authfail)
  tf_integration_test(security_${_t}
    COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_security_${_t}.sh
    TIMEOUT 300)
  set_property(TEST security_${_t} APPEND PROPERTY LABELS security)
  set_tests_properties(security_${_t} PROPERTIES RESOURCE_LOCK tf_secure_stack)
endforeach()
