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


def test_many_events_in_one_read_are_all_returned():
    stream = (
        "".join(chunk(c) for c in "abcdef").encode()
        + b'data: {"choices": [{"text": "g"}]}\n\ndata: [DONE]\n\n'
    )
    parser, events = feed_all([stream[:50], stream[50:]])
    assert [parse_chunk(d).text for _, d in events[:-1]] == list("abcdefg") and parse_chunk(
        events[-1][1]
    ).done


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


def test_data_lines_without_blank_lines_between_them_are_all_counted():
    parser, events = feed_all([b'data: {"choices": [{"text": "x"}]}\ndata: {"choices": [{"text": "y"}]}\n\n'])
    chunk = parse_chunk(events[0][1])
    assert (chunk.text, chunk.tokens) == ("xy", 2)


def test_one_json_object_split_over_data_lines_is_joined():
    _, events = feed_all([b'data: {"choices":\ndata: [{"text": "z"}]}\n\n'])
    chunk = parse_chunk(events[0][1])
    assert (chunk.text, chunk.tokens) == ("z", 1)


def test_empty_text_token_chunks_are_token_arrivals():
    assert parse_chunk('{"choices": [{"delta": {"content": ""}}]}').tokens == 1  # vLLM: special token
    assert parse_chunk('{"choices": [{"text": "", "finish_reason": null}]}').tokens == 1


def test_role_announcement_closing_delta_and_usage_are_not_tokens():
    assert parse_chunk('{"choices": [{"delta": {"role": "assistant", "content": ""}}]}').tokens == 0
    assert parse_chunk('{"choices": [{"delta": {}, "finish_reason": "stop"}]}').tokens == 0
    assert parse_chunk('{"choices": [], "usage": {"completion_tokens": 3}}').tokens == 0
    first = parse_chunk('{"choices": [{"delta": {"role": "assistant", "content": "Hi"}}]}')
    assert (first.text, first.tokens) == ("Hi", 1)


@pytest.mark.parametrize(
    "delta",
    [
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city"'}}]},
        {"reasoning": "let me think"},
        {"reasoning_content": "hmm", "content": None},
    ],
)
def test_tool_calls_and_reasoning_only_chunks_are_output(delta):
    assert parse_chunk(json.dumps({"choices": [{"delta": delta}]})).tokens == 1


def test_usage_and_completions_text():
    c = parse_chunk('{"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}}')
    assert c.usage["completion_tokens"] == 9 and c.text == ""
    assert parse_chunk('{"choices": [{"text": "hi", "finish_reason": "length"}]}').finish_reason == "length"


def test_vllm_shaped_stream_counts_empty_tokens_in_token_timing():
    """Role announcement, then one chunk per token (one of them empty), finish, usage, [DONE]."""
    from loadgen.recording import StreamRecorder
    from loadgen.timeline import RequestRecord

    events = [
        (0.010, {"choices": [{"delta": {"role": "assistant", "content": ""}}]}),
        (0.050, {"choices": [{"delta": {"content": "Hi"}}]}),
        (0.060, {"choices": [{"delta": {"content": ""}}]}),
        (0.070, {"choices": [{"delta": {"content": "!"}, "finish_reason": "stop"}]}),
        (0.071, {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}),
    ]
    rec = RequestRecord("r", "synthetic", 0, True)
    rec.send_perf, rec.status = 0.0, 200
    recorder = StreamRecorder(rec)
    for arrived, obj in events:
        recorder.on_event(json.dumps(obj), arrived)
    recorder.on_event("[DONE]", 0.072)
    assert rec.ttft_ms() == pytest.approx(50.0)  # the first token, not the role announcement
    assert rec.itl_ms() == pytest.approx([10.0, 10.0])
    assert rec.tpot_ms() == pytest.approx((72.0 - 50.0) / 2)
    assert rec.output_tokens() == (3, False) and recorder.finished
