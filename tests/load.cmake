# suites of the load component
skype_etl_add_test(copy_writer_tests SOURCES copy_writer_tests.cpp
  LIBS skype_etl_load LABELS unit)
skype_etl_add_test(schema_tests SOURCES schema_tests.cpp
  LIBS skype_etl_load skype_etl_test_support LABELS db)
skype_etl_add_test(load_tests SOURCES load_tests.cpp
  LIBS skype_etl_load skype_etl_test_support LABELS db)
skype_etl_add_test(search_tests SOURCES search_tests.cpp
  LIBS skype_etl_load skype_etl_test_support LABELS db)
skype_etl_add_test(id_seen_filter_tests SOURCES id_seen_filter_tests.cpp
  LIBS skype_etl_load LABELS unit)
# Threads of its own: also under ThreadSanitizer.
skype_etl_add_test(parallel_copy_tests SOURCES parallel_copy_tests.cpp
  LIBS skype_etl_load skype_etl_test_support LABELS "db;tsan")
# COPY escaping on the baseline code (see tests/extract.cmake).
add_test(NAME copy_writer_tests_baseline COMMAND copy_writer_tests --log_level=test_suite)
set_tests_properties(copy_writer_tests_baseline PROPERTIES ENVIRONMENT SKYPE_ETL_CPU=baseline
  LABELS unit)
