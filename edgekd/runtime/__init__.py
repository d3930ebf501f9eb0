"""The device side of an exported classifier: load the folder, classify images or a video. No torch.

    from edgekd.runtime import Classifier
    clf = Classifier("runs/compress/export/cifar10-airbench_x0_5-kd-ig")
    print(clf.predict("cat.png").label)
"""

from edgekd.runtime.classifier import Classifier, Prediction, read_image
from edgekd.runtime.stream import classify_stream

__all__ = ["Classifier", "Prediction", "classify_stream", "read_image"]
