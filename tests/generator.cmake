# Suites of the export generator (benchmarks/generator) and of the tests' tar writer.
skype_etl_add_test(tar_writer_tests SOURCES tar_writer_tests.cpp LIBS skype_etl_test_support
  LABELS unit)

# The generator is only configured with SKYPE_ETL_BUILD_BENCHMARKS.
if(TARGET skype_etl_generator)
  skype_etl_add_test(generator_tests SOURCES generator_tests.cpp
    LIBS skype_etl_generator skype_etl_test_support nlohmann_json::nlohmann_json
    LABELS unit)
  # The command-line test runs the real executable.
  target_compile_definitions(generator_tests PRIVATE
    SKYPE_ETL_GENERATE_EXE="$<TARGET_FILE:skype-etl-generate>")
  add_dependencies(generator_tests skype-etl-generate)
endif()
