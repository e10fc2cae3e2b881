"""The Merkle tree math against RFC 6962's reference vectors (certificate-transparency's test data) and itself."""

import random

import pytest

from service.journal import merkle

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
ROOTS = ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
INCLUSION = [  # (leaf index, tree size, path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [  # (old size, new size, path)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def _tree(leaves) -> merkle.Node:
    """An in-memory node store, filled the way the database's is: new_nodes() leaf by leaf."""
    nodes: dict = {}
    for i, data in enumerate(leaves):
        for level, index, h in merkle.new_nodes(i, [data], lambda lv, ix: nodes[(lv, ix)]):
            nodes[(level, index)] = h
    return lambda level, index: nodes[(level, index)]


def test_tree_heads_match_the_reference_for_every_size():
    node = _tree(LEAVES)
    for size in range(9):
        assert merkle.root(node, size).hex() == ROOTS[size]
        frontier = merkle.Frontier()
        for data in LEAVES[:size]:
            frontier.append(data)
        assert frontier.root().hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_reference(index, size, path):
    node = _tree(LEAVES)
    assert [p.hex() for p in merkle.inclusion_path(node, index, size)] == path
    head = bytes.fromhex(ROOTS[size])
    proof = [bytes.fromhex(p) for p in path]
    assert merkle.verify_inclusion(index, size, merkle.leaf_hash(LEAVES[index]), proof, head)
    assert not merkle.verify_inclusion(index, size, merkle.leaf_hash(b"other"), proof, head)
    assert not merkle.verify_inclusion(index + 1, size, merkle.leaf_hash(LEAVES[index]), proof, head)


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_reference(old, new, path):
    node = _tree(LEAVES)
    assert [p.hex() for p in merkle.consistency_path(node, old, new)] == path
    proof = [bytes.fromhex(p) for p in path]
    assert merkle.verify_consistency(old, new, proof, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]))
    if old != new:
        assert not merkle.verify_consistency(old, new, proof, bytes.fromhex(ROOTS[old - 1]),
                                             bytes.fromhex(ROOTS[new]))


def test_every_proof_of_every_tree_up_to_40_leaves_verifies_and_a_changed_leaf_does_not():
    rng = random.Random(9162)
    leaves = [rng.randbytes(32) for _ in range(40)]
    node = _tree(leaves)
    heads = {n: merkle.root(node, n) for n in range(41)}
    for size in range(1, 41):
        for index in range(size):
            path = merkle.inclusion_path(node, index, size)
            assert merkle.verify_inclusion(index, size, merkle.leaf_hash(leaves[index]), path, heads[size])
        for old in range(1, size + 1):
            path = merkle.consistency_path(node, old, size)
            assert merkle.verify_consistency(old, size, path, heads[old], heads[size])
    changed = _tree([*leaves[:3], b"x" * 32, *leaves[4:]])
    for old in range(4, 41):  # a rewritten leaf: no later head is consistent with the honest one
        path = merkle.consistency_path(changed, old, 40)
        assert not merkle.verify_consistency(old, 40, path, heads[old], merkle.root(changed, 40))


def test_sizes_the_tree_does_not_have_are_refused():
    node = _tree(LEAVES)
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_path(node, 8, 8)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_path(node, 0, 8)
    assert not merkle.verify_inclusion(8, 8, merkle.leaf_hash(b""), [], bytes(32))
    assert not merkle.verify_consistency(5, 4, [], bytes(32), bytes(32))
