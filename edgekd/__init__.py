"""edgekd: small, accurate, fast models on edge devices.

Importing the package imports nothing heavy: the device side (``edgekd.bench``,
``edgekd.heartrate``, ``edgekd.track`` with an exported encoder) must run with
``pip install "edgekd[device]"`` alone, without torch.
"""

__version__ = "0.1.0"
