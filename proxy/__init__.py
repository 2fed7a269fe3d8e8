"""`tollgate proxy`: a streaming OpenAI-compatible pass-through that writes the capture log.

vLLM, TGI and llama.cpp write no capture log, so drift in production needs something in the
request path that does. The proxy relays every request to the upstream server unchanged (SSE
chunk by chunk, status codes, errors and headers passed on), observes each generation request
(prompt profile, sampling parameters, token counts from `usage`, client-side TTFT/E2E) and
writes one line of the capture contract (tollgate/contracts/capture.py) per finished request.
It imports only `tollgate.contracts` from the rest of Tollgate.
"""
