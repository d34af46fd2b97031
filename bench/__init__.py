"""ERT benchmarks: `make bench` (all) or `make bench BENCH=name`."""
