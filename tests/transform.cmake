# suites of the transform component
