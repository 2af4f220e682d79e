import pytest

from therapy_align.paths import DataNotFoundError
from therapy_align.data.transcripts import (
    TranscriptFormatError,
    load_annomi,
    load_plain_transcript,
    parse_plain_transcript,
)

HEADER = "transcript_id,mi_quality,topic,utterance_id,interlocutor,utterance_text\n"


def write(tmp_path, text: str | bytes):
    path = tmp_path / "annomi.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataNotFoundError, match="nope.csv"):
        load_annomi(path=tmp_path / "nope.csv")


def test_missing_columns_are_named(tmp_path):
    path = write(tmp_path, "transcript_id,topic,utterance_id\n0,x,0\n")
    with pytest.raises(TranscriptFormatError, match="mi_quality, interlocutor, utterance_text"):
        load_annomi(path=path)


def test_unknown_interlocutor_names_transcript_utterance_and_row(tmp_path):
    path = write(tmp_path, HEADER + "0,high,x,0,therapist,Hello there friend\n0,high,x,1,doctor,Hi\n")
    with pytest.raises(TranscriptFormatError, match=r"annomi.csv:3: interlocutor: unknown value 'doctor' \(transcript_id=0, utterance_id=1\)"):
        load_annomi(path=path)


def test_empty_text_errors_or_is_skipped_when_lenient(tmp_path):
    path = write(tmp_path, HEADER + '0,high,x,0,therapist,Hello there friend\n0,high,x,1,client,""\n0,high,x,2,client,Hi\n')
    with pytest.raises(TranscriptFormatError, match=r"annomi.csv:3: utterance_text: empty \(transcript_id=0, utterance_id=1\)"):
        load_annomi(path=path)
    transcripts, report = load_annomi(path=path, lenient=True)
    assert len(transcripts[0].turns) == 2
    assert report.skipped == {"empty_text": 1}


def test_undecodable_bytes_give_the_byte_offset(tmp_path):
    content = (HEADER + "0,high,x,0,client,caf").encode() + b"\xff\n"
    path = write(tmp_path, content)
    with pytest.raises(TranscriptFormatError, match=f"byte offset {len(content) - 2}"):
        load_annomi(path=path)


def test_annotator_repeats_are_removed(tmp_path):
    path = write(tmp_path, HEADER + "0,high,x,0,client,Hi\n0,high,x,0,client,Hi\n0,high,x,1,therapist,How are you?\n")
    transcripts, report = load_annomi(path=path)
    assert report.duplicate_rows_removed == 1
    assert [t.text for t in transcripts[0].turns] == ["Hi", "How are you?"]


def test_plain_transcript_labels_continuations_and_metadata():
    transcript = parse_plain_transcript("# id: s1\n# topic: grief\nT: Hello.\nC: I lost\nmy dog.\n\nTherapist: I'm sorry.\n")
    assert transcript.transcript_id == "s1" and transcript.topic == "grief"
    assert [(t.speaker, t.text) for t in transcript.turns] == [
        ("therapist", "Hello."), ("client", "I lost my dog."), ("therapist", "I'm sorry."),
    ]


def test_plain_transcript_without_labels_names_the_line():
    with pytest.raises(TranscriptFormatError, match="s.txt:2: speaker: .*'Doctor:' looks like a speaker label"):
        parse_plain_transcript("\nDoctor: hello\n", name="s.txt")


def test_example_session_ships_with_the_package():
    from importlib import resources

    path = resources.files("therapy_align.data").joinpath("examples/example_session.txt")
    transcript = load_plain_transcript(str(path))
    assert transcript.transcript_id == "example-sleep"
    assert len(transcript.turns) == 10


def test_indented_or_non_label_lines_continue_but_an_unknown_label_is_refused():
    transcript = parse_plain_transcript("T: Hello.\nC: I lost my job\n  Note: that was in May.\n10:30 is when it happened.\n")
    assert [t.text for t in transcript.turns] == ["Hello.", "I lost my job Note: that was in May. 10:30 is when it happened."]
    with pytest.raises(TranscriptFormatError, match=r"s.txt:3: speaker: 'Clinet:'.*did you mean Client:"):
        parse_plain_transcript("T: Hello.\nC: Not great.\nClinet: I have been very sad lately.\n", name="s.txt")


def test_non_integer_ids_fail_on_their_row_or_are_skipped_when_lenient(tmp_path):
    path = write(tmp_path, HEADER + "0,high,x,0,client,Hi\n0,high,x,x1,therapist,How are you doing?\n"
                 + "".join(f"0,high,x,{u},{'client' if u % 2 == 0 else 'therapist'},turn {u}\n" for u in range(1, 12)))
    with pytest.raises(TranscriptFormatError, match=r"annomi.csv:3: utterance_id: 'x1' is not an integer"):
        load_annomi(path=path)
    transcripts, report = load_annomi(path=path, lenient=True)
    assert report.skipped == {"non_integer_utterance_id": 1}
    assert [t.text for t in transcripts[0].turns] == ["Hi"] + [f"turn {u}" for u in range(1, 12)], "numeric order: 1, 2, ... 11"
