# suites of the pipeline component
