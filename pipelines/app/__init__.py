"""Assembly: build the ports and stages a command asks for, run a Session, write outputs.

This package is the only code that imports both the wearable side (`glasses/`) and the
stages (the benchmarks assemble too). `common` holds what both commands share, `replay` and
`live` one command each.
"""
from pipelines.app.common import (RANDOM_BANNER, AssistantOptions, UsageError, default_out, load_models,
                                  open_session, prepare_out, session_config, stages)
from pipelines.app.live import LiveOptions, LiveResult, live, print_live_summary
from pipelines.app.replay import ReplayOptions, ReplayResult, print_summary, replay

__all__ = ["RANDOM_BANNER", "AssistantOptions", "UsageError", "default_out", "load_models", "open_session",
           "prepare_out", "session_config", "stages", "LiveOptions", "LiveResult", "live", "print_live_summary",
           "ReplayOptions", "ReplayResult", "print_summary", "replay"]
