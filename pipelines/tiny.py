"""Random-weight models in the real architectures, built offline.

There is no model hub on the machines this project is developed and tested on:
`from_pretrained("HuggingFaceTB/SmolVLM-256M-Instruct")` and `WhisperModel("base")` cannot
download anything. Rather than mock the models, this module writes local folders that the
project's real loading code opens unchanged:

- a SmolVLM (Idefics3) folder for `AutoProcessor` / `AutoModelForImageTextToText`;
- a CTranslate2 Whisper folder for `faster_whisper.WhisperModel`.

"tiny" sizes are for tests (a few MB, built in about a second). The other sizes have the real
models' dimensions and are for benchmarks: compute depends on the shapes, not on the weight
values, so random weights at the real sizes cost what the real models cost. The output is
garbage by design; each folder holds RANDOM_WEIGHTS.txt so nothing mistakes it for a real model.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

VLM_SIZES = ("tiny", "smolvlm-256m", "smolvlm-2.2b")
WHISPER_SIZES = ("tiny-random", "tiny", "base")
MARKER = "RANDOM_WEIGHTS.txt"

# SmolVLM's chat template, verbatim, so prompts have the real layout.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# Enough text for the BPE trainer to learn some merges; the vocabulary need not be good.
_CORPUS = """\
You are a helpful assistant on a pair of smart glasses. The user asks what is in front of them.
What is this? It is a red mug on a wooden table, next to a laptop and a green plant.
Read the sign for me. The sign says: Exit, second floor, 24 hours. Turn left at the door.
How much is this? The label shows 3.99 euros. The bus number 42 leaves at 10:15 from platform 7.
Who is at the door? I see a person in a blue jacket holding a parcel. Is the street safe to cross?
The light is green and no cars are coming. Describe the room: a sofa, a lamp, two chairs, a window.
"""

# Dimensions of the published checkpoints (config.json of HuggingFaceTB/SmolVLM-256M-Instruct and
# HuggingFaceTB/SmolVLM-Instruct): Llama text model, SigLIP vision tower, pixel-shuffle connector.
_VLM = {
    "tiny": dict(
        text=(64, 128, 2, 4, 2), vision=(32, 64, 1, 2, 16, 512), scale_factor=4,
        longest_edge=2048, vocab_size=None, rope_theta=100000.0, max_pos=8192, dtype=torch.float32),
    "smolvlm-256m": dict(  # SmolLM2-135M + SigLIP base patch16/512
        text=(576, 1536, 30, 9, 3), vision=(768, 3072, 12, 12, 16, 512), scale_factor=4,
        longest_edge=2048, vocab_size=49280, rope_theta=100000.0, max_pos=8192, dtype=torch.bfloat16),
    "smolvlm-2.2b": dict(  # SmolLM2-1.7B + SigLIP so400m patch14/384
        text=(2048, 8192, 24, 32, 32), vision=(1152, 4304, 27, 16, 14, 384), scale_factor=3,
        longest_edge=1536, vocab_size=49155, rope_theta=273768.0, max_pos=16384, dtype=torch.bfloat16),
}
# (d_model, layers, heads, ffn); the real tiny/base alignment heads only matter for word timestamps.
_WHISPER = {
    "tiny-random": dict(dims=(64, 1, 2, 128), alignment_heads=None),
    "tiny": dict(dims=(384, 4, 6, 1536), alignment_heads=[[2, 2], [3, 0], [3, 2], [3, 3], [3, 4], [3, 5]]),
    "base": dict(dims=(512, 6, 8, 2048),
                 alignment_heads=[[3, 1], [4, 2], [4, 3], [4, 7], [5, 1], [5, 2], [5, 4], [5, 6]]),
}
# Whisper's language tokens in id order (multilingual tiny/base: 99 languages, no "yue").
WHISPER_LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur "
    "hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si "
    "km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha "
    "ba jw su"
).split()


def is_random_weights(model_dir: str | Path) -> bool:
    return (Path(model_dir) / MARKER).is_file()


def _mark(out_dir: Path, what: str) -> None:
    (out_dir / MARKER).write_text(
        f"{what}\nThese are RANDOM WEIGHTS built offline by pipelines/tiny.py: the architecture and\n"
        "the compute cost are real, the output is meaningless. Do not ship or evaluate quality with it.\n"
    )


def _bpe(specials: list[str], fill_to: int | None = None):
    """Byte-level BPE trained on _CORPUS; `fill_to` pads the vocabulary with dummy word tokens so
    that ids the model can emit (real vocab sizes) all decode to something."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, show_progress=False, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_CORPUS], trainer)
    if fill_to:
        state = json.loads(tok.to_str())
        vocab = state["model"]["vocab"]
        i = 0
        while len(vocab) < fill_to:
            vocab.setdefault(f"\u0120w{i}", len(vocab))  # "\u0120" is byte-level BPE's space
            i += 1
        tok = Tokenizer.from_str(json.dumps(state))
    return tok


