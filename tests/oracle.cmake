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
