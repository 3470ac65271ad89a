# Suites of the whole pipeline (graph + all components) against a real server.
if(TARGET skype_etl_generator)
  skype_etl_add_test(pipeline_tests SOURCES pipeline_tests.cpp
    LIBS skype_etl skype_etl_generator skype_etl_test_support LABELS db)
endif()
