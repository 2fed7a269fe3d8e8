"""The SSE parser on broken and oddly framed streams."""

from __future__ import annotations

import json

import pytest

from loadgen.sse import SSEParser, StreamError, parse_chunk


def chunk(text):
    return "data: " + json.dumps({"choices": [{"delta": {"content": text}}]}) + "\n\n"


def feed_all(pieces):
    parser = SSEParser()
    events = []
    for piece in pieces:
        events += parser.feed(piece)
    return parser, events


def test_events_split_at_every_byte():
    stream = (chunk("a") + chunk("b") + "data: [DONE]\n\n").encode()
    _, events = feed_all([stream[i : i + 1] for i in range(len(stream))])
    assert [parse_chunk(d).text for _, d in events[:2]] == ["a", "b"]
    assert parse_chunk(events[2][1]).done


def test_crlf_comments_and_event_names():
    stream = b": keep-alive\r\n\r\nevent: message\r\ndata: [DONE]\r\n\r\n"
    _, events = feed_all([stream])
    assert events == [("message", "[DONE]")]


def test_lone_cr_at_end_waits_for_its_lf():
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]\r") == []
    assert parser.feed(b"\n\r\n") == [("message", "[DONE]")]


def test_missing_final_blank_line_is_dispatched_at_end():
    parser, events = feed_all([b"data: [DONE]\n"])
    assert events == []
    assert parser.finish() == [("message", "[DONE]")]


def test_torn_line_at_end_of_stream_is_an_error():
    parser, _ = feed_all([b'data: {"choices": [{"del'])
    with pytest.raises(StreamError, match="inside an SSE line"):
        parser.finish()


def test_malformed_json_and_error_objects_raise_with_reason():
    with pytest.raises(StreamError, match="not JSON"):
        parse_chunk("{not json")
    with pytest.raises(StreamError, match="server error in stream: overloaded"):
        parse_chunk('{"error": {"message": "overloaded"}}')
    with pytest.raises(StreamError, match="not a JSON object"):
        parse_chunk("[1, 2]")


def test_data_lines_without_blank_lines_between_them():
    parser, events = feed_all([b'data: {"choices": [{"text": "x"}]}\ndata: {"choices": [{"text": "y"}]}\n\n'])
    assert parse_chunk(events[0][1]).text == "y"


def test_usage_and_completions_text():
    c = parse_chunk('{"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}}')
    assert c.usage["completion_tokens"] == 9 and c.text == ""
    assert parse_chunk('{"choices": [{"text": "hi", "finish_reason": "length"}]}').finish_reason == "length"
