# Tests of the Avro codec (issue 3): schema model, canonical form and
# fingerprints, resolution, the codec, the registry client, Python interop.
tf_unit_test(test_codec SOURCES unit/test_codec.c LIBS tfcodec)
tf_unit_test(test_avro_canonical SOURCES unit/test_avro_canonical.c LIBS tfcodec)
tf_unit_test(test_avro_resolve SOURCES unit/test_avro_resolve.c LIBS tfcodec)

# Interop with fastavro (label integration; needs no Kafka). Uses $TF_PYTHON,
# else the project venv, else python3; fastavro must be importable.
add_executable(codec_tool integration/codec_tool.c)
target_link_libraries(codec_tool PRIVATE tfcodec)
set_target_properties(codec_tool PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
tf_integration_test(codec_interop COMMAND sh -c
  "exec \"\${TF_PYTHON:-$(test -x ${CMAKE_SOURCE_DIR}/.venv/bin/python && echo ${CMAKE_SOURCE_DIR}/.venv/bin/python || echo python3)}\" ${CMAKE_CURRENT_SOURCE_DIR}/integration/codec_interop.py $<TARGET_FILE:codec_tool> ${CMAKE_SOURCE_DIR}/schemas"
  TIMEOUT 120)

# Registry client against a tiny local registry (Python stdlib + openssl).
tf_unit_test(test_codec_registry SOURCES unit/test_codec_registry.c LIBS tfcodec TIMEOUT 60)

# Confluent framing against a real Apicurio Registry (deploy/registry.sh;
# fetches the app from Maven Central once). Label integration.
tf_integration_test(codec_registry_apicurio COMMAND bash
  ${CMAKE_CURRENT_SOURCE_DIR}/integration/codec_registry_apicurio.sh $<TARGET_FILE:codec_tool>
  TIMEOUT 300)

# libFuzzer targets of the codec (clang, -DTF_FUZZ=ON): run by
# tests/fuzz/run-fuzzers.sh BUILD_DIR SECONDS, with seeds in tests/fuzz/corpus/.
if(TF_FUZZ)
  foreach(_fz fuzz_decode fuzz_schema)
    add_executable(${_fz} ${CMAKE_SOURCE_DIR}/tests/fuzz/${_fz}.c)
    target_compile_options(${_fz} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${_fz} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${_fz} PRIVATE tfcodec)
  endforeach()
endif()

# The fuzzers, briefly, in a separate clang + sanitizer build (configured on
# first use in <build>/fuzz). Label integration; ~2 min on 2 cores.
if(NOT TF_FUZZ)
  tf_integration_test(codec_fuzz_brief COMMAND bash
    ${CMAKE_SOURCE_DIR}/tests/fuzz/run-fuzzers.sh ${CMAKE_BINARY_DIR}/fuzz 10
    TIMEOUT 900)
endif()
