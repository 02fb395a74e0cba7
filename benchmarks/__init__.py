"""archguide's benchmarks: scripts that print tables (``python benchmarks/bench_*.py``) and the peer
suite (``python -m benchmarks.peers``)."""
