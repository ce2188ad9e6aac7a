# metric-gate container image.
#
#   docker build -t metric-gate .
#   docker run --rm -p 8080:8080 metric-gate -H http://host.docker.internal:10254/metrics
#
# Same entrypoint and flags as the Go original's image: arguments go straight to the binary.
#
# Build stages: Debian bookworm with the toolchain of the crate's `rust-version` (Cargo.toml; the
# oldest one that builds Cargo.lock, see scripts/check_msrv.py, which fails CI when this tag falls
# below it). The binary links glibc dynamically (glibc's allocator is markedly faster than musl's
# for this allocation-heavy workload), so the runtime image is distroless "cc" (glibc + libgcc,
# no shell), which also provides the non-root user.

# Stage 1: the workspace's skeleton, i.e. every Cargo.toml, Cargo.lock and an empty stand-in for
# every target source file that `cargo metadata` lists (libs, bins, build scripts, benches, ...
# of every workspace member). It is remade on every source edit, but its content changes only
# with the manifests or the target layout, and the COPY below is cached by content.
FROM rust:1.88-bookworm AS skeleton
WORKDIR /src
COPY . .
RUN set -eu; \
    cargo metadata --no-deps --format-version 1 > /tmp/metadata.json; \
    root=$(grep -o '"workspace_root":"[^"]*"' /tmp/metadata.json | cut -d'"' -f4); \
    mkdir -p /skeleton; \
    cp "$root/Cargo.lock" /skeleton/; \
    for path in $(grep -o '"manifest_path":"[^"]*"' /tmp/metadata.json | cut -d'"' -f4); do \
        rel=${path#"$root"/}; mkdir -p "/skeleton/$(dirname "$rel")"; cp "$path" "/skeleton/$rel"; \
    done; \
    for path in $(grep -o '"src_path":"[^"]*"' /tmp/metadata.json | cut -d'"' -f4); do \
        rel=${path#"$root"/}; mkdir -p "/skeleton/$(dirname "$rel")"; \
        echo 'fn main() {}' > "/skeleton/$rel"; echo "$rel" >> /skeleton/.stub-targets; \
    done

# Stage 2: compile the dependencies against the skeleton (a layer that survives source edits),
# then the real sources.
FROM rust:1.88-bookworm AS build
WORKDIR /src
# No debug info and stripped symbols in the image (the release profile keeps some for profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --locked --bin metric-gate
COPY . .
# The real sources may be older than the stand-ins' build (COPY keeps the build context's
# mtimes), so mark every target file new: cargo then rebuilds the workspace's own crates.
RUN xargs touch < .stub-targets \
    && cargo build --release --locked --bin metric-gate \
    && cp target/release/metric-gate /metric-gate
# A stand-in binary would print nothing: make sure the real one was built.
RUN /metric-gate --version | grep '^metric-gate '

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /metric-gate /metric-gate
# glibc's allocator raises its mmap threshold each time a large block is freed (up to 32 MiB);
# past that, a scrape's large short-lived buffers come from heap arenas, which keep the memory
# once they are freed. A fixed 1 MiB threshold hands such buffers back to the kernel. Sidecar on
# the 2x ingress payload (276 MB in, 426k series out), after 8 gzip and 8 plain scrapes: RSS
# 192 MB instead of 233 MB, scrape latency unchanged (median of 8 paired scrapes, within 4%).
ENV GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576
# distroless "nonroot": uid/gid 65532.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/metric-gate"]
