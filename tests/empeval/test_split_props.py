"""The seeded split by seeker post: disjoint by sp_id, covering, deterministic."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empeval.epitome_data import SPLITS, split_by_seeker

pytestmark = pytest.mark.property

sp_id_lists = st.lists(st.sampled_from([f"sp{i}" for i in range(60)]), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(sp_ids=sp_id_lists, seed=st.integers(0, 2**32 - 1))
def test_split_is_disjoint_by_seeker_and_covers_all_rows(sp_ids, seed):
    split = split_by_seeker(sp_ids, seed)
    rows = sorted(i for s in SPLITS for i in split[s].tolist())
    assert rows == list(range(len(sp_ids)))  # every row exactly once
    seekers = {s: {sp_ids[i] for i in split[s]} for s in SPLITS}
    assert not seekers["train"] & seekers["dev"]
    assert not seekers["train"] & seekers["test"]
    assert not seekers["dev"] & seekers["test"]


@settings(max_examples=100, deadline=None)
@given(sp_ids=sp_id_lists, seed=st.integers(0, 2**32 - 1))
def test_split_is_deterministic_by_seed_and_independent_of_row_order(sp_ids, seed):
    first, again = split_by_seeker(sp_ids, seed), split_by_seeker(list(sp_ids), seed)
    assert all(first[s].tolist() == again[s].tolist() for s in SPLITS)
    reversed_ids = sp_ids[::-1]
    by_seeker = {s: {sp_ids[i] for i in first[s]} for s in SPLITS}
    reversed_split = split_by_seeker(reversed_ids, seed)
    assert {s: {reversed_ids[i] for i in reversed_split[s]} for s in SPLITS} == by_seeker


@settings(max_examples=50, deadline=None)
@given(n_seekers=st.integers(20, 400), seed=st.integers(0, 2**16))
def test_split_follows_75_5_20_by_seeker(n_seekers, seed):
    sp_ids = [f"sp{i}" for i in range(n_seekers)]
    split = split_by_seeker(sp_ids, seed)
    assert abs(len(split["train"]) - 0.75 * n_seekers) <= 1
    assert abs(len(split["dev"]) - 0.05 * n_seekers) <= 1


@given(st.lists(st.text(alphabet="abc xyz'", max_size=60), min_size=1, max_size=6),
       st.lists(st.text(alphabet="abc xyz'", max_size=60), min_size=1, max_size=6))
def test_copied_fraction_is_a_share_and_a_post_copies_itself(posts, replies):
    from empeval.fit import copied_fraction

    n = min(len(posts), len(replies))
    shares = copied_fraction(posts[:n], replies[:n])
    assert ((shares >= 0) & (shares <= 1)).all()
    itself = copied_fraction(posts, posts)
    assert all(s in (0.0, 1.0) for s in itself)  # 1 whenever the post has a trigram at all


@given(st.lists(st.from_regex(r"[A-Za-z][a-z ,']{0,20}[a-z][.!?]", fullmatch=True), max_size=8),
       st.integers(min_value=1, max_value=4))
def test_sentence_runs_count_and_contain_every_sentence(sentences, longest):
    from empeval.evaluator import sentence_runs

    runs = sentence_runs(" ".join(sentences), longest)
    n = len(sentences)
    assert len(runs) == sum(max(0, n - k + 1) for k in range(1, longest + 1))
    assert runs[:n] == sentences  # single sentences first, in order
    assert all(run in " ".join(sentences) for run in runs)
