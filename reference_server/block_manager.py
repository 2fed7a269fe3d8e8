"""Paged KV-cache bookkeeping: block tables, reference counts and the prefix cache.

A full block is identified by a chained hash of its tokens (the hash of the previous block plus its own
token ids), so equal hashes mean equal prefixes. Blocks whose last user left keep their contents and hash
in an LRU pool ("cached"); they are reused on a prefix hit or evicted, oldest first, when a fresh block
is needed. Invariant: free + cached + blocks held by live sequences == total.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from reference_server.sequence import Sequence

_ROOT_HASH = -1


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True) -> None:
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.ref_counts = [0] * num_blocks
        self.block_hash: list[int | None] = [None] * num_blocks
        self.block_tokens: list[tuple[int, ...] | None] = [None] * num_blocks
        self.hash_to_block: dict[int, int] = {}
        self.free_ids: deque[int] = deque(range(num_blocks))
        self.cached_ids: OrderedDict[int, None] = OrderedDict()  # ref 0 but reusable; oldest first
        self.prefix_queries = 0  # tokens looked up, cumulative
        self.prefix_hits = 0  # tokens found, cumulative

    # accounting -------------------------------------------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        return len(self.free_ids)

    @property
    def num_cached_blocks(self) -> int:
        return len(self.cached_ids)

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - len(self.free_ids) - len(self.cached_ids)

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    # prefix cache -----------------------------------------------------------------------------
    def _chain_hash(self, prev: int, tokens: tuple[int, ...]) -> int:
        return hash((prev, tokens))

    def _match_prefix(self, seq: Sequence) -> list[int]:
        """Cached blocks holding seq's leading full blocks. The last token is never served from
        cache: it must be computed to produce logits."""
        if not self.enable_prefix_caching:
            return []
        hits, prev, bs = [], _ROOT_HASH, self.block_size
        for j in range((len(seq) - 1) // bs):
            tokens = tuple(seq.token_ids[j * bs : (j + 1) * bs])
            prev = self._chain_hash(prev, tokens)
            block = self.hash_to_block.get(prev)
            if block is None or self.block_tokens[block] != tokens:
                break
            hits.append(block)
        return hits

    def register_computed_blocks(self, seq: Sequence) -> None:
        """Hash the seq's blocks that are now full of computed K/V so later requests can share them."""
        if not self.enable_prefix_caching:
            return
        bs = self.block_size
        for j in range(seq.num_hashed_blocks, seq.num_computed_tokens // bs):
            block = seq.block_table[j]
            prev = self.block_hash[seq.block_table[j - 1]] if j else _ROOT_HASH
            tokens = tuple(seq.token_ids[j * bs : (j + 1) * bs])
            h = self._chain_hash(_ROOT_HASH if prev is None else prev, tokens)
            self.block_hash[block], self.block_tokens[block] = h, tokens
            self.hash_to_block.setdefault(h, block)
        seq.num_hashed_blocks = max(seq.num_hashed_blocks, seq.num_computed_tokens // bs)

    # allocation -------------------------------------------------------------------------------
    def _take_fresh(self) -> int:
        if self.free_ids:
            block = self.free_ids.popleft()
        else:
            block, _ = self.cached_ids.popitem(last=False)  # evict least recently used
            h = self.block_hash[block]
            if self.hash_to_block.get(h) == block:
                del self.hash_to_block[h]
            self.block_hash[block] = self.block_tokens[block] = None
        self.ref_counts[block] = 1
        return block

    def _share(self, block: int) -> None:
        if self.ref_counts[block] == 0:
            self.cached_ids.pop(block, None)
        self.ref_counts[block] += 1

    def can_allocate(self, seq: Sequence) -> bool:
        hits = self._match_prefix(seq)
        revived = sum(1 for b in hits if self.ref_counts[b] == 0)
        fresh = self.blocks_needed(len(seq)) - len(hits)
        return fresh <= len(self.free_ids) + len(self.cached_ids) - revived

    def allocate(self, seq: Sequence) -> None:
        """Give a waiting sequence blocks for all its tokens, reusing cached prefix blocks."""
        assert not seq.block_table, "sequence already holds blocks"
        hits = self._match_prefix(seq)
        for b in hits:
            self._share(b)
        fresh = [self._take_fresh() for _ in range(self.blocks_needed(len(seq)) - len(hits))]
        seq.block_table = hits + fresh
        seq.num_hashed_blocks = len(hits)
        seq.num_computed_tokens = len(hits) * self.block_size
        self.prefix_queries += len(seq)
        self.prefix_hits += seq.num_computed_tokens

    def can_append(self, seq: Sequence) -> bool:
        """Enough blocks to hold all of seq's tokens (including the one this step computes)?"""
        need = self.blocks_needed(len(seq)) - len(seq.block_table)
        return need <= len(self.free_ids) + len(self.cached_ids)

    def append(self, seq: Sequence) -> None:
        for _ in range(self.blocks_needed(len(seq)) - len(seq.block_table)):
            seq.block_table.append(self._take_fresh())

    def free(self, seq: Sequence) -> None:
        """Release seq's blocks; hashed ones go to the LRU pool (tail blocks first so prefixes live longer)."""
        for block in reversed(seq.block_table):
            self.ref_counts[block] -= 1
            if self.ref_counts[block]:
                continue
            h = self.block_hash[block]
            if h is not None and self.hash_to_block.get(h) == block:
                self.cached_ids[block] = None
            else:
                self.block_hash[block] = self.block_tokens[block] = None
                self.free_ids.append(block)
        seq.block_table = []
        seq.num_computed_tokens = seq.num_hashed_blocks = 0
