"""The pipeline benchmark's parts: load driver, raw-Kafka relay, observers (benchmarks/pipeline.py)."""
