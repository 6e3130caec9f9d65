"""Training and evaluation of Raksha's models: datasets, the expression model's training,
distillation and quantization, cross-population metrics, the event benchmark.

Only the command line (`raksha train`, `raksha eval`) and the benchmarks import this package;
the runtime never does, and never imports torch (import-linter checks both)."""
