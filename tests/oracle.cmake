# The test oracle (tests/oracle/) and the sample-feed generator's calibration:
# a Python 3 self-check, standard library only, no servers (label "unit").
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME oracle_selfcheck
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/oracle/test_oracle_selfcheck.py)
  set_tests_properties(oracle_selfcheck PROPERTIES LABELS unit TIMEOUT 120)
else()
  message(WARNING "python3 not found: the oracle_selfcheck test is not declared")
endif()

# End to end against the real stack (label "integration"): generated feeds and
# the corner cases in tests/oracle/data/ go through tradeflow-produce and
# tradeflow-aggregate into a fresh database; the reporting views must equal
# the oracle's rows to the cent. Isolated topics, group and database.
if(Python3_Interpreter_FOUND AND COMMAND tf_integration_test)
  tf_integration_test(oracle_e2e
    COMMAND env PYTHON=${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/oracle/e2e_check.sh
    TIMEOUT 600)
endif()
