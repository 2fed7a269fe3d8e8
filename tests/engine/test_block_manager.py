"""Paged KV bookkeeping: allocation, growth, prefix reuse, reference counts, LRU eviction."""

from reference_server.block_manager import BlockManager
from reference_server.sampling import SamplingParams
from reference_server.sequence import Sequence

BS = 4


def seq(tokens: list[int]) -> Sequence:
    return Sequence("r", tokens, SamplingParams())


def computed(bm: BlockManager, s: Sequence) -> Sequence:
    """Pretend the model computed every token of s, then register its full blocks."""
    s.num_computed_tokens = len(s)
    bm.register_computed_blocks(s)
    return s


def held(bm: BlockManager) -> int:
    return bm.num_blocks - bm.num_free_blocks - bm.num_cached_blocks


def test_allocate_append_free_accounting():
    bm = BlockManager(8, BS)
    s = seq(list(range(10)))
    assert bm.can_allocate(s)
    bm.allocate(s)
    assert len(s.block_table) == 3 and len(set(s.block_table)) == 3
    assert held(bm) == 3 and s.num_computed_tokens == 0
    s.token_ids += [10, 11]  # 12 tokens still fit in 3 blocks
    bm.append(s)
    assert len(s.block_table) == 3
    s.token_ids.append(12)  # the 13th token needs a 4th block
    bm.append(s)
    assert len(s.block_table) == 4 and held(bm) == 4
    bm.free(s)
    assert s.block_table == [] and bm.num_free_blocks == 8 and bm.num_cached_blocks == 0


def test_prefix_reuse_and_counters():
    bm = BlockManager(16, BS)
    a = seq(list(range(10)))
    bm.allocate(a)
    computed(bm, a)  # blocks 0..1 full and hashed, block 2 partial
    bm.free(a)
    assert bm.num_cached_blocks == 2 and bm.num_free_blocks == 14
    b = seq(list(range(8)) + [99, 98, 97])  # shares the first two blocks
    bm.allocate(b)
    assert b.num_computed_tokens == 8
    assert b.block_table[:2] == a_blocks_of(bm, 2)
    assert bm.prefix_queries == 10 + 11 and bm.prefix_hits == 8
    c = seq([1] + list(range(1, 11)))  # differs in the first token: no hit (hashes are chained)
    bm.allocate(c)
    assert c.num_computed_tokens == 0


def a_blocks_of(bm: BlockManager, n: int) -> list[int]:
    prev, blocks = -1, []
    for j in range(n):
        prev = hash((prev, tuple(range(j * BS, (j + 1) * BS))))
        blocks.append(bm.hash_to_block[prev])
    return blocks


def test_last_token_is_never_served_from_cache():
    bm = BlockManager(8, BS)
    a = computed(bm, _allocated(bm, list(range(8))))
    bm.free(a)
    b = _allocated(bm, list(range(8)))  # identical 2-block prompt: only the first block may hit
    assert b.num_computed_tokens == 4


def _allocated(bm: BlockManager, tokens: list[int]) -> Sequence:
    s = seq(tokens)
    bm.allocate(s)
    return s


def test_shared_blocks_are_reference_counted():
    bm = BlockManager(8, BS)
    a = computed(bm, _allocated(bm, list(range(9))))
    b = _allocated(bm, list(range(9)))
    shared = b.block_table[:2]
    assert shared == a.block_table[:2]
    assert [bm.ref_counts[x] for x in shared] == [2, 2]
    bm.free(a)
    assert [bm.ref_counts[x] for x in shared] == [1, 1]
    assert bm.num_cached_blocks == 0  # still held by b, not evictable
    bm.free(b)
    assert bm.num_cached_blocks == 2 and held(bm) == 0


def test_lru_eviction_prefers_oldest_cached_blocks():
    bm = BlockManager(4, BS)
    old = computed(bm, _allocated(bm, [1] * 4 + [5]))
    bm.free(old)
    new = computed(bm, _allocated(bm, [2] * 4 + [5]))
    bm.free(new)
    assert bm.num_cached_blocks == 2 and bm.num_free_blocks == 2
    big = _allocated(bm, [3] * 12)  # needs 3 fresh blocks: 2 free + evict the oldest cached one
    assert big.num_computed_tokens == 0
    assert bm.num_cached_blocks == 1
    bm.free(big)
    assert _allocated(bm, [2] * 4 + [5]).num_computed_tokens == 4  # recent prefix survived
    assert _allocated(bm, [1] * 4 + [5]).num_computed_tokens == 0  # oldest was evicted


def test_can_allocate_counts_revived_cached_blocks():
    bm = BlockManager(3, BS)
    a = computed(bm, _allocated(bm, list(range(9))))
    bm.free(a)
    assert bm.num_cached_blocks == 2 and bm.num_free_blocks == 1
    # 12 tokens: reuses 2 cached blocks, needs 1 fresh; all 3 exist
    assert bm.can_allocate(seq(list(range(8)) + [7, 7, 7, 7]))
    # a different 12-token prompt needs 3 fresh blocks: the 2 cached ones get evicted
    assert bm.can_allocate(seq([9] * 12))
    assert not bm.can_allocate(seq([9] * 13))


def test_disabled_prefix_caching_keeps_nothing():
    bm = BlockManager(4, BS, enable_prefix_caching=False)
    a = computed(bm, _allocated(bm, list(range(9))))
    bm.free(a)
    assert bm.num_cached_blocks == 0 and bm.num_free_blocks == 4
    assert _allocated(bm, list(range(9))).num_computed_tokens == 0
