# Tests of the Avro codec (issue 3): schema model, canonical form and
# fingerprints, resolution, the codec, the registry client, Python interop.
tf_unit_test(test_codec SOURCES unit/test_codec.c LIBS tfcodec)
tf_unit_test(test_avro_canonical SOURCES unit/test_avro_canonical.c LIBS tfcodec)
tf_unit_test(test_avro_resolve SOURCES unit/test_avro_resolve.c LIBS tfcodec)
