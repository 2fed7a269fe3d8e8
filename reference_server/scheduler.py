"""Continuous-batching scheduler: which sequences run this step, and how many tokens each.

Every step first serves the running sequences (decodes before unfinished prefill chunks, oldest first),
then admits waiting sequences FIFO while the token budget, `max_num_seqs` and free KV blocks allow.
Long prompts are prefilled in chunks of the remaining budget. When a running sequence needs a block and
none is left, the newest running sequence is preempted by recompute: its blocks are released and it goes
back to the front of the queue (its computed blocks usually stay in the prefix cache, so resuming is cheap).
FIFO admission with preempted sequences in front means no request waits behind later arrivals forever.
"""

from __future__ import annotations

import time
from collections import deque

from reference_server.block_manager import BlockManager
from reference_server.sequence import Sequence, Status


class Scheduler:
    def __init__(self, block_manager: BlockManager, max_num_seqs: int, max_num_batched_tokens: int) -> None:
        self.block_manager = block_manager
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> list[tuple[Sequence, int]]:
        """Return (sequence, tokens to compute) pairs; single-token decodes come first."""
        budget = self.max_num_batched_tokens
        scheduled: list[tuple[Sequence, int]] = []
        preempted = False
        self.running.sort(key=lambda s: (s.num_uncomputed > 1, s.seq_no))
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            while not self.block_manager.can_append(seq):
                victim = max(self.running[i:], key=lambda s: s.seq_no)
                self._preempt(victim)
                preempted = True
                if victim is seq:
                    break
            if seq.status is not Status.RUNNING:  # seq itself was preempted: running[i] is now the next one
                continue
            self.block_manager.append(seq)
            n = min(seq.num_uncomputed, budget)
            scheduled.append((seq, n))
            budget -= n
            i += 1
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs and not preempted:
            seq = self.waiting[0]
            if not self.block_manager.can_allocate(seq):
                break
            self.waiting.popleft()
            self.block_manager.allocate(seq)
            if seq.first_scheduled is None:
                seq.first_scheduled = time.time()
                seq.num_cached_prompt_tokens = seq.num_computed_tokens
            seq.status = Status.RUNNING
            self.running.append(seq)
            n = min(seq.num_uncomputed, budget)
            scheduled.append((seq, n))
            budget -= n
        scheduled.sort(key=lambda item: item[1] > 1)
        return scheduled

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.block_manager.free(seq)
        seq.status = Status.WAITING
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(seq)

    def finish(self, seq: Sequence, reason: str) -> None:
        """Remove a sequence (finished or aborted) and release its blocks at once."""
        if seq.status is Status.RUNNING:
            self.running.remove(seq)
        elif seq.status is Status.WAITING:
            self.waiting.remove(seq)
        self.block_manager.free(seq)
        seq.status = Status.FINISHED
        seq.finish_reason = reason
