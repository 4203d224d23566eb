# TF2 Object Detection API, the same pinned environment the local executor
# builds: Python 3.11 + the committed lock (tensorflow-cpu 2.15.1, the OD API
# sdist, tfmot), installed with --no-deps --require-hashes, plus the same
# compatibility fixes. The build context is dockerfiles/; the lock and fix
# script are copied in by the executor's build step from
# crates/provision/python/ (see `edgepipe-lock/` below).
#
#   mkdir -p dockerfiles/edgepipe-lock && cp crates/provision/python/{requirements.lock,apply_fixes.py} dockerfiles/edgepipe-lock/
#   docker build -f dockerfiles/odapi-tf2.Dockerfile dockerfiles
FROM python:3.11.7-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python

RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

COPY edgepipe-lock/requirements.lock edgepipe-lock/apply_fixes.py /opt/edgepipe/
RUN grep -A1 -E '^(setuptools|wheel)==' /opt/edgepipe/requirements.lock | grep -v '^--$' > /opt/edgepipe/build-tools.lock \
 && pip install --no-cache-dir --no-deps --require-hashes -r /opt/edgepipe/build-tools.lock \
 && pip install --no-cache-dir --no-deps --require-hashes --no-build-isolation -r /opt/edgepipe/requirements.lock \
 && python /opt/edgepipe/apply_fixes.py \
 && python -c "from object_detection.protos import pipeline_pb2; import tensorflow_model_optimization"

RUN useradd --create-home --uid 1000 edgepipe
USER edgepipe
WORKDIR /work
