# suites of the load component
