"""Tiny real models for the bench tests, built without torch.

ONNX through ``onnx.helper``; TFLite by writing the flatbuffer with the schema that
ships inside ai-edge-litert (so the no-torch test benches a real .tflite too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_onnx(path: Path, size: int = 8, channels: int = 4, dynamic_batch: bool = True, dynamic_hw: bool = False) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    batch = "N" if dynamic_batch else 1
    hw = ["H", "W"] if dynamic_hw else [size, size]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, *hw])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 2])
    inits = [
        numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(channels, np.float32), "b"),
        numpy_helper.from_array(rng.standard_normal((2, channels)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.zeros(2, np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "tiny", [x], [y], inits), opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    )
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def _tensor(s, name, shape, ttype, buffer, quant=None):
    t = s.TensorT()
    t.name, t.shape, t.type, t.buffer = name, list(shape), ttype, buffer
    if quant is not None:
        q = s.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = list(quant[0]), list(quant[1]), 0
        t.quantization = q
    return t


def _buffer(s, array=None):
    b = s.BufferT()
    if array is not None:
        b.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
    return b


def write_tflite(path: Path, int8: bool = False, size: int = 8, channels: int = 4) -> Path:
    """One NHWC CONV_2D + ReLU; the INT8 variant takes int8 input with scale 1/255, zero point -128."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    rng = np.random.default_rng(0)
    tt = s.TensorType
    wshape = (channels, 3, 3, 3)
    if int8:
        tensors = [
            _tensor(s, "input", (1, size, size, 3), tt.INT8, 1, ([1 / 255], [-128])),
            _tensor(s, "weight", wshape, tt.INT8, 2, ([0.01] * channels, [0] * channels)),
            _tensor(s, "bias", (channels,), tt.INT32, 3, ([0.01 / 255] * channels, [0] * channels)),
            _tensor(s, "output", (1, size, size, channels), tt.INT8, 4, ([0.05], [0])),
        ]
        weights = [rng.integers(-127, 128, size=wshape, dtype=np.int8), np.zeros(channels, np.int32)]
    else:
        tensors = [
            _tensor(s, "input", (1, size, size, 3), tt.FLOAT32, 1),
            _tensor(s, "weight", wshape, tt.FLOAT32, 2),
            _tensor(s, "bias", (channels,), tt.FLOAT32, 3),
            _tensor(s, "output", (1, size, size, channels), tt.FLOAT32, 4),
        ]
        weights = [rng.standard_normal(wshape).astype(np.float32), np.zeros(channels, np.float32)]
    opts = s.Conv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = s.Padding.SAME, 1, 1
    opts.fusedActivationFunction = s.ActivationFunctionType.RELU
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.Conv2DOptions, opts
    graph = s.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators, graph.name = tensors, [0], [3], [op], "main"
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.CONV_2D
    code.version = 3 if int8 else 1
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.description = 3, [code], [graph], "edgekd test"
    model.buffers = [_buffer(s), _buffer(s), *[_buffer(s, w) for w in weights], _buffer(s)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path
