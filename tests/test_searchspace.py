import hashlib
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anbench.errors import AnbenchError
from anbench.searchspace import (
    NAMED, RECORD_KEYS, SAMPLER_VERSION, Architecture, Constraints, layer_choices, named, sample, sample_one, space_size,
)


def test_record_keys_are_the_28_canonical_keys_in_order():
    assert len(RECORD_KEYS) == 28
    assert RECORD_KEYS[:5] == ("block0_e", "block0_k", "block0_l", "block0_se", "block1_e")
    assert RECORD_KEYS[-1] == "block6_se"
    arch = named("efficientnet-b0")
    record = arch.to_record()
    assert list(record) == list(RECORD_KEYS)
    assert record["block5_l"] == 4 and record["block0_se"] is True


def test_space_size_matches_spec():
    assert space_size() == 104_485_552_128
    assert space_size(allow_se=False) == 816_293_376


@pytest.mark.parametrize("key, value, fragment", [
    ("block2_k", 7, "block2_k=7 is not allowed; block2_k must be one of 3, 5"),
    ("block0_l", 4, "block0_l=4 is not allowed; block0_l must be one of 1, 2, 3"),
    ("block6_l", 4, "block6_l=4 is not allowed; block6_l must be one of 1, 2, 3"),  # block5 alone allows 4
    ("block5_l", 5, "block5_l=5 is not allowed; block5_l must be one of 1, 2, 3, 4"),
    ("block1_e", 2, "block1_e must be one of 1, 4, 6"),
    ("block3_se", "True", 'block3_se="True" is not allowed'),
    ("block3_se", 1, "block3_se=1 is not allowed"),
    ("block4_e", True, "block4_e=true is not allowed"),
    ("block4_e", 4.0, "block4_e=4.0 is not allowed"),
])
def test_validation_names_the_key_and_the_allowed_values(key, value, fragment):
    record = named("smallest").to_record()
    record[key] = value
    with pytest.raises(AnbenchError) as err:
        Architecture.from_record(record)
    assert fragment in str(err.value)


def test_block5_allows_four_layers_and_missing_or_unknown_keys_are_named():
    record = named("smallest").to_record()
    record["block5_l"] = 4
    assert Architecture.from_record(record).l[5] == 4
    del record["block6_k"]
    with pytest.raises(AnbenchError, match="missing key 'block6_k'"):
        Architecture.from_record(record)
    with pytest.raises(AnbenchError, match="unknown architecture key 'block7_e'"):
        Architecture.from_record(dict(named("smallest").to_record(), block7_e=1))
    with pytest.raises(AnbenchError, match="must be a JSON object"):
        Architecture.from_record([1, 2, 3])


def test_content_id_is_stable_and_order_independent():
    arch = named("efficientnet-b0")
    shuffled = dict(reversed(list(arch.to_record().items())))
    assert Architecture.from_record(shuffled).id == arch.id
    # pinned: a changed id would orphan every stored result
    assert arch.id == "9f07f34f771ef746"
    assert len({a.id for a in NAMED.values()}) == len(NAMED) - 1  # rtx3090-b is a100-b (spec 1.6)


def test_canonical_text_is_the_compact_json_of_the_record():
    # the id hashes this text; it is formatted from a template for speed and must stay
    # exactly json.dumps's output, or every stored id would change
    archs = sample(500, seed=11) + list(NAMED.values())
    for arch in archs:
        assert arch.canonical_json() == json.dumps(arch.to_record(), separators=(",", ":"))
        assert arch.id == hashlib.sha256(arch.canonical_json().encode()).hexdigest()[:16]


def test_sampling_is_pinned_across_machines_and_python_versions():
    # golden values: changing them means bumping SAMPLER_VERSION
    assert SAMPLER_VERSION == "anbench-sampler/1"
    assert [a.compact for a in sample(3, seed=1)] == [
        "e6661646-k5555535-l1123321-se0100001",
        "e4611444-k3335553-l2332123-se1010110",
        "e6641616-k3555353-l3333343-se0101110",
    ]


def test_sampling_is_the_same_in_a_fresh_interpreter_and_independent_of_the_start():
    code = "from anbench.searchspace import sample; print(','.join(a.id for a in sample(20, seed=5)))"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert fresh.split(",") == [a.id for a in sample(20, seed=5)]
    assert [a.id for a in sample(5, seed=5, start=15)] == fresh.split(",")[15:]


def test_sampling_covers_every_choice_roughly_uniformly():
    archs = sample(3000, seed=3)
    for block in range(7):
        l_counts = {v: sum(a.l[block] == v for a in archs) for v in layer_choices(block)}
        expected = 3000 / len(l_counts)
        assert all(abs(c - expected) < 0.15 * expected for c in l_counts.values()), (block, l_counts)
        se_true = sum(a.se[block] for a in archs)
        assert abs(se_true - 1500) < 150


def test_constraints_no_se_and_cost_ranges():
    from anbench.costs import count_costs

    no_se = sample(50, seed=2, constraints=Constraints(no_se=True))
    assert not any(any(a.se) for a in no_se)
    window = Constraints(macs_m_min=200, macs_m_max=300, params_m_max=4)
    for arch in sample(30, seed=2, constraints=window):
        costs = count_costs(arch)
        assert 200 <= costs.macs_m <= 300 and costs.params_m <= 4
    with pytest.raises(AnbenchError, match="no architecture satisfies"):
        sample_one(0, 0, Constraints(macs_m_max=1.0))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**63), st.integers(min_value=0, max_value=10**6))
def test_every_sample_round_trips_through_its_record(seed, index):
    arch = sample_one(seed, index)
    again = Architecture.from_record(json.loads(json.dumps(arch.to_record())))
    assert again == arch and again.id == arch.id


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(AnbenchError, match="known names: a100-a, a100-b"):
        named("effnet")
