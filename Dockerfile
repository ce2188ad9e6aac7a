# metric-gate container image.
#
#   docker build -t metric-gate .
#   docker run --rm -p 8080:8080 metric-gate -H http://host.docker.internal:10254/metrics
#
# Same entrypoint and flags as the Go original's image: arguments go straight to the binary.
#
# Build stage: the crate's MSRV toolchain on Debian bookworm. The binary links glibc
# dynamically (glibc's allocator is markedly faster than musl's for this allocation-heavy
# workload), so the runtime image is distroless "cc" (glibc + libgcc, no shell), which also
# provides the non-root user.
FROM rust:1.85-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches examples \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/pipeline.rs \
    && cargo fetch --locked
COPY . .
# No debug info and stripped symbols in the image (the release profile keeps some for profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN cargo build --release --locked --bin metric-gate \
    && cp target/release/metric-gate /metric-gate \
    && /metric-gate --version

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /metric-gate /metric-gate
# distroless "nonroot": uid/gid 65532.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/metric-gate"]
