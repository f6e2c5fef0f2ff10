# Issue 14: nothing a feed contains stalls the pipeline; secrets masked;
# programs give up clearly on unreachable or refusing servers.
tf_unit_test(test_pg_classify SOURCES unit/test_pg_classify.c LIBS tfagg)
