# Tests of the Avro codec (issue 3): schema model, canonical form and
# fingerprints, resolution, the codec, the registry client, Python interop.
tf_unit_test(test_codec SOURCES unit/test_codec.c LIBS tfcodec)
