//! `faramesh token create|list|revoke`: API tokens with roles, managed through the server.

use crate::cli::{Global, TokenCommand};
use crate::output::{self, paint, pretty};
use crate::table;
use crate::Status;
use anstream::{eprintln, println};
use faramesh_client::{Client, ClientError};

pub async fn run(
    command: &TokenCommand,
    client: &Client,
    global: &Global,
) -> Result<Status, ClientError> {
    match command {
        TokenCommand::Create { name, role } => {
            let created = client.create_token(name, role.as_str()).await?;
            if global.json {
                println!("{}", pretty(&created));
                return Ok(Status::Success);
            }
            println!("{}", created.token);
            eprintln!(
                "{} created token {:?} with the {} role. The secret above is shown only this once; store it now.",
                paint(output::GOOD, "✓"),
                created.info.name,
                created.info.role
            );
            eprintln!(
                "  use it with: export FARAMESH_TOKEN=<secret>   (or --token, or `Authorization: Bearer <secret>`)"
            );
            Ok(Status::Success)
        }
        TokenCommand::List => {
            let tokens = client.list_tokens().await?;
            if global.json {
                println!("{}", pretty(&tokens));
                return Ok(Status::Success);
            }
            if tokens.is_empty() {
                println!("no API tokens (create one with `faramesh token create --name NAME --role agent|approver|admin`)");
                return Ok(Status::Success);
            }
            let time = |t: &str| t.get(..19).unwrap_or(t).replace('T', " ");
            let mut rows = crate::table::new(&["NAME", "ROLE", "CREATED", "REVOKED", "ID"]);
            for t in &tokens {
                let revoked = t.revoked_at.as_deref().map_or_else(|| "-".to_owned(), time);
                let cells = [
                    t.name.clone(),
                    t.role.clone(),
                    time(&t.created_at),
                    revoked,
                    t.id.clone(),
                ];
                if t.revoked_at.is_some() {
                    rows.add_row(cells.map(|c| paint(output::DIM, c)));
                } else {
                    rows.add_row(cells);
                }
            }
            println!("{}", table::render(&rows));
            Ok(Status::Success)
        }
        TokenCommand::Revoke { name, force } => {
            let revoked = client.revoke_token_forced(name, *force).await?;
            if global.json {
                println!("{}", pretty(&revoked));
            } else {
                println!(
                    "{} revoked token {:?} ({}); requests with its secret now get 401",
                    paint(output::GOOD, "✓"),
                    revoked.name,
                    revoked.role
                );
            }
            Ok(Status::Success)
        }
    }
}
