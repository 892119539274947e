"""Shared by the command-line tests: what a bad-input answer must look like."""


def one_line_error(proc):
    """Exit 2 and exactly one line on stderr, never a traceback; returns that line."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]
