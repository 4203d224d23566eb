"""Per-channel quantization-aware training for the Keras SSDLite.

tensorflow-model-optimization's default 8-bit scheme, with two changes:

* Depthwise kernels get one range per output channel. tfmot's per-axis
  weight quantizer takes the kernel's last axis, which for DepthwiseConv2D
  (`[kh, kw, in, multiplier]`) is the depth multiplier: with multiplier 1
  every depthwise kernel stays per-tensor in training, while the converter
  quantizes it per channel. Here the kernel is viewed as
  `[kh, kw, 1, in * multiplier]` (TFLite's own depthwise layout, output
  channel `c * multiplier + m`) and fake-quantized along that axis.
* The head convolutions whose outputs are reshaped and concatenated into
  the box encodings and class logits keep unquantized outputs; the
  Concatenate's range then holds for all its inputs, as TFLite's int8
  CONCATENATION requires one scale for inputs and output.

Imported by keras_ssdlite.quantize.
"""

import tensorflow as tf
from tensorflow_model_optimization.python.core.quantization.keras import quantizers
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry as registry,
)
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_scheme,
)


class DepthwiseChannelQuantizer(quantizers.LastValueQuantizer):
    """Symmetric int8 fake-quantization of a depthwise kernel per output channel."""

    def __init__(self, **_config):
        super().__init__(num_bits=8, per_axis=True, symmetric=True, narrow_range=True)

    def build(self, tensor_shape, name, layer):
        channels = int(tensor_shape[-2]) * int(tensor_shape[-1])
        return {
            "min_var": layer.add_weight(name + "_min", shape=(channels,), trainable=False,
                                        initializer=tf.keras.initializers.Constant(-6.0)),
            "max_var": layer.add_weight(name + "_max", shape=(channels,), trainable=False,
                                        initializer=tf.keras.initializers.Constant(6.0)),
        }

    def __call__(self, inputs, training, weights, **kwargs):
        kh, kw, channels, multiplier = inputs.shape
        flat = tf.reshape(inputs, [kh, kw, 1, channels * multiplier])
        quantized = super().__call__(flat, training, weights, **kwargs)
        return tf.reshape(quantized, [kh, kw, channels, multiplier])

    def get_config(self):
        return {}


class DepthwiseQuantizeConfig(registry.Default8BitQuantizeConfig):
    """DepthwiseConv2D: per-output-channel kernel ranges."""

    def __init__(self, weight_attrs=("depthwise_kernel",), activation_attrs=("activation",),
                 quantize_output=False):
        super().__init__(list(weight_attrs), list(activation_attrs), quantize_output)
        self.weight_quantizer = DepthwiseChannelQuantizer()


class UnquantizedOutputConvConfig(registry.Default8BitQuantizeConfig):
    """Conv2D with per-axis kernel ranges and no output range of its own."""

    def __init__(self, weight_attrs=("kernel",), activation_attrs=(), quantize_output=False):
        super().__init__(list(weight_attrs), [], False)
        self.weight_quantizer = registry.default_8bit_quantizers.Default8BitConvWeightsQuantizer()


class PerChannelRegistry(registry.Default8BitQuantizeRegistry):
    """The default 8-bit registry with the two changes above."""

    def __init__(self, head_outputs):
        super().__init__(disable_per_axis=False)
        self._head_outputs = frozenset(head_outputs)

    def get_quantize_config(self, layer):
        if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
            return DepthwiseQuantizeConfig()
        if isinstance(layer, tf.keras.layers.Conv2D) and layer.name in self._head_outputs:
            return UnquantizedOutputConvConfig()
        return super().get_quantize_config(layer)


class PerChannelScheme(default_8bit_quantize_scheme.Default8BitQuantizeScheme):
    def __init__(self, head_outputs):
        super().__init__(disable_per_axis=False)
        self._head_outputs = head_outputs

    def get_quantize_registry(self):
        return PerChannelRegistry(self._head_outputs)


def custom_objects():
    """Names the scheme's classes for tfmot's (de)serialization."""
    return {
        "DepthwiseChannelQuantizer": DepthwiseChannelQuantizer,
        "DepthwiseQuantizeConfig": DepthwiseQuantizeConfig,
        "UnquantizedOutputConvConfig": UnquantizedOutputConvConfig,
    }
