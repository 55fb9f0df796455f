//! `faramesh log`: the transparency log's signing key.

use crate::cli::{Global, LogCommand};
use crate::{output, Status};
use anstream::{eprintln, println};
use faramesh_server::log_key;

pub fn run(command: &LogCommand, global: &Global) -> anyhow::Result<Status> {
    let (signer, written) = match command {
        LogCommand::Keygen {
            name,
            key_file,
            force,
        } => {
            let name = name.clone().unwrap_or_else(log_key::default_name);
            (log_key::generate(key_file, &name, *force), Some(key_file))
        }
        LogCommand::Key { key_file } => (log_key::read(key_file), None),
    };
    let signer = match signer {
        Ok(signer) => signer,
        Err(e) => {
            output::error(e);
            return Ok(Status::Error);
        }
    };
    let verifier = signer.verifier().text();
    if global.json {
        let report = serde_json::json!({
            "name": signer.name(),
            "verifier_key": verifier,
            "key_file": written,
            "verifier_key_file": written.map(|f| f.with_extension("pub")),
        });
        println!("{}", output::pretty(&report));
        return Ok(Status::Success);
    }
    if let Some(file) = written {
        eprintln!(
            "{} wrote the signing key to {} (private) and the verifier key to {}",
            output::paint(output::GOOD, "✓"),
            file.display(),
            file.with_extension("pub").display()
        );
    }
    println!("{verifier}");
    Ok(Status::Success)
}
