"""Students chosen by measured latency: the candidate space, INT8 exports, latency tables, the choice.

    from edgekd.select import survey
    table = survey(families="truncated,resnet", formats=["onnx-int8"])   # params, MACs, size, p50/p90

``edgekd compress --latency-budget-ms X`` calls :func:`edgekd.select.choose.select_student`.
"""

from edgekd.select.candidates import FAMILIES, Candidate, enumerate_candidates
from edgekd.select.survey import survey

__all__ = ["FAMILIES", "Candidate", "enumerate_candidates", "survey"]
