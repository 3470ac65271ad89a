# suites of the context component
