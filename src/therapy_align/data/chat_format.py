"""The Llama-2 chat format, as a tokenizer chat template and as a renderer to (ids, mask).

Paper §4 gives the structure ``<s>[INST] <<SYS>> {system} <</SYS>> {prompt} [/INST] {answer} </s>``;
the exact whitespace follows Meta's reference ``chat_completion``. The template file carries
``{% generation %}`` markers so TRL's ``assistant_only_loss`` and our own masking agree.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers loads in the functions: recipes import their configs cheaply
    from transformers import PreTrainedTokenizerBase

from therapy_align.paths import resolve_tokenizer
from therapy_align.data.masking import labels_from_mask, token_mask_from_char_spans

Message = dict[str, str]


@lru_cache(maxsize=1)
def chat_template() -> str:
    return resources.files("therapy_align.data").joinpath("templates/llama2_chat.jinja").read_text()


def load_tokenizer(path: str | None = None) -> PreTrainedTokenizerBase:
    """The Llama-2 tokenizer with the project's chat template and a pad token.

    ``legacy=True`` keeps SentencePiece's dummy prefix after special tokens (``<s>▁[INST]``), the
    token stream Meta trained Llama-2-chat on; transformers 5 otherwise gives ``<s>[INST]``.
    Padding uses ``<unk>`` (id 0): Llama-2 has no pad token, and padding with ``</s>`` would make
    collators that mask pad ids also mask the supervised end-of-reply token.
    """
    from transformers import AutoTokenizer, LlamaTokenizer

    source = resolve_tokenizer(path)
    try:
        tokenizer = LlamaTokenizer.from_pretrained(source, legacy=True)
    except (OSError, ValueError, TypeError):
        tokenizer = AutoTokenizer.from_pretrained(source)
    probe_text = "Hello, how are you?"
    probe = tokenizer(probe_text, add_special_tokens=False)["input_ids"]
    back = tokenizer.decode(probe, skip_special_tokens=True).strip() if probe else ""
    if not probe or all(token == tokenizer.unk_token_id for token in probe) or back != probe_text:
        # transformers builds an empty tokenizer for a missing repo or files (every text -> [] or
        # <unk>), and LlamaTokenizer over another model's vocabulary spells text letter by letter.
        from therapy_align.errors import UserError

        raise UserError(f"not a usable Llama-2 tokenizer ({len(tokenizer)} tokens; {probe_text!r} reads back as "
                        f"{back[:40]!r}): files missing, a hub id that does not exist, or another model's tokenizer",
                        file=source, field="tokenizer", fix="give the Llama-2 tokenizer (../shared/tokenizers/llama-2)")
    tokenizer.chat_template = chat_template()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token
    tokenizer.padding_side = "right"
    return tokenizer


def render_text(messages: list[Message], bos: str = "<s>", eos: str = "</s>") -> tuple[str, list[tuple[int, int]]]:
    """The conversation as text, and the character spans the assistant is trained to produce.

    Each assistant span is ``" {reply} </s>"``: the reply and its closing end-of-sequence token.
    """
    if messages and messages[0]["role"] == "system":
        system, turns = messages[0]["content"], messages[1:]
    else:
        system, turns = None, messages
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    length = 0
    for index, message in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise ValueError(f"message {index} has role {message['role']!r}, expected {expected!r}")
        if expected == "user":
            header = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if index == 0 and system is not None else ""
            piece = f"{bos}[INST] {header}{message['content']} [/INST]"
        else:
            piece = f" {message['content']} {eos}"
            spans.append((length, length + len(piece)))
        parts.append(piece)
        length += len(piece)
    return "".join(parts), spans


def render_conversation(messages: list[Message], tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """Token ids and a 0/1 mask of the supervised (assistant) tokens, nanochat-style."""
    text, spans = render_text(messages, tokenizer.bos_token, tokenizer.eos_token)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = token_mask_from_char_spans(encoding["offset_mapping"], spans)
    return list(encoding["input_ids"]), mask


def tokenize_conversation(messages: list[Message], tokenizer: PreTrainedTokenizerBase) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (-100 outside assistant replies), the columns SFTTrainer uses."""
    ids, mask = render_conversation(messages, tokenizer)
    return {"input_ids": ids, "labels": labels_from_mask(ids, mask)}


def prompt_messages(system_prompt: str | None, client_text: str) -> list[Message]:
    """A single-turn prompt for generation: the model continues after ``[/INST]``."""
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
