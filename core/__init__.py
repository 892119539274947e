"""What the wearable (`glasses/`) and the stages (`pipelines/`) share, and nothing else:
typed messages (`messages`), audio helpers (`audio`) and the one session clock (`clock`).

Both sides import this package; neither imports the other. Only the assembly
(`pipelines/app/`) and the benchmarks put the two together.
"""
