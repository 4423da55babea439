# Benchmarks (bench/README.md); everyday tests are ./scripts/test.
.PHONY: bench soak

# Every benchmark, one table. BENCH_ARGS="--only reading --seconds 5" to narrow it.
bench:
	bench/run $(BENCH_ARGS)

# The 30-second load campaign and the faults (tests/test_resilience_soak.py). It RESTARTS the
# machine's Redis and PostgreSQL (and brings them back), so it is not part of the default run.
soak:
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/0} \
	.venv/bin/python -m pytest -m soak tests/test_resilience_soak.py -s -p no:cacheprovider $(SOAK_ARGS)
