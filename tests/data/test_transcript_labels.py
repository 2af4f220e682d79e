"""The speaker-label grammar of plain-text sessions (docs/sft.md, "Transcript format"): every
accepted way of writing a label gives the same turns, and everything shaped like a label that is
not one is refused naming its line, never merged into the previous speaker's utterance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_align.data.transcripts import CLIENT, THERAPIST, TranscriptFormatError, parse_plain_transcript

ROLE_WORDS = {
    THERAPIST: ["Therapist", "therapist", "THERAPIST", "T", "t", "Counsellor", "counselor", "Clinician", "Terapeuta",
                "Thérapeute", "Therapeut", "Therapeutin", "Psicóloga", "Therapist 1", "Therapist (Dr Lee)"],
    CLIENT: ["Client", "client", "CLIENT", "C", "c", "Patient", "Pt", "Paciente", "Cliente", "Klientin", "Patiente",
             "Client 2", "Client (Anna)"],
}
EMPHASIS = ["{label}:", "**{label}:**", "**{label}**:", "*{label}*:", "*{label}:*", "__{label}__:", "_{label}_:",
            "{label} :"]
COLONS = [":", "\uff1a"]
TIMESTAMPS = ["", "[00:01:23] ", "[1:02] ", "(12:03 PM) ", "00:01 ", "00:01:23 - ", "12:03 PM - ", "9:05 am | ",
              "01:02:03.250 \u2013 "]
TEXT = st.text(alphabet=st.sampled_from(list("abcdefghij KLMNOP,.?!'*0123456789")), min_size=1, max_size=40).map(
    str.strip).filter(bool)


def turns(text: str, **kwargs) -> list[tuple[str, str]]:
    return [(t.speaker, t.text) for t in parse_plain_transcript(text, **kwargs).turns]


@st.composite
def labelled_sessions(draw):
    """(session text, the turns it must give): both roles, every line labelled some accepted way."""
    roles = draw(st.lists(st.sampled_from([THERAPIST, CLIENT]), min_size=2, max_size=8).filter(
        lambda r: THERAPIST in r and CLIENT in r))
    lines, expected = [], []
    for role in roles:
        text = draw(TEXT)
        label = draw(st.sampled_from(EMPHASIS)).format(label=draw(st.sampled_from(ROLE_WORDS[role])))
        label = label.replace(":", draw(st.sampled_from(COLONS)))
        lines.append(f"{draw(st.sampled_from(TIMESTAMPS))}{label} {text}")
        expected.append((role, text))
    return "\n".join(lines) + "\n", expected


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(labelled_sessions())
def test_every_accepted_label_form_gives_the_same_turns(session):
    text, expected = session
    assert turns(text) == expected


@pytest.mark.property
@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([1, 2]), min_size=2, max_size=8).filter(lambda r: 1 in r and 2 in r),
       st.sampled_from(["Speaker", "Person", "Participant", "speaker"]), st.booleans(), TEXT)
def test_declared_numbered_speakers_map_to_their_declared_roles(order, word, first_is_therapist, text):
    roles = {1: THERAPIST, 2: CLIENT} if first_is_therapist else {1: CLIENT, 2: THERAPIST}
    headers = "".join(f"# {roles[n]}: {word} {n}\n" for n in (1, 2))
    body = "".join(f"{word} {n}: {text}\n" for n in order)
    assert turns(headers + body) == [(roles[n], text) for n in order]


def test_named_speakers_are_declared_in_headers():
    session = "# therapist: Dr. Lee, Sam\n# client: Anna\nDr. Lee: Hello.\n**Anna:** Hi.\nSam: Welcome.\nanna: Thanks.\n"
    assert turns(session) == [(THERAPIST, "Hello."), (CLIENT, "Hi."), (THERAPIST, "Welcome."), (CLIENT, "Thanks.")]


def test_other_scripts_and_the_full_width_colon():
    assert turns("治疗师：你好。\n来访者：我睡不好。\n") == [(THERAPIST, "你好。"), (CLIENT, "我睡不好。")]


def test_emphasis_in_the_text_stays_and_times_in_the_text_are_text():
    session = "T: *nods* Go on.\nC: It was at 10:30\n10:30 is when it happened.\n[00:00:05]\nT: I see.\n"
    assert turns(session) == [(THERAPIST, "*nods* Go on."), (CLIENT, "It was at 10:30 10:30 is when it happened."),
                              (THERAPIST, "I see.")]


@pytest.mark.parametrize("line", [
    "Speaker 1: I have been sad.", "**Speaker 2:** I have been sad.", "[00:01:02] Person 1: I have been sad.",
])
def test_undeclared_numbered_speakers_are_refused_with_how_to_declare_them(line):
    with pytest.raises(TranscriptFormatError, match=r"s.txt:2: speaker: .*does not say who is the therapist.*# therapist:"):
        parse_plain_transcript(f"T: Hello.\n{line}\n", name="s.txt")


@pytest.mark.parametrize("line", [
    "Anna: I have been sad.", "**Doctor:** I have been sad.", "*Doktor*: I have been sad.", "Médico： I have been sad.",
    "[00:01:23] Anna: I have been sad.", "12:03 PM - Mum: I have been sad.", "Dr. Lee: I have been sad.",
    "Clinet: I have been sad.", "Klient in: I have been sad.",
])
def test_a_label_that_is_not_recognised_is_refused_naming_its_line(line):
    with pytest.raises(TranscriptFormatError, match=r"s.txt:3: speaker: .*looks like a speaker label but is not one"):
        parse_plain_transcript(f"T: Hello.\nC: Hi.\n{line}\n", name="s.txt")


def test_indented_label_like_lines_urls_and_long_phrases_continue():
    session = "T: Hello.\nC: Hi.\n  Note: she cried.\nhttp://example.org is the page\nBut the real thing is: sleep\n"
    assert turns(session)[-1] == (CLIENT, "Hi. Note: she cried. http://example.org is the page But the real thing is: sleep")


@pytest.mark.parametrize("text, pattern", [
    ("T: Hello there.\nT: Anyone?\n", r"s.txt: session 's' has no client turns \(2 therapist\)"),
    ("# id: x\nC: Hello?\n", r"s.txt: session 'x' has no therapist turns \(1 client\)"),
    ("# id: a\n# topic: grief\n# id: b\nT: Hi.\nC: Hi.\n", r"s.txt:3: id: '# id:' given twice \(lines 1 and 3\)"),
    ("# id:\nT: Hi.\nC: Hi.\n", r"s.txt:1: id: '# id:' is empty"),
    ("# id:   \nT: Hi.\nC: Hi.\n", r"s.txt:1: id: '# id:' is empty"),
    ("T: Hi.\nC: Hi.\n# id: second\nT: Next.\nC: Ok.\n", r"s.txt:3: id: '# id:' after the first utterance"),
    ("# therapist: Speaker 1\n# client: speaker 1\nSpeaker 1: Hi.\n", r"s.txt:2: client: 'speaker 1' is declared both"),
    ("# client:\nT: Hi.\nC: Hi.\n", r"s.txt:1: client: '# client:' names no speaker"),
])
def test_session_level_refusals_name_the_file_and_line(text, pattern):
    with pytest.raises(TranscriptFormatError, match=pattern):
        parse_plain_transcript(text, name="s.txt")


def test_the_refusal_is_a_user_error_on_one_line():
    from therapy_align.errors import UserError

    with pytest.raises(UserError) as error:
        parse_plain_transcript("T: Hi.\nSpeaker 2: Hello.\n", name="s.txt")
    assert "\n" not in str(error.value) and error.value.line == 2 and error.value.field == "speaker"


def test_declarations_may_be_written_as_the_label_is_and_bracketed_names_do_not_count_as_words():
    session = "# therapist: **Speaker 1:**\n# client: Speaker 2\nSpeaker 1: a\nTherapist (Dr Ann Lee Smith): b\nSpeaker 2: c\n"
    assert turns(session) == [(THERAPIST, "a"), (THERAPIST, "b"), (CLIENT, "c")]
