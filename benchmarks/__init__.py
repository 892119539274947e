"""Benchmarks: scripts that measure the assistant (`python -m benchmarks.NAME`); results go to
BENCHMARKS.md with the command, the machine and the date. Like the app, they assemble the
wearable's ports and the stages, so they may import both."""
