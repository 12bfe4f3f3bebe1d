# Multi-stage build: compile in the Rust image, run in a slim Debian as an unprivileged user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY policy.example.toml policy.example.toml
RUN cargo build --release --locked && strip target/release/portcullis

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/portcullis --create-home portcullis
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
USER portcullis
WORKDIR /var/lib/portcullis
ENV PORTCULLIS__SERVER__LISTEN=0.0.0.0:5001 \
    PORTCULLIS__DATABASE__URL=sqlite:///var/lib/portcullis/data/portcullis.db \
    PORTCULLIS__KEYS__DIR=/var/lib/portcullis/keys
VOLUME ["/var/lib/portcullis/data", "/var/lib/portcullis/keys"]
EXPOSE 5001
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://127.0.0.1:5001/healthz || exit 1
ENTRYPOINT ["portcullis"]
CMD ["serve"]
