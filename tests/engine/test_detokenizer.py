"""Incremental detokenization: split UTF-8 characters, stop strings held back and cut."""

from reference_server.detokenizer import IncrementalDetokenizer
from reference_server.tokenizer import ByteTokenizer

TOK = ByteTokenizer()


def feed(detok, text, check_stop=True):
    pieces, stopped = [], False
    for b in text.encode("utf-8"):
        stopped = detok.add([b], check_stop)
        pieces.append(detok.take(final=stopped))
        if stopped:
            break
    return pieces, stopped


def test_multibyte_characters_are_never_split():
    detok = IncrementalDetokenizer(TOK, [])
    pieces, _ = feed(detok, "héllo → 世界")
    assert "".join(pieces) == "héllo → 世界"
    assert all("\ufffd" not in p for p in pieces)


def test_stop_string_is_held_back_then_cut():
    detok = IncrementalDetokenizer(TOK, ["END"])
    pieces, stopped = feed(detok, "abc ENxyz END tail")
    assert stopped
    assert "".join(pieces) == "abc ENxyz "
    assert all("END" not in p for p in pieces)


def test_without_stop_check_the_string_passes_and_flush_releases_partial_bytes():
    detok = IncrementalDetokenizer(TOK, ["b"])
    pieces, stopped = feed(detok, "abc", check_stop=False)
    assert not stopped
    detok.add([0xE4], check_stop=False)  # first byte of a 3-byte character, then the request ends
    detok.flush()
    assert "".join(pieces) + detok.take(final=True) == "abc\ufffd"


def test_byte_tokenizer_round_trip_and_chat_template():
    assert TOK.decode(TOK.encode("hi ✓")) == "hi ✓"
    assert TOK.encode("a")[0] == TOK.bos_token_id
    text = TOK.apply_chat_template([{"role": "user", "content": "hello"}])
    assert text == "user: hello\nassistant:"
