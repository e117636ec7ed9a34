"""Speed benchmarks: the trainer's input pipeline and training step beside their peers.

    ./scripts/benchmark.sh                      # 1M rows, 3 measured repeats, prints a table
    ./scripts/benchmark.sh --json bench.json -- --batch_size 512

See `benchmarks.run` for the flags and docs/performance.md for the figures.
"""
