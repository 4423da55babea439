"""Reference servers for the benchmarks: the render ceiling and the server ceiling."""
