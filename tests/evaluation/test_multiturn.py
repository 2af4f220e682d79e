"""Multi-turn evaluation: context fitting, bad input, and the tiny model end to end on held-out
AnnoMI sessions, killed mid-generation and resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, load_recipe_module
from tests.fixtures.tiny_evaluator import make_tiny_evaluator
from tests.fixtures.tiny_miti import make_tiny_miti
from therapy_align.data.cleaning import Exchange
from therapy_align.errors import UserError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def recipe():
    return load_recipe_module(REPO_ROOT / "recipes" / "eval_multiturn.py", "eval_multiturn_test")


@pytest.mark.parametrize("override, key", [
    ("--sessions.limit=0", "--sessions.limit"),
    ("--sessions.max_turns=0", "--sessions.max_turns"),
    ("--simulation.n_turns=0", "--simulation.n_turns"),
    ("--simulation.sessions=0", "--simulation.sessions"),
    ("--context.max_tokens=10", "--context.max_tokens"),
    ("--context.opener_policy=x", "--context.opener_policy"),
])
def test_config_refuses_out_of_range_values_where_it_is_built(recipe, override, key):
    from therapy_align.overrides import ConfigError, apply_overrides

    with pytest.raises(ConfigError) as error:
        apply_overrides(recipe.TINY, [override])
    assert error.value.field == key


def test_recipe_presets_are_values_of_the_library_config(recipe):
    from therapy_align.evaluation.multiturn import MultiturnConfig, SimulationConfig

    assert recipe.PAPER == MultiturnConfig()  # the library's defaults are the paper preset's values
    assert isinstance(recipe.TINY, MultiturnConfig) and recipe.TINY.allow_quick
    assert recipe.TINY.simulation == SimulationConfig(enabled=True, client_model="tiny-base", n_turns=3, sessions=1)


def test_context_drops_whole_oldest_exchanges(tokenizer):
    from therapy_align.evaluation.multiturn import fit_context

    history = [Exchange(f"client turn number {i} " * 6, f"therapist reply number {i} " * 6) for i in range(6)]
    ids, start, cut = fit_context(tokenizer, "Be kind.", history, "the last client turn", window=200, max_new_tokens=40)
    assert len(ids) <= 160 and 0 < start < len(history) and cut == 0
    text = tokenizer.decode(ids)
    assert text.index("Be kind.") < text.index(f"client turn number {start}")  # system prompt first
    assert f"number {start - 1} " not in text and "the last client turn" in text
    more, _, _ = fit_context(tokenizer, "Be kind.", history, "the last client turn", window=200, max_new_tokens=40,
                             start=start - 1)
    assert more == ids  # whole exchanges only: no exchange fits that did not before
    # A client turn too long alone is cut from the left; the system prompt stays.
    ids, start, cut = fit_context(tokenizer, "Be kind.", [], "word " * 300, window=120, max_new_tokens=20)
    assert len(ids) <= 100 and start == 0 and cut > 0 and "Be kind." in tokenizer.decode(ids)


def test_window_smaller_than_one_exchange(tokenizer):
    from therapy_align.evaluation.multiturn import check_window

    check_window(tokenizer, "Be kind.", 200, 64)
    with pytest.raises(UserError, match="smaller than one exchange") as error:
        check_window(tokenizer, "Be kind.", 60, 48)
    assert error.value.field == "context.max_tokens"


def test_transcript_without_client_turns(tmp_path):
    from therapy_align.evaluation.multiturn import sessions_from_files

    path = tmp_path / "monologue.txt"
    path.write_text("# topic: stress\nTherapist: Hello, welcome.\nTherapist: Tell me what brings you here today.\n")
    with pytest.raises(UserError, match="no client turns") as error:
        sessions_from_files([path])
    assert str(path) in str(error.value)


def _exit_code(fn, argv) -> int:
    try:
        fn(argv)
    except SystemExit as stop:
        return stop.code
    return 0


def test_unknown_model_and_small_window(recipe, tmp_path, capsys):
    assert _exit_code(recipe.main, ["--preset", "tiny", f"--out={tmp_path}", "--models=x=/no/such/model"]) == 2
    assert "/no/such/model" in capsys.readouterr().err
    assert not (tmp_path / "generations").exists()


def test_tiny_end_to_end_resumes_after_a_kill(recipe, tmp_path, data_dir, monkeypatch):
    from therapy_align.evaluation import generation

    empeval_dir = make_tiny_evaluator(tmp_path / "empeval")
    miti_dir = make_tiny_miti(tmp_path / "miti")
    argv = ["--preset", "tiny", f"--out={tmp_path / 'run'}", f"--sessions.data_dir={data_dir}", "--sessions.limit=1",
            "--sessions.max_turns=3", "--generation.batch_size=1", "--generation.max_new_tokens=8",
            "--simulation.n_turns=2", f"--artifacts=empeval={empeval_dir},miti={miti_dir}"]
    real, calls = generation.generate_batch, []

    def killed_on_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # a kill in the middle of the generation
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "generate_batch", killed_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        recipe.main(argv)
    part = tmp_path / "run" / "generations" / "tiny-base.jsonl.part"
    assert len(part.read_text().splitlines()) == 1
    monkeypatch.setattr(generation, "generate_batch", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    calls.clear()
    paths = recipe.main(argv)
    lines = [json.loads(line) for line in (tmp_path / "run" / "generations" / "tiny-base.jsonl").read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted({line["id"] for line in lines}) and len(lines) == 3
    # 2 replay batches redone (the first was kept) + 2 therapist and 1 client turns simulated
    assert len(calls) == 2 + 3
    table = Path(paths["table_md"]).read_text()
    for text in ("human", "tiny-base", "R:Q", "%CR", "final", "mean words", "TINY MODEL"):
        assert text in table
    sessions = Path(paths["sessions"]).read_text()
    assert "sim-tiny-base" in sessions
    simulated = json.loads((tmp_path / "run" / "simulated" / "tiny-base.jsonl").read_text().splitlines()[0])
    assert len(simulated["therapists"]) == 2 and len(simulated["clients"]) == 2
    # A third run does no work.
    calls.clear()
    recipe.main(argv)
    assert calls == []
