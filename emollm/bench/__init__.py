"""Benchmarks: each fast path timed against the reference (Emotion-LLaMA) approach in the same run.

    emollm bench train|eval|generate|extract --preset tiny|tiny-fast|mini|emotion-llama-shapes [--device D]

Modules: ``common`` (devices, timing, peak memory, FLOPs/MFU, the report and its JSON line),
``workload`` (system + samples + features per preset), ``shapes`` (the Emotion-LLaMA 7B shapes with
random weights), ``defaults`` (per-preset sizes), one module per benchmark (``train``, ``eval``,
``generate``, ``extract``) and ``commands`` (the CLI). Results and how to read them:
``docs/PERFORMANCE.md``.
"""
