"""Which models to load, and one clear line when they cannot be loaded.

The defaults are real hub models that download on first use (with the hub's progress
bars). Anything that goes wrong while loading becomes `ModelUnavailable`, whose message
names the model and says how to fix it; the entry point prints it and exits 2.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_VLM = "HuggingFaceTB/SmolVLM-256M-Instruct"
DEFAULT_ASR = "base"  # faster-whisper size name; also a hub id or a local CTranslate2 folder


class ModelUnavailable(Exception):
    """A model could not be loaded; str() is one user-facing line."""


@dataclass(frozen=True)
class ModelChoice:
    vlm: str
    asr: str
    random: bool  # tiny random-weight models: a wiring smoke run, not answers

    def describe(self) -> dict:
        return {"vlm": self.vlm, "asr": self.asr, "random_weights": self.random}


def choose(models: str = "default", vlm: str | None = None, asr: str | None = None) -> ModelChoice:
    """Resolve --models/--vlm/--asr into model ids or folders (may build tiny models)."""
    if models == "tiny-random":
        from pipelines.tiny import ensure_tiny_models

        vlm_dir, asr_dir = ensure_tiny_models()
        return ModelChoice(vlm or str(vlm_dir), asr or str(asr_dir), True)
    if models != "default":
        raise ValueError(f"unknown --models {models!r}: use default or tiny-random")
    choice = ModelChoice(vlm or DEFAULT_VLM, asr or DEFAULT_ASR, False)
    from pipelines.tiny import is_random_weights

    return ModelChoice(choice.vlm, choice.asr, is_random_weights(choice.vlm) or is_random_weights(choice.asr))


def unavailable(kind: str, name: str, err: BaseException) -> ModelUnavailable:
    """Turn a loading exception into the one line the user sees."""
    local = Path(name).exists()
    why = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
    if local:
        hint = f"the folder exists but does not hold a loadable {kind} model ({why})"
    else:
        hint = (
            f"not in the local cache and it could not be downloaded ({why}). Connect to the internet once "
            f"so it downloads, or pass a local folder with --{'vlm' if kind == 'vision-language' else 'asr'}, "
            "or try the offline smoke run with --models tiny-random"
        )
    return ModelUnavailable(f"cannot load {kind} model '{name}': {hint}")
