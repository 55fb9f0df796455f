//! `faramesh policy new <name>`: a commented starter policy.

use crate::output::{self, paint};
use crate::Status;
use anstream::{print, println};
use anyhow::{bail, Context};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The starter policy; `{name}` is replaced by the policy's name.
const TEMPLATE: &str = include_str!("starter.yaml");

pub fn run(name: &str, output_path: Option<&Path>, to_stdout: bool) -> anyhow::Result<Status> {
    if name.trim().is_empty() || name.contains(['/', '\\']) && output_path.is_none() {
        bail!("the policy name {name:?} must be a plain name such as `payments`; use --output to choose a path");
    }
    let text = TEMPLATE.replace("{name}", name);
    if to_stdout {
        print!("{text}");
        return Ok(Status::Success);
    }
    let path = output_path.map_or_else(
        || PathBuf::from("policies").join(format!("{name}.yaml")),
        Path::to_path_buf,
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} already exists; choose another name or --output path (it is never overwritten)",
                path.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("{} wrote {}", paint(output::GOOD, "✓"), path.display());
    let shown = crate::output::shell_word(&path.display().to_string());
    println!("  check it:  faramesh policy validate {shown}");
    println!(
        "  try it:    faramesh policy test {shown} --tool http --op get --param url=https://example.com"
    );
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::TEMPLATE;

    #[test]
    fn the_starter_policy_is_valid_and_warning_free() {
        let policy =
            faramesh_core::Policy::parse("starter.yaml", &TEMPLATE.replace("{name}", "starter"))
                .expect("valid");
        assert!(policy.warnings().is_empty(), "{:?}", policy.warnings());
        assert!(policy.rules().len() >= 3);
    }
}
