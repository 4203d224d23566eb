# Coral's Edge TPU compiler (`edgetpu_compiler`), installed from Coral's apt
# repository. The compiler is a closed x86_64 binary that no language
# registry ships; the edgetpu stage runs it here with the workspace and its
# artifacts mounted at their host paths and --user set to the invoking user:
#   edgetpu_compiler -s -o OUT [-a] [-m N] [-n N] [-t SECONDS] MODEL.tflite
#
# x86_64 only (Coral publishes no arm64 build of the compiler).
FROM debian:bullseye-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \
      | gpg --dearmor -o /usr/share/keyrings/coral-edgetpu.gpg \
 && echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
      > /etc/apt/sources.list.d/coral-edgetpu.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends edgetpu-compiler \
 && apt-get purge -y curl gnupg \
 && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && edgetpu_compiler --version

# Compiled files are written where the stage asks (-o); nothing else is kept.
WORKDIR /work
ENTRYPOINT []
CMD ["edgetpu_compiler", "--help"]
