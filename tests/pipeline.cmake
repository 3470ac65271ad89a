# Suites of the whole pipeline (graph + all components) against a real server.
if(TARGET skype_etl_generator)
  skype_etl_add_test(pipeline_tests SOURCES pipeline_tests.cpp
    LIBS skype_etl_internal skype_etl_generator skype_etl_test_support LABELS db)
endif()
if(TARGET skype_etl_generator)
  skype_etl_add_test(cli_tests SOURCES cli_tests.cpp
    LIBS skype_etl_generator skype_etl_test_support LABELS db)
  target_compile_definitions(cli_tests PRIVATE SKYPE_ETL_EXE="$<TARGET_FILE:skype-etl>")
  add_dependencies(cli_tests skype-etl)
endif()
if(TARGET skype_etl_generator)
  skype_etl_add_test(cli_resource_tests SOURCES cli_resource_tests.cpp
    LIBS skype_etl_generator skype_etl_test_support nlohmann_json::nlohmann_json LABELS db)
  target_compile_definitions(cli_resource_tests PRIVATE SKYPE_ETL_EXE="$<TARGET_FILE:skype-etl>")
  add_dependencies(cli_resource_tests skype-etl)
endif()
skype_etl_add_test(report_tests SOURCES report_tests.cpp LIBS skype_etl_internal LABELS unit)
