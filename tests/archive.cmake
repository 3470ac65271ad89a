# Suites of `skype-etl export` and `skype-etl stats` (src/archive, src/cli/export_command):
# the command run on a fixture loaded by `skype-etl run`, against a real server.
skype_etl_add_test(archive_tests SOURCES archive_tests.cpp
  LIBS skype_etl_archive skype_etl_test_support nlohmann_json::nlohmann_json LABELS db)
target_compile_definitions(archive_tests PRIVATE SKYPE_ETL_EXE="$<TARGET_FILE:skype-etl>")
add_dependencies(archive_tests skype-etl)
