from therapy_align.data.cleaning import clean_turns, is_backchannel, remove_asides, to_exchanges
from therapy_align.data.transcripts import CLIENT, THERAPIST, Turn


def test_asides_are_removed_including_nested_ones():
    assert remove_asides("Well [laughs] I (long pause) tried [unintelligible 00:01:33].") == "Well I tried."
    assert remove_asides("So [he said [quietly]] no") == "So no"


def test_backchannels_by_length_and_by_vocabulary():
    assert is_backchannel("Mm-hmm.")
    assert is_backchannel("Okay, yeah.")
    assert is_backchannel("Yeah, yeah, okay, right.")
    assert not is_backchannel("What brings you here?")


def test_client_speech_around_a_dropped_backchannel_is_joined():
    turns = [
        Turn(CLIENT, "I was going to the store-"),
        Turn(THERAPIST, "Mm-hmm."),
        Turn(CLIENT, "-and I just froze [laughs]."),
        Turn(THERAPIST, "What happened when you froze?"),
    ]
    cleaned, removed = clean_turns(turns)
    assert cleaned == [Turn(CLIENT, "I was going to the store and I just froze."), Turn(THERAPIST, "What happened when you froze?")]
    assert removed["therapist_backchannel"] == 1
    assert removed["merged_same_speaker"] == 1
    assert removed["asides_removed"] == 1


def test_aside_only_utterances_are_dropped_as_empty():
    cleaned, removed = clean_turns([Turn(CLIENT, "[laughs]"), Turn(CLIENT, "Fine."), Turn(THERAPIST, "Tell me more about that.")])
    assert cleaned[0] == Turn(CLIENT, "Fine.")
    assert removed["empty_after_cleaning"] == 1


def test_therapist_first_transcript_policies():
    turns = [Turn(THERAPIST, "How are you today?"), Turn(CLIENT, "Tired."), Turn(THERAPIST, "Tired how?"), Turn(CLIENT, "Bye.")]
    exchanges, counts = to_exchanges(turns, opener_policy="neutral_opener")
    assert [(e.client, e.therapist) for e in exchanges] == [("Hi.", "How are you today?"), ("Tired.", "Tired how?")]
    assert counts == {"therapist_first": 1, "trailing_client_turn": 1}
    exchanges, _ = to_exchanges(turns, opener_policy="context")
    assert len(exchanges) == 1
    assert "How are you today?" in exchanges[0].client and exchanges[0].client.endswith("Tired.")
