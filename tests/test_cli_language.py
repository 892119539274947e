"""--language and --translate: what Whisper is told, and bad values refused at start-up."""
import pytest

from pipelines.app import common
from pipelines.app.common import AssistantOptions, UsageError, load_models, stages
from pipelines.asr import check_language, whisper_language
from pipelines.models import ModelChoice


def test_whisper_is_told_english_only_when_nothing_else_is_meant():
    assert whisper_language(None, False) == "en"  # the default: English speech
    assert whisper_language(None, True) is None  # --translate: the speech is foreign, detect it
    assert whisper_language("auto", False) is None and whisper_language("auto", True) is None
    assert whisper_language("de", True) == "de" and whisper_language("en", False) == "en"


def test_language_codes_are_checked_against_whisper():
    assert check_language("DE") == "de" and check_language("auto") == "auto" and check_language("zh") == "zh"
    with pytest.raises(ValueError, match="unknown language 'zz-bogus'.*en, de"):
        check_language("zz-bogus")


class Recorder:
    """Stands in for FasterWhisper and HFVLM: keeps its config, loads nothing."""

    made = []

    def __init__(self, config):
        self.config = config
        Recorder.made.append(self)

    def setup(self):
        """Nothing to load: the test reads the config it was made with."""


@pytest.mark.parametrize("language, translate, told, task", [
    (None, False, "en", "transcribe"), (None, True, None, "translate"), ("auto", False, None, "transcribe"),
    ("fr", True, "fr", "translate"),
])
def test_load_models_tells_whisper_the_language_and_task(monkeypatch, language, translate, told, task):
    monkeypatch.setattr(common, "FasterWhisper", Recorder)
    monkeypatch.setattr(common, "HFVLM", Recorder)
    monkeypatch.setattr(common, "locate", lambda kind, name: f"/models/{name}")
    Recorder.made.clear()
    asr, _vlm = load_models(ModelChoice("org/vlm", "base", False), AssistantOptions(language=language, translate=translate))
    assert (asr.config.language, asr.config.task) == (told, task)
    assert [r.config.model for r in Recorder.made] == ["/models/base", "/models/org/vlm"]  # located first


@pytest.mark.parametrize("opts, says", [
    (AssistantOptions(wake="!!!"), "no letters"), (AssistantOptions(wake="  "), "no letters"),
    (AssistantOptions(language="zz-bogus"), "unknown language"),
])
def test_options_built_in_code_are_checked_too(opts, says):
    with pytest.raises(UsageError, match=says):
        stages(opts, asr=object(), vlm=object())


def test_good_options_pass():
    stages(AssistantOptions(wake="привет очки", language="ru"), asr=object(), vlm=object())
    stages(AssistantOptions(wake="", language="auto", translate=True), asr=object(), vlm=object())
