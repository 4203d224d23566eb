# The legacy TOCO converter: TensorFlow 1.15 turns a quantization-aware SSD
# frozen graph (FakeQuant ranges + TFLite_Detection_PostProcess node) into a
# uint8 .tflite. The quantize stage runs
# crates/stage-quantize/python/quantize.py here in mode `toco`, with the
# workspace and its artifacts mounted at their host paths and --user set to
# the invoking user.
#
# TF 1.15 supports Python 3.7 at most. The `tflite` package provides the
# flatbuffer schema the script reads the converted model with (TF 1.15 ships
# no Python schema). numpy < 1.19 and protobuf 3.20 are what TF 1.15 runs with.
FROM python:3.7.17-slim-bullseye

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN pip install \
        tensorflow==1.15.5 \
        numpy==1.18.5 \
        protobuf==3.20.3 \
        h5py==2.10.0 \
        flatbuffers==1.12 \
        tflite==2.4.0 \
    && python -c "import tensorflow as tf, tflite; assert tf.__version__ == '1.15.5', tf.__version__" \
    && command -v toco_from_protos

RUN useradd --create-home --uid 1000 edgepipe
USER edgepipe
WORKDIR /home/edgepipe
