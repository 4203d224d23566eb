# TF 1.15 Object Detection API: the seed's training and export flow
# (model_main.py with graph_rewriter quantization-aware training,
# export_tflite_ssd_graph.py --add_postprocessing_op=true).
#
# CPU (default) or GPU via the base image:
#   docker build -f dockerfiles/odapi-tf1.Dockerfile dockerfiles
#   docker build --build-arg BASE=tensorflow/tensorflow:1.15.5-gpu-py3 -f dockerfiles/odapi-tf1.Dockerfile dockerfiles
# The stages run it as the invoking user (--user uid:gid) with the work
# directories mounted at their host paths; nothing is written inside the image.
ARG BASE=tensorflow/tensorflow:1.15.5-py3
FROM ${BASE}

# The OD API at a fixed tag of tensorflow/models (its TF1 research code).
ARG MODELS_REF=v1.13.0
# Set to the archive's sha256 to verify the download.
ARG MODELS_SHA256=

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler wget ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN pip install --no-cache-dir \
      Cython==0.29.36 contextlib2==0.6.0.post1 pillow==8.4.0 lxml==4.9.3 \
      matplotlib==3.3.4 pycocotools==2.0.6 tf_slim==1.1.0

# The OD API's import path, as a .pth file rather than PYTHONPATH: stage
# scripts run with PYTHONPATH set to edgepipe's own package, which would
# replace the image's.
RUN printf '/opt/models/research\n/opt/models/research/slim\n' \
      > "$(python -c 'import site; print(site.getsitepackages()[0])')/odapi.pth"

RUN wget -q -O /tmp/models.tar.gz "https://github.com/tensorflow/models/archive/refs/tags/${MODELS_REF}.tar.gz" \
 && if [ -n "${MODELS_SHA256}" ]; then echo "${MODELS_SHA256}  /tmp/models.tar.gz" | sha256sum -c -; fi \
 && mkdir -p /opt/models \
 && tar -xzf /tmp/models.tar.gz -C /opt/models --strip-components=1 \
 && rm /tmp/models.tar.gz \
 && cd /opt/models/research \
 && protoc object_detection/protos/*.proto --python_out=. \
 && python -c "from object_detection.protos import pipeline_pb2; print('od api ok')"

RUN useradd --create-home --uid 1000 edgepipe
USER edgepipe
WORKDIR /work
