//! `faramesh init`: the files a new deployment starts from. Existing files are never touched.

use crate::output::{self, paint};
use crate::Status;
use anstream::println;
use anyhow::Context;
use std::path::Path;

const POLICY: &str = include_str!("../../../policies/default.yaml");
const PROFILE: &str = include_str!("../../../profiles/default.yaml");
const ENV_EXAMPLE: &str = "\
# Copy to .env and uncomment what you need; real environment variables and
# `faramesh serve` flags win over it. `faramesh serve` logs which .env it read.
# FARAMESH_HOST=127.0.0.1
# FARAMESH_PORT=8000
# Admin bearer token(s), comma-separated; unset = open API (loopback only).
# FARAMESH_TOKEN=change-me
# Browser origins that may call the API (CORS is off when unset), and extra host
# names an open server answers besides localhost.
# FARAMESH_CORS_ORIGINS=https://dashboard.example.com
# FARAMESH_ALLOWED_HOSTS=gatekeeper.internal
# FARA_POLICY_FILE=policies/default.yaml
# FARAMESH_PROFILE_FILE=profiles/default.yaml
# FARA_SQLITE_PATH=data/actions.db
# Built-in executors: shell, http, shell,http or none.
# FARAMESH_EXECUTORS=shell
# FARAMESH_ACTION_TIMEOUT=300
# FARAMESH_APPROVAL_TTL=3600
# FARAMESH_HOT_RELOAD=1
";

pub fn run() -> anyhow::Result<Status> {
    write_new(&[
        ("policies/default.yaml", POLICY),
        ("profiles/default.yaml", PROFILE),
        (".env.example", ENV_EXAMPLE),
    ])?;
    println!("next: check the policy with `faramesh policy validate policies/default.yaml`, then start the server with `faramesh serve`");
    Ok(Status::Success)
}

const DOCKERFILE: &str = "\
# Builds the faramesh binary and runs the server.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p faramesh

FROM debian:bookworm-slim
RUN useradd --system --home /app faramesh && mkdir -p /app/data && chown faramesh /app/data
WORKDIR /app
COPY --from=build /src/target/release/faramesh /usr/local/bin/faramesh
COPY policies ./policies
COPY profiles ./profiles
USER faramesh
EXPOSE 8000
CMD [\"faramesh\", \"serve\", \"--host\", \"0.0.0.0\"]
";

const COMPOSE: &str = "\
# The Faramesh server with PostgreSQL. Start with: docker compose up --build
services:
  faramesh:
    build: .
    ports:
      - \"8000:8000\"
    environment:
      FARAMESH_TOKEN: change-me
      FARA_DB_BACKEND: postgres
      FARA_POSTGRES_DSN: postgres://faramesh:faramesh@postgres:5432/faramesh
    depends_on:
      postgres:
        condition: service_healthy
    restart: unless-stopped
  postgres:
    image: postgres:16
    environment:
      POSTGRES_USER: faramesh
      POSTGRES_PASSWORD: faramesh
      POSTGRES_DB: faramesh
    healthcheck:
      test: [\"CMD-SHELL\", \"pg_isready -U faramesh -d faramesh\"]
      interval: 2s
      retries: 30
    volumes:
      - pgdata:/var/lib/postgresql/data
volumes:
  pgdata:
";

/// `faramesh init-docker`.
pub fn docker() -> anyhow::Result<Status> {
    write_new(&[("Dockerfile", DOCKERFILE), ("docker-compose.yaml", COMPOSE)])?;
    println!("next: set FARAMESH_TOKEN in docker-compose.yaml, then `docker compose up --build`");
    Ok(Status::Success)
}

/// Writes each file that does not exist yet and says what it did.
fn write_new(files: &[(&str, &str)]) -> anyhow::Result<()> {
    for &(path, text) in files {
        let path = Path::new(path);
        if path.exists() {
            println!(
                "{} {} exists; left as it is",
                paint(output::DIM, "·"),
                path.display()
            );
            continue;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{} wrote {}", paint(output::GOOD, "✓"), path.display());
    }
    Ok(())
}
