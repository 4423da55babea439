"""Gunicorn settings every `gunicorn` run from this folder picks up (scripts/serve, bench/).

The command line still chooses the worker class, workers and address; this file only tunes what
a long-lived gevent worker holding thousands of live streams needs.
"""

import gc


def post_worker_init(worker):
    """After the app is loaded: leave its objects out of every future collection, and collect
    less often. Python's default thresholds (700, 10, 10) made a worker holding 5,000 live
    readers stop for 100-250 ms in full collections while a comment was being delivered
    (docs/benchmarks.md); frozen start-up objects are never garbage anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