def _random_model(factory, config, dtype: torch.dtype):
    # Built on "meta" then materialised once: no double init (torch's defaults, then transformers'),
    # and the peak RAM is one copy of the weights, in the target dtype.
    with torch.device("meta"):
        model = factory(config, dtype=dtype)
    model.to_empty(device="cpu")
    model.initialize_weights()  # transformers' own init, which also fills rotary/sinusoid tables
    model.tie_weights()
    return model.eval()


def build_vlm(out_dir: Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a SmolVLM-shaped (Idefics3) model, processor and tokenizer to out_dir (created if
    needed) and return it. Real sizes are saved in bfloat16, as the published checkpoints are."""
    from tokenizers import AddedToken
    from transformers import (AutoModelForImageTextToText, GenerationConfig, Idefics3Config,
                              Idefics3ImageProcessorPil, Idefics3Processor, PreTrainedTokenizerFast)

    if size not in _VLM:
        raise ValueError(f"unknown VLM size {size!r}; choose from {VLM_SIZES}")
    spec = _VLM[size]
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    image_tokens = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
    image_tokens += [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    fill_to = spec["vocab_size"] - len(image_tokens) if spec["vocab_size"] else None
    tok = _bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], fill_to)  # ids 0, 1, 2 as in SmolLM2
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in image_tokens])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<end_of_utterance>",
        pad_token="<|im_end|>", unk_token="<|endoftext|>", padding_side="left",  # left: batched generate
        model_max_length=spec["max_pos"], chat_template=CHAT_TEMPLATE)
    ids = {t: tok.token_to_id(t) for t in ("<image>", "<end_of_utterance>", "<|im_start|>", "<|im_end|>")}

    hidden, inter, layers, heads, kv = spec["text"]
    v_hidden, v_inter, v_layers, v_heads, patch, tile = spec["vision"]
    config = Idefics3Config(
        text_config=dict(
            model_type="llama", vocab_size=len(tok.get_vocab()), hidden_size=hidden,
            intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=kv, head_dim=hidden // heads, max_position_embeddings=spec["max_pos"],
            rms_norm_eps=1e-5, rope_theta=spec["rope_theta"], tie_word_embeddings=False,
            bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<end_of_utterance>"],
            pad_token_id=ids["<|im_end|>"]),
        vision_config=dict(hidden_size=v_hidden, intermediate_size=v_inter, num_hidden_layers=v_layers,
                           num_attention_heads=v_heads, patch_size=patch, image_size=tile),
        scale_factor=spec["scale_factor"], image_token_id=ids["<image>"], tie_word_embeddings=False,
        pad_token_id=ids["<|im_end|>"])
    model = _random_model(AutoModelForImageTextToText.from_config, config, spec["dtype"])
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<end_of_utterance>"],
        pad_token_id=ids["<|im_end|>"])
    model.save_pretrained(out_dir)
    del model

    image_processor = Idefics3ImageProcessorPil(  # the PIL one: torchvision is not available here
        size={"longest_edge": spec["longest_edge"]}, max_image_size={"longest_edge": tile},
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    # Tokens per tile after the pixel shuffle: (512/16)^2 / 4^2 = 64 for 256M, (384//14)^2 / 3^2 = 81 for 2.2B.
    image_seq_len = (tile // patch) ** 2 // spec["scale_factor"] ** 2
    Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=image_seq_len,
                      chat_template=CHAT_TEMPLATE).save_pretrained(out_dir)
    _mark(out_dir, f"SmolVLM-shaped Idefics3, size {size!r}, seed {seed}.")
    return out_dir


def _whisper_tokenizer():
    """Whisper's multilingual id layout: text tokens 0..50255, "" at 50256, <|endoftext|> 50257,
    <|startoftranscript|> 50258, 99 languages, task/control tokens, <|notimestamps|> 50363, then
    <|0.00|> .. <|30.00|>: 51865 tokens, every id present (ctranslate2 lists the vocabulary by id,
    so a gap would shift every later id)."""
    from tokenizers import AddedToken

    tok = _bpe([], fill_to=50256)
    state = json.loads(tok.to_str())
    # ctranslate2 decides "multilingual" from this empty-string entry, as in the real vocabulary.
    state["model"]["vocab"][""] = 50256
    tok = type(tok).from_str(json.dumps(state))
    specials = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{c}|>" for c in WHISPER_LANGUAGES),
                "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                "<|notimestamps|>", *(f"<|{i * 0.02:.2f}|>" for i in range(1501))]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    assert tok.get_vocab_size() == 51865 and tok.token_to_id("<|notimestamps|>") == 50363
    return tok


def build_whisper(out_dir: Path, size: str = "tiny-random", seed: int = 0) -> Path:
    """Write a CTranslate2 int8 Whisper model for faster-whisper to out_dir (created if needed)
    and return it."""
    import ctranslate2
    from transformers import (AutoModelForSpeechSeq2Seq, PreTrainedTokenizerFast, WhisperConfig,
                              WhisperFeatureExtractor)

    if size not in _WHISPER:
        raise ValueError(f"unknown Whisper size {size!r}; choose from {WHISPER_SIZES}")
    spec = _WHISPER[size]
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    tok = _whisper_tokenizer()
    eot, sot = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|startoftranscript|>")
    d_model, layers, heads, ffn = spec["dims"]
    config = WhisperConfig(
        vocab_size=51865, num_mel_bins=80, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn, max_source_positions=1500, max_target_positions=448,
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, decoder_start_token_id=sot,
        suppress_tokens=[], begin_suppress_tokens=[tok.token_to_id("\u0120"), eot])
    model = _random_model(AutoModelForSpeechSeq2Seq.from_config, config, torch.float32)

    with tempfile.TemporaryDirectory(prefix="whisper-hf-") as tmp:
        hf_dir, ct2_dir = Path(tmp) / "hf", Path(tmp) / "ct2"
        model.save_pretrained(hf_dir)
        del model
        PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<|endoftext|>", bos_token="<|endoftext|>",
                                eos_token="<|endoftext|>", pad_token="<|endoftext|>").save_pretrained(hf_dir)
        WhisperFeatureExtractor(feature_size=80).save_pretrained(hf_dir)
        ctranslate2.converters.TransformersConverter(
            str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"]
        ).convert(str(ct2_dir), quantization="int8", force=True)
        # transformers 5 no longer keeps lang_to_id/alignment_heads in the generation config, so the
        # converter writes lang_ids: [] and language detection would fail; restore them.
        cfg_path = ct2_dir / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["lang_ids"] = [tok.token_to_id(f"<|{c}|>") for c in WHISPER_LANGUAGES]
        if spec["alignment_heads"]:
            cfg["alignment_heads"] = spec["alignment_heads"]
        cfg_path.write_text(json.dumps(cfg, indent=2))
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in ct2_dir.iterdir():
            shutil.move(str(f), out_dir / f.name)
    _mark(out_dir, f"Whisper-shaped CTranslate2 int8 model, size {size!r}, seed {seed}.")
    return out_dir


def _default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def _ensure(final: Path, build) -> Path:
    if is_random_weights(final):
        return final
    # Build beside the target and rename: a crash leaves only a ".tmp-" folder, never a half model.
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would otherwise become the cached folder's mode
    try:
        build(tmp)
        if final.exists() and not is_random_weights(final):
            shutil.rmtree(final)  # not ours or unfinished: rebuild over it
        try:
            os.replace(tmp, final)
        except OSError:
            if not is_random_weights(final):  # lost a race to another builder: keep theirs
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def ensure_tiny_models(cache_dir: Path | None = None) -> tuple[Path, Path]:
    """(vlm_dir, whisper_dir) for the "tiny"/"tiny-random" sizes, built once under
    <cache_dir or $XDG_CACHE_HOME or ~/.cache>/glasses-assistant/tiny-random-v1/."""
    # Bump the version part whenever the tiny recipe changes, so stale caches are not reused.
    root = Path(cache_dir or _default_cache()) / "glasses-assistant" / "tiny-random-v1"
    root.mkdir(parents=True, exist_ok=True)
    return (_ensure(root / "vlm", lambda d: build_vlm(d, "tiny")),
            _ensure(root / "whisper", lambda d: build_whisper(d, "tiny-random")))
