# Portcullis's container image: compiled in the Rust image, run in a slim Debian as uid/gid 10001.
#
#   podman build -t portcullis .        (or docker build)
#   podman run -d -p 5001:5001 -e PORTCULLIS__SERVER__PUBLIC_URL=http://HOST:5001 \
#       -v portcullis-data:/var/lib/portcullis/data -v portcullis-keys:/var/lib/portcullis/keys \
#       portcullis
#
# The build stage's only product is /src/target/release/portcullis: a build without internet access
# can put a binary built on a bookworm host at that path in a directory DIR and skip this stage with
# `podman build --build-context build=DIR` (scripts/container-test.sh does so).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Cargo.toml declares the benches: cargo reads their files even for `cargo build`.
COPY benches benches
COPY src src
COPY migrations migrations
COPY policy.example.toml policy.example.toml
RUN cargo build --release --locked --bin portcullis && strip target/release/portcullis

FROM debian:bookworm-slim
# No package is installed: the binary needs only glibc, and the health check is the binary's
# own port probed with bash. The home holds the two volumes, created here so that a new named
# volume starts owned by the service's user.
RUN groupadd --gid 10001 portcullis \
    && useradd --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/portcullis --shell /usr/sbin/nologin portcullis \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/portcullis /var/lib/portcullis/data \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/portcullis/keys
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
USER 10001:10001
WORKDIR /var/lib/portcullis
# 0.0.0.0 is where the container listens, not where clients reach it: set
# PORTCULLIS__SERVER__PUBLIC_URL (the server warns at start while it is unset).
ENV PORTCULLIS__SERVER__LISTEN=0.0.0.0:5001 \
    PORTCULLIS__DATABASE__URL=sqlite:///var/lib/portcullis/data/portcullis.db \
    PORTCULLIS__KEYS__DIR=/var/lib/portcullis/keys
VOLUME ["/var/lib/portcullis/data", "/var/lib/portcullis/keys"]
EXPOSE 5001
# /healthz answers 200 while the process serves; bash's /dev/tcp needs no curl in the image.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5001 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["portcullis"]
CMD ["serve"]
