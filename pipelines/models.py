"""Which models to load, where they are, and one clear line when they cannot be loaded.

The defaults are real hub models that download on first use (with the hub's progress
bars). Anything that goes wrong while loading becomes `ModelUnavailable`, whose message
names the model and says how to fix it; the entry point prints it and exits 2.

`locate` runs before any loading. A hub model already in the local cache is loaded from its
snapshot folder, so a start with cached models makes no request at all (no update check
either). Only a model that is not cached goes to the hub, and only after a short check that
the hub answers: the loaders' own clients retry for minutes (145 s and 67 lines for an
unknown id) before they give up offline.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

DEFAULT_VLM = "HuggingFaceTB/SmolVLM-256M-Instruct"
DEFAULT_ASR = "base"  # faster-whisper size name; also a hub id or a local CTranslate2 folder
VLM, ASR = "vision-language", "speech-recognition"  # the kinds, as the messages name them
# The files each kind loads from a snapshot: a cached copy missing one of them is not used.
# Speech: faster-whisper's own download list; vision: what transformers reads from a folder.
HUB_FILES = {
    ASR: ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"],
    VLM: ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model"],
}
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
PROBE_SECONDS = 3.0  # how long the hub may take to answer before a download is given up


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
    why = _first_line(err)
    if local:
        hint = f"the folder exists but does not hold a loadable {kind} model ({why})"
    else:
        hint = (
            f"not in the local cache and it could not be downloaded ({why}). Connect to the internet once "
            f"so it downloads, or pass a local folder with --{'vlm' if kind == VLM else 'asr'}, "
            "or try the offline smoke run with --models tiny-random"
        )
    return ModelUnavailable(f"cannot load {kind} model '{name}': {hint}")


def hub_repo(kind: str, name: str) -> str | None:
    """The hub repository a model name stands for, or None when it names none (pure).

    A Whisper size ("base") stands for faster-whisper's conversion of it; anything shaped
    org/name is a repository id."""
    if kind == ASR:
        from faster_whisper.utils import _MODELS

        if name in _MODELS:
            return _MODELS[name]
    return name if HUB_ID.fullmatch(name) else None


def cached_snapshot(repo: str, kind: str) -> tuple[str | None, str]:
    """(the cached snapshot folder holding what `kind` loads, or None; why not). No request is made."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import IncompleteSnapshotError

        return snapshot_download(repo, local_files_only=True, allow_patterns=HUB_FILES[kind]), ""
    except IncompleteSnapshotError:
        return None, "its cached copy is incomplete"
    except Exception:  # noqa: BLE001 - not cached, or an id the hub client refuses: either way not here
        return None, ""


def hub_problem(timeout: float = PROBE_SECONDS) -> str:
    """Why the hub cannot be asked for a download now, or "" when it answers.

    Honours HF_HUB_OFFLINE and HF_ENDPOINT, and goes through the hub client's own session
    (its proxies and certificates). The probe runs in a thread so that a resolver that hangs
    costs `timeout` seconds, not the system's DNS timeouts."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    endpoint = constants.ENDPOINT
    answer: list[str] = []

    def probe() -> None:
        try:
            from huggingface_hub.utils import get_session

            get_session().head(endpoint, timeout=timeout)  # any status will do: something answered
            answer.append("")
        except Exception as err:  # noqa: BLE001 - every failure means the same: no hub now
            answer.append(_first_line(err))

    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    why = answer[0] if answer else f"no answer within {timeout:g} s"
    return f"the hub at {endpoint} cannot be reached: {why}" if why else ""


def locate(kind: str, name: str) -> str:
    """Where to load a model from: a local folder (a cached snapshot included), or the hub id
    itself when it is not cached and the hub answers. ModelUnavailable otherwise, at once."""
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    repo = hub_repo(kind, name)
    if repo is None:
        what = "a Whisper size (tiny, base, small, ...), " if kind == ASR else ""
        raise ModelUnavailable(f"cannot load {kind} model '{name}': no such folder, and not {what}a hub id "
                               "(org/name) either")
    folder, why_not = cached_snapshot(repo, kind)
    if folder:
        return folder
    problem = hub_problem()
    if problem:
        raise unavailable(kind, name, ConnectionError(f"{why_not}; {problem}" if why_not else problem))
    return name  # the loader downloads it, with the hub's progress bars


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__
