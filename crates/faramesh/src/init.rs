//! `faramesh init`: the files a new deployment starts from. Existing files are never touched.

use crate::output::{self, paint};
use crate::Status;
use anstream::println;
use anyhow::Context;
use std::path::Path;

const POLICY: &str = include_str!("../../../policies/default.yaml");
const PROFILE: &str = include_str!("../../../profiles/default.yaml");
const ENV_EXAMPLE: &str = "\\
# Copy to .env and adjust; real environment variables and `faramesh serve` flags win over it.
# FARAMESH_HOST=127.0.0.1
# FARAMESH_PORT=8000
# FARAMESH_TOKEN=change-me            # admin bearer token(s), comma-separated; unset = open API
# FARA_POLICY_FILE=policies/default.yaml
# FARAMESH_PROFILE_FILE=profiles/default.yaml
# FARA_SQLITE_PATH=data/actions.db
# FARAMESH_EXECUTORS=shell            # shell, http, shell,http or none
# FARAMESH_ACTION_TIMEOUT=300
# FARAMESH_APPROVAL_TTL=3600
# FARAMESH_HOT_RELOAD=1
";

pub fn run() -> anyhow::Result<Status> {
    for (path, text) in [
        ("policies/default.yaml", POLICY),
        ("profiles/default.yaml", PROFILE),
        (".env.example", ENV_EXAMPLE),
    ] {
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
    println!("next: check the policy with `faramesh policy validate policies/default.yaml`, then start the server with `faramesh serve`");
    Ok(Status::Success)
}
