"""A few hundred mutated inputs through every loader: each ends in a one-line error or a correct result.

The published summary (more inputs, every outcome counted) is benchmarks/fuzz_loaders.md.
"""

import fuzzing


def test_mutated_inputs_never_give_a_traceback_or_a_silent_wrong_answer():
    rows = fuzzing.fuzz(n=28, seed=0)
    assert len(rows) >= 28 * len(fuzzing.TARGETS)
    bad = [r for r in rows if r["outcome"] in ("traceback", "crash", "silent")]
    assert not bad, bad[:5]
    summary = fuzzing.summary(rows)
    # every target saw its input refused at least once (the mutations really were damaging)
    assert all(s.get("error", 0) > 0 for s in summary.values()), summary
