"""Merging an SFT adapter for fast generation: only into an unquantized base, refused up front."""

from __future__ import annotations

import pytest

from therapy_align.training.models import load_model_for_inference


@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_merging_into_a_quantized_base_is_refused_before_anything_loads(quantization):
    with pytest.raises(ValueError, match="unquantized"):
        load_model_for_inference("tiny-base", quantization=quantization, merge=True)
