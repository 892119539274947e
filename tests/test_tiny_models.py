"""The offline random-weight models load through the real loading code and run.

Nothing here downloads: every model is built into a temporary folder by pipelines.tiny.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.tiny import (WHISPER_LANGUAGES, build_vlm, build_whisper, ensure_tiny_models,
                            is_random_weights)

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model_dir = build_vlm(tmp_path_factory.mktemp("vlm"), "tiny")
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    return model_dir, processor, model


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    from faster_whisper import WhisperModel

    model_dir = build_whisper(tmp_path_factory.mktemp("whisper"), "tiny-random")
    return model_dir, WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2)


def _frame(seed: int, h: int = 480, w: int = 640) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _prompt(processor, question: str, image: bool = True) -> str:
    content = ([{"type": "image"}] if image else []) + [{"type": "text", "text": question}]
    messages = [{"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
                {"role": "user", "content": content}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def _new_tokens(model, inputs, row: int = 0) -> list[int]:
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    return out[row, inputs["input_ids"].shape[1]:].tolist()


def test_vlm_folder_is_marked_and_prompt_has_smolvlm_layout(vlm):
    model_dir, processor, _ = vlm
    assert is_random_weights(model_dir)
    assert _prompt(processor, "what is this?") == (
        "<|im_start|>System: Answer briefly.<end_of_utterance>\n"
        "User:<image>what is this?<end_of_utterance>\nAssistant:")
    assert processor.image_seq_len == 64 and processor.tokenizer.padding_side == "left"


@pytest.mark.parametrize("split", [True, False])
def test_vlm_generates_from_numpy_frame(vlm, split):
    _, processor, model = vlm
    inputs = processor(text=[_prompt(processor, "what is this?")], images=[[Image.fromarray(_frame(0))]],
                       return_tensors="pt", do_image_splitting=split)
    # 640x480 splits into 4x3 tiles of 512 px plus the global image, each 64 image tokens.
    n_tiles = 13 if split else 1
    assert inputs["pixel_values"].shape[:2] == (1, n_tiles)
    assert (inputs["input_ids"] == model.config.image_token_id).sum() == 64 * n_tiles
    new = _new_tokens(model, inputs)
    assert 1 <= len(new) <= 8
    assert isinstance(processor.decode(new, skip_special_tokens=True), str)


def test_vlm_text_only(vlm):
    _, processor, model = vlm
    inputs = processor(text=[_prompt(processor, "hello?", image=False)], images=None, return_tensors="pt")
    assert "pixel_values" not in inputs
    assert 1 <= len(_new_tokens(model, inputs)) <= 8


@pytest.mark.parametrize("split", [False, True])
def test_vlm_left_padded_batch_matches_single_prompts(vlm, split):
    _, processor, model = vlm
    prompts = [_prompt(processor, "what is this?"),
               _prompt(processor, "read the sign on the wall and tell me where the exit is, please")]
    # With splitting, 640x480 gives 13 tiles and 300x300 gives 17: the batch pads with empty images.
    images = [[Image.fromarray(_frame(1))], [Image.fromarray(_frame(2, 300, 300))]]
    kwargs = dict(return_tensors="pt", do_image_splitting=split)
    batch = processor(text=prompts, images=images, padding=True, **kwargs)
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][0, -1] == 1  # left padding
    for row, (prompt, image) in enumerate(zip(prompts, images)):
        alone = _new_tokens(model, processor(text=[prompt], images=[image], **kwargs))
        assert _new_tokens(model, batch, row)[:len(alone)] == alone


def test_vlm_build_is_reproducible(vlm, tmp_path):
    model_dir, _, _ = vlm
    again = build_vlm(tmp_path / "again", "tiny", seed=0)
    assert (again / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()


def test_whisper_vocabulary_has_the_real_layout(whisper):
    import json

    from faster_whisper.tokenizer import _LANGUAGE_CODES

    model_dir, model = whisper
    assert is_random_weights(model_dir)
    assert model.model.is_multilingual
    assert set(WHISPER_LANGUAGES) == set(_LANGUAGE_CODES) - {"yue"}
    vocab = json.loads((model_dir / "vocabulary.json").read_text())
    assert len(vocab) == 51865
    assert (vocab[50257], vocab[50258], vocab[50259], vocab[50363], vocab[50364], vocab[-1]) == (
        "<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|notimestamps|>", "<|0.00|>", "<|30.00|>")
    config = json.loads((model_dir / "config.json").read_text())
    assert config["lang_ids"] == list(range(50259, 50358))


@pytest.mark.parametrize("language", ["en", None])
def test_whisper_transcribes_noise(whisper, language):
    _, model = whisper
    audio = np.random.default_rng(0).normal(0, 0.01, 16000).astype(np.float32)
    segments, info = model.transcribe(audio, language=language, beam_size=1, temperature=0,
                                      without_timestamps=True, max_new_tokens=8,
                                      condition_on_previous_text=False)
    segments = list(segments)  # decoding is lazy
    assert segments and all(isinstance(s.text, str) for s in segments)
    assert info.language == "en" if language else info.language in WHISPER_LANGUAGES


def test_ensure_tiny_models_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    vlm_dir, whisper_dir = ensure_tiny_models()
    root = tmp_path / "glasses-assistant" / "tiny-random-v1"
    assert (vlm_dir, whisper_dir) == (root / "vlm", root / "whisper")
    assert is_random_weights(vlm_dir) and is_random_weights(whisper_dir)
    assert sorted(p.name for p in root.iterdir()) == ["vlm", "whisper"]  # no temp folders left

    start = time.perf_counter()
    assert ensure_tiny_models(tmp_path) == (vlm_dir, whisper_dir)
    assert time.perf_counter() - start < 0.5
    assert not is_random_weights(tmp_path)
