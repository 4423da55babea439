"""Benchmarks: Parley against its ceilings and against Isso. Run them all with `bench/run`."""
