"""The fault tier's fuzzer (tests/faults/fuzzing.py): the same seed tries the same
objects, mutations land where they say, and a message is credited with naming a field
only when it does."""

from __future__ import annotations

from tests.faults.fuzzing import Mutation, base, generate, mutated, names_a_field


def test_the_same_seed_makes_the_same_objects() -> None:
    assert generate(10, 3) == generate(10, 3)


def test_a_mutation_is_made_where_it_says_and_one_with_nowhere_to_go_is_dropped() -> None:
    valid = base("Canary", "cn-1", "ns", "app-1")
    changed, made = mutated(valid, [
        Mutation(("spec", "analysis"), value="x"),
        Mutation(("spec", "analysis", "interval"), value="1h30x"),  # under a scalar now
        Mutation(("spec", "service", "port"), delete=True)])
    assert changed["spec"]["analysis"] == "x" and "port" not in changed["spec"]["service"]
    assert [m.path for m in made] == [("spec", "analysis"), ("spec", "service", "port")]
    assert valid["spec"]["service"]["port"] == 80  # the valid one is left alone


def test_a_message_names_the_field_by_its_path_its_holder_or_its_reference() -> None:
    interval = [Mutation(("spec", "analysis", "metrics", 0, "interval"), value="1h30x")]
    assert names_a_field('spec.analysis.metrics[0].interval: Invalid value: "1h30x"',
                         interval)
    assert names_a_field("spec.analysis.metrics[0]: Invalid value: object", interval)
    assert not names_a_field("spec.analysis: Invalid value: object", interval)
    ref = [Mutation(("spec", "analysis", "alerts", 0, "providerRef"), value={"name": "gone"})]
    assert names_a_field("AlertProvider ns/gone not found", ref)
    assert not names_a_field("Invalid value: null", [Mutation(("metadata", "name"), value=1)])
