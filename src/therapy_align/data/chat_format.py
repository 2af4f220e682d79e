"""Chat formats: the tokenizer a dataset is built for, its chat template, and rendering to (ids, mask).

Each model family speaks its own turn format, kept as a Jinja chat template under ``templates/``
with ``{% generation %}`` markers around what the assistant is trained to say. Llama-2 (paper §4:
``<s>[INST] <<SYS>> {system} <</SYS>> {prompt} [/INST] {answer} </s>``, whitespace as in Meta's
reference ``chat_completion``) uses ``llama2_chat.jinja``; any other tokenizer brings its own
template (a prepared Gemma directory ships ``gemma3_chat.jinja``). Rendering goes through the
template, and the supervised character spans are the ones its ``{% generation %}`` blocks cover,
so TRL's ``assistant_only_loss`` and our own masking agree for every family.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers loads in the functions: recipes import their configs cheaply
    from transformers import PreTrainedTokenizerBase

from therapy_align.paths import resolve_tokenizer
from therapy_align.data.masking import labels_from_mask, token_mask_from_char_spans

Message = dict[str, str]

LLAMA2_TEMPLATE = "llama2_chat.jinja"
GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")
LLAMA_TOKENIZER_CLASSES = ("LlamaTokenizer", "LlamaTokenizerFast")
FIX_TOKENIZER = ("give the Llama-2 tokenizer (../shared/tokenizers/llama-2) or a prepared model directory "
                 "(therapy-align model prepare gemma-3-270m)")


@lru_cache(maxsize=4)
def chat_template(name: str = LLAMA2_TEMPLATE) -> str:
    """A chat template shipped under ``therapy_align/data/templates`` (Llama-2's by default)."""
    return resources.files("therapy_align.data").joinpath(f"templates/{name}").read_text()


def is_llama2_tokenizer(source: str) -> bool:
    """Whether ``source`` holds a Llama tokenizer, by what the tokenizer says of itself: its
    ``tokenizer_config.json`` names a Llama tokenizer class, or there is none (Meta's release of a
    bare ``tokenizer.model``, as in ../shared). Every other class keeps its own vocabulary and template."""
    from transformers.models.auto.tokenization_auto import get_tokenizer_config

    declared = get_tokenizer_config(source).get("tokenizer_class")
    return declared is None or declared in LLAMA_TOKENIZER_CLASSES


def load_tokenizer(path: str | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer at ``path`` (default: the Llama-2 one) with its chat template and a pad token.

    A Llama tokenizer is loaded as Meta encodes Llama-2-chat: ``legacy=True`` keeps SentencePiece's
    dummy prefix after special tokens (``<s>▁[INST]``; transformers 5 otherwise gives ``<s>[INST]``),
    the template is the project's ``llama2_chat.jinja``, and padding uses ``<unk>`` (id 0): Llama-2
    has no pad token, and padding with ``</s>`` would make collators that mask pad ids also mask the
    supervised end-of-reply token. Any other tokenizer loads with ``AutoTokenizer`` and keeps its
    own ids, chat template and pad token (``<unk>`` where it has none). Both pad on the right.
    """
    from transformers import AutoTokenizer, LlamaTokenizer

    from therapy_align.errors import UserError

    source = resolve_tokenizer(path)
    llama = is_llama2_tokenizer(source)
    if llama:
        try:
            tokenizer = LlamaTokenizer.from_pretrained(source, legacy=True)
        except (OSError, ValueError, TypeError):
            tokenizer = AutoTokenizer.from_pretrained(source)
    else:
        tokenizer = AutoTokenizer.from_pretrained(source)
        if not tokenizer.chat_template:
            raise UserError(f"not a usable chat tokenizer: {type(tokenizer).__name__} ({len(tokenizer)} tokens) has no "
                            "chat template, so conversations cannot be rendered in its model's turn format",
                            file=source, field="tokenizer", fix=FIX_TOKENIZER)
    probe_text = "Hello, how are you?"
    probe = tokenizer(probe_text, add_special_tokens=False)["input_ids"]
    back = tokenizer.decode(probe, skip_special_tokens=True).strip() if probe else ""
    if not probe or all(token == tokenizer.unk_token_id for token in probe) or back != probe_text:
        # transformers builds an empty tokenizer for a missing repo or files (every text -> [] or
        # <unk>), and a Llama tokenizer over another model's vocabulary spells text letter by letter.
        raise UserError(f"not a usable chat tokenizer ({len(tokenizer)} tokens; {probe_text!r} reads back as "
                        f"{back[:40]!r}): files missing, a hub id that does not exist, or a broken vocabulary",
                        file=source, field="tokenizer", fix=FIX_TOKENIZER)
    if llama:
        tokenizer.chat_template = chat_template()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token
    tokenizer.padding_side = "right"
    return tokenizer


def render_with_template(messages: list[Message], template: str, **special_tokens: str) -> tuple[str, list[tuple[int, int]]]:
    """The conversation rendered by the Jinja ``template``, and the character spans its
    ``{% generation %}`` blocks cover (what the assistant is trained to produce). Needs no
    tokenizer: ``special_tokens`` are the names the template reads (``bos_token``, ``eos_token``)."""
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, spans = render_jinja_template(conversations=[messages], chat_template=template,
                                            return_assistant_tokens_mask=True, **special_tokens)
    return rendered[0], [(start, end) for start, end in spans[0] if end > start]


def render_text(messages: list[Message], tokenizer: PreTrainedTokenizerBase) -> tuple[str, list[tuple[int, int]]]:
    """The conversation in ``tokenizer``'s chat template, and the character spans the assistant is
    trained to produce (for Llama-2, ``" {reply} </s>"``: the reply and its closing end of sequence)."""
    return render_with_template(messages, tokenizer.chat_template, **tokenizer.special_tokens_map)


def render_continuation(context: list[Message], messages: list[Message],
                        tokenizer: PreTrainedTokenizerBase) -> tuple[str, list[tuple[int, int]]]:
    """What ``messages`` add to a conversation that already holds ``context``: the text the
    template renders after ``context``'s own rendering, and its supervised spans (relative to it).

    Templates that render a conversation's first turns as a prefix of the whole (Llama-2's and
    Gemma's do) make this the turns' text in any conversation that has them later on.
    """
    head, _ = render_text(context, tokenizer)
    whole, spans = render_text(context + messages, tokenizer)
    if not whole.startswith(head):
        raise ValueError("the chat template renders a conversation's first turns differently once more turns follow; "
                         "a conversation cannot be split between turns")
    return whole[len(head):], [(start - len(head), end - len(head)) for start, end in spans if start >= len(head)]


def has_generation_markers(template: str | None) -> bool:
    return bool(template) and GENERATION_MARKER.search(template) is not None


def render_conversation(messages: list[Message], tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """Token ids and a 0/1 mask of the supervised (assistant) tokens, nanochat-style."""
    text, spans = render_text(messages, tokenizer)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = token_mask_from_char_spans(encoding["offset_mapping"], spans)
    return list(encoding["input_ids"]), mask


def tokenize_conversation(messages: list[Message], tokenizer: PreTrainedTokenizerBase) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (-100 outside assistant replies), the columns SFTTrainer uses."""
    ids, mask = render_conversation(messages, tokenizer)
    return {"input_ids": ids, "labels": labels_from_mask(ids, mask)}


def prompt_messages(system_prompt: str | None, client_text: str) -> list[Message]:
    """A single-turn prompt for generation: the model's reply follows the client's turn."""
    messages: list[Message] = [] if system_prompt is None else [{"role": "system", "content": system_prompt}]
    return messages + [{"role": "user", "content": client_text}]


def token_pieces(ids: list[int], tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Each token's own text (SentencePiece ``▁`` as a space, byte tokens as their character), so
    that pieces joined give the rendered text back, spaces included."""
    pieces = []
    for token in tokenizer.convert_ids_to_tokens(ids):
        if token.startswith("<0x") and token.endswith(">") and len(token) == 6:
            pieces.append(chr(int(token[3:5], 16)))
        else:
            pieces.append(token.replace("\u2581", " "))
    return pieces


def show_supervised(ids: list[int], labels: list[int], tokenizer: PreTrainedTokenizerBase) -> list[tuple[str, bool]]:
    """The chunk as (text, supervised) runs, for printers that mark what the loss sees."""
    runs: list[tuple[str, bool]] = []
    for piece, label in zip(token_pieces(ids, tokenizer), labels, strict=True):
        supervised = label != -100
        if runs and runs[-1][1] == supervised:
            runs[-1] = (runs[-1][0] + piece, supervised)
        else:
            runs.append((piece, supervised))
    return runs
