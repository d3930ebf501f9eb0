"""Export to ONNX / TFLite (fp32, INT8), parity and accuracy gates, model cards.

``export_model`` is generic over ``nn.Module`` + :class:`InputSpec` (the DFE encoder uses
it too); ``export_classifier`` adds the accuracy gate and the card. torch is imported
inside the functions that need it.
"""

from edgekd.convert.spec import InputSpec


def export_model(*args, **kwargs):
    from edgekd.convert.export import export_model as _export

    return _export(*args, **kwargs)


def export_classifier(*args, **kwargs):
    from edgekd.convert.classifier import export_classifier as _export

    return _export(*args, **kwargs)


__all__ = ["InputSpec", "export_model", "export_classifier"]
