//! `faramesh log`: the transparency log's signing key, and checking the log (see `log_check`
//! and `log_witness`).

use crate::cli::{Global, LogCommand};
use crate::server_commands::with_client;
use crate::{log_check, log_witness, output, Status};
use anstream::{eprintln, println};
use faramesh_client::ClientError;
use faramesh_server::log_key;

pub fn run(command: &LogCommand, global: &Global) -> anyhow::Result<Status> {
    match command {
        LogCommand::Verify {
            key,
            checkpoint,
            db,
            file,
        } => {
            let checkpoint = checkpoint.as_deref();
            let offline =
                |check: &dyn Fn(&faramesh_tlog::Verifier) -> Result<Status, ClientError>| {
                    match log_check::read_key(key).and_then(|verifier| check(&verifier)) {
                        Ok(status) => Ok(status),
                        Err(e) => {
                            output::error(e);
                            Ok(Status::Error)
                        }
                    }
                };
            if let Some(db) = db {
                return offline(&|v| log_check::verify_db(db, v, checkpoint, global));
            }
            if let Some(file) = file {
                return offline(&|v| log_check::verify_export(file, v, checkpoint, global));
            }
            return with_client(global, |client| async move {
                let verifier = log_check::read_key(key)?;
                log_check::verify_server(&client, &verifier, checkpoint, global).await
            });
        }
        LogCommand::Prove {
            id,
            key,
            checkpoint,
            wait,
        } => {
            return with_client(global, |client| async move {
                log_check::prove(
                    &client,
                    id,
                    key.as_deref(),
                    checkpoint.as_deref(),
                    std::time::Duration::from_secs(*wait),
                    global,
                )
                .await
            });
        }
        LogCommand::Watch {
            key,
            state,
            every,
            once,
        } => {
            return with_client(global, |client| async move {
                let every = std::time::Duration::from_secs((*every).max(1));
                log_witness::watch(&client, key, state, every, *once, global).await
            });
        }
        LogCommand::Keygen { .. } | LogCommand::Key { .. } => {}
    }
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
        _ => return Ok(Status::Error),
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
