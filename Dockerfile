# walletd: build with the Rust toolchain, run on a slim Debian as a non-root user.

FROM rust:1-bookworm AS builder
WORKDIR /build

# Dependencies first, against stub sources, so that a change to walletd's own code
# does not rebuild every crate.
COPY Cargo.toml Cargo.lock ./
COPY projections/Cargo.toml projections/
RUN mkdir -p src projections/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs projections/src/lib.rs \
 && cargo build --release --locked -p walletd \
 && rm -rf src projections/src

COPY src src
COPY projections/src projections/src
COPY migrations migrations
# COPY keeps the files' own modification times, which can be older than the stub
# build; touch them so cargo rebuilds both crates from the real sources.
RUN find src projections/src -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p walletd

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 walletd \
 && useradd --system --uid 10001 --gid walletd --home-dir /var/lib/walletd \
            --create-home --shell /usr/sbin/nologin walletd
COPY --from=builder /build/target/release/walletd /usr/local/bin/walletd

USER walletd
# The default SQLite database (walletd.db) and its key file are created here.
WORKDIR /var/lib/walletd
ENV WALLETD_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["walletd"]
CMD ["serve"]
