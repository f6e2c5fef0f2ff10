# Input readers (producers/tf_input.c, issue 4) and the common record helpers.
tf_unit_test(test_input SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_input.c LIBS tfinput TIMEOUT 60)
tf_unit_test(test_record SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_record.c TIMEOUT 30)

# libFuzzer targets (clang only): run by tests/fuzz/run-fuzzers.sh.
if(TF_FUZZ)
  # Coverage instrumentation for the code under test, so libFuzzer is guided.
  target_compile_options(tfinput PRIVATE -fsanitize=fuzzer-no-link)
  target_compile_options(tfcommon PRIVATE -fsanitize=fuzzer-no-link)
  foreach(_fz fuzz_csv fuzz_jsonl)
    add_executable(${_fz} ${CMAKE_SOURCE_DIR}/tests/fuzz/${_fz}.c)
    target_compile_options(${_fz} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${_fz} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${_fz} PRIVATE tfinput)
    # A quick regression run over the bad-input catalogue (each file once).
    add_test(NAME ${_fz}_catalogue COMMAND ${_fz} -runs=0 ${CMAKE_SOURCE_DIR}/tests/data/input)
    set_tests_properties(${_fz}_catalogue PROPERTIES LABELS fuzz TIMEOUT 120)
  endforeach()
endif()
# Source profiles (producers/tf_source.c, issue 18): samples in tests/data/source.
tf_unit_test(test_source SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_source.c LIBS tfinput TIMEOUT 60)
target_compile_definitions(test_source PRIVATE TF_SOURCE_DATA="${CMAKE_SOURCE_DIR}/tests/data/source")
