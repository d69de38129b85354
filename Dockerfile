# ci-doctor as a container image: one statically linked binary and nothing else.
#
# No toolchain runs inside the build, so build the binary on the host first, then the image
# (docs/INSTALL.md has the details):
#
#   RUSTFLAGS='-C target-feature=+crt-static' \
#     cargo build --release --locked --target x86_64-unknown-linux-gnu
#   docker build -t ci-doctor .
#
# Run it with the Docker socket and the host's PID namespace, so that it can find runner
# containers and probe from inside their network namespaces (see the README for the line).
FROM scratch

# The binary to copy, relative to the build context; another target triple (for example
# aarch64-unknown-linux-gnu) changes this path.
ARG BINARY=target/x86_64-unknown-linux-gnu/release/ci-doctor

COPY ${BINARY} /usr/local/bin/ci-doctor

# ci-doctor reports with colour only on a terminal (`docker run -t`).
ENTRYPOINT ["/usr/local/bin/ci-doctor"]
