"""The pieces of fastbp's benchmark suite; ``bench/run.py`` is the command.

- :mod:`.harness`: timing (median/IQR over repeats), thread pinning, memory, machine info;
- :mod:`.frameworks`: the benchmark networks and one runner per framework;
- :mod:`.gemm`: GEMM throughput against ``numpy.matmul``;
- :mod:`.report`: targets and the Markdown report.
"""
