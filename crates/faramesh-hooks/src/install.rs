//! Adding the hook to an agent's settings file without disturbing anything else in it.
//!
//! Claude Code reads `hooks.<Event>` as a list of `{matcher, hooks: [{type, command,
//! timeout}]}` groups (`.claude/settings.json` in a project, `~/.claude/settings.json` for the
//! user); Cursor reads `hooks.<event>` as a list of `{command}` (`.cursor/hooks.json`,
//! `~/.cursor/hooks.json`, with `"version": 1`). A hook of ours already there (its command
//! runs `hook claude-code` or `hook cursor`) is updated in place, never added twice; every
//! other key and hook is kept as it was.

use serde_json::{json, Map, Value};

/// What installing changed, event by event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Installed {
    /// The settings file's new text.
    pub text: String,
    pub added: Vec<&'static str>,
    pub updated: Vec<&'static str>,
    /// Events whose hook was already exactly this one.
    pub unchanged: Vec<&'static str>,
}

/// A settings file that cannot be changed safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("it is not valid JSON ({0}); fix or move it first")]
    NotJson(String),
    #[error("{0} is not a JSON object; fix or move the file first")]
    NotAnObject(String),
}

/// The events Claude Code runs the hook for.
const CLAUDE_CODE_EVENTS: [&str; 3] = ["PreToolUse", "PostToolUse", "PostToolUseFailure"];

/// Claude Code's settings (`existing` is the file's text, if any) with the hook command added
/// for every tool (`timeout` in seconds, for `PreToolUse`, which may wait for an approval).
pub fn claude_code(
    existing: Option<&str>,
    command: &str,
    timeout: u64,
) -> Result<Installed, SettingsError> {
    let mut settings = parse(existing)?;
    let hooks = object_at(&mut settings, "hooks")?;
    let mut installed = Installed::default();
    for event in CLAUDE_CODE_EVENTS {
        let mut hook = json!({"type": "command", "command": command});
        if event == "PreToolUse" {
            hook["timeout"] = json!(timeout);
        }
        let groups = list_at(hooks, event)?;
        let ours = groups.iter_mut().find_map(|group| {
            group
                .get_mut("hooks")
                .and_then(Value::as_array_mut)
                .and_then(|hooks| hooks.iter_mut().find(|h| is_ours(h, "claude-code")))
        });
        match ours {
            Some(existing) if *existing == hook => installed.unchanged.push(event),
            Some(existing) => {
                *existing = hook;
                installed.updated.push(event);
            }
            None => {
                groups.push(json!({"matcher": "*", "hooks": [hook]}));
                installed.added.push(event);
            }
        }
    }
    installed.text = text(&settings);
    Ok(installed)
}

/// Cursor's hooks file (`existing` is its text, if any) with the hook command added for the
/// events it decides.
pub fn cursor(existing: Option<&str>, command: &str) -> Result<Installed, SettingsError> {
    let mut settings = parse(existing)?;
    if let Value::Object(map) = &mut settings {
        map.entry("version").or_insert(json!(1));
    }
    let hooks = object_at(&mut settings, "hooks")?;
    let mut installed = Installed::default();
    for event in crate::cursor::EVENTS {
        let hook = json!({"command": command});
        let entries = list_at(hooks, event)?;
        match entries.iter_mut().find(|h| is_ours(h, "cursor")) {
            Some(existing) if *existing == hook => installed.unchanged.push(event),
            Some(existing) => {
                *existing = hook;
                installed.updated.push(event);
            }
            None => {
                entries.push(hook);
                installed.added.push(event);
            }
        }
    }
    installed.text = text(&settings);
    Ok(installed)
}

fn parse(existing: Option<&str>) -> Result<Value, SettingsError> {
    let Some(text) = existing.filter(|t| !t.trim().is_empty()) else {
        return Ok(Value::Object(Map::new()));
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| SettingsError::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(SettingsError::NotAnObject("the file".into()));
    }
    Ok(value)
}

/// The object under `key`, created when absent.
fn object_at<'a>(
    value: &'a mut Value,
    key: &str,
) -> Result<&'a mut Map<String, Value>, SettingsError> {
    let Value::Object(map) = value else {
        return Err(SettingsError::NotAnObject("the file".into()));
    };
    map.entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| SettingsError::NotAnObject(format!("`{key}`")))
}

/// The list under `key`, created when absent.
fn list_at<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Vec<Value>, SettingsError> {
    map.entry(key)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| SettingsError::NotAnObject(format!("`hooks.{key}` (it must be a list)")))
}

/// Whether a hook entry runs our hook for `agent`.
fn is_ours(hook: &Value, agent: &str) -> bool {
    hook.get("command")
        .and_then(Value::as_str)
        .is_some_and(|command| {
            let words: Vec<&str> = command.split_whitespace().collect();
            words
                .windows(2)
                .any(|pair| pair.first() == Some(&"hook") && pair.get(1) == Some(&agent))
                && words
                    .first()
                    .is_some_and(|program| program.trim_matches('\'').ends_with("faramesh"))
        })
}

fn text(settings: &Value) -> String {
    let mut text = serde_json::to_string_pretty(settings).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_hooks_and_settings_are_kept_and_ours_is_added_once() {
        let existing = r#"{
          "model": "opus",
          "permissions": {"allow": ["Bash(npm test)"]},
          "hooks": {
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./check.sh"}]}],
            "Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]
          }
        }"#;
        let first = claude_code(
            Some(existing),
            "/usr/bin/faramesh hook claude-code --wait 300",
            330,
        )
        .unwrap();
        assert_eq!(
            first.added,
            ["PreToolUse", "PostToolUse", "PostToolUseFailure"]
        );
        let settings: Value = serde_json::from_str(&first.text).unwrap();
        assert_eq!(settings["model"], json!("opus"));
        assert_eq!(
            settings["permissions"],
            json!({"allow": ["Bash(npm test)"]})
        );
        assert_eq!(
            settings["hooks"]["Stop"],
            json!([{"hooks": [{"type": "command", "command": "say done"}]}])
        );
        assert_eq!(
            settings["hooks"]["PreToolUse"],
            json!([
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "./check.sh"}]},
                {"matcher": "*", "hooks": [{"type": "command", "command": "/usr/bin/faramesh hook claude-code --wait 300", "timeout": 330}]}
            ])
        );

        let again = claude_code(
            Some(&first.text),
            "/usr/bin/faramesh hook claude-code --wait 300",
            330,
        )
        .unwrap();
        assert_eq!(again.unchanged.len(), 3);
        assert_eq!(again.text, first.text);

        let changed = claude_code(Some(&first.text), "/opt/faramesh hook claude-code", 90).unwrap();
        assert_eq!(changed.updated.len(), 3);
        let settings: Value = serde_json::from_str(&changed.text).unwrap();
        assert_eq!(settings["hooks"]["PreToolUse"].as_array().unwrap().len(), 2);
        assert_eq!(
            settings["hooks"]["PreToolUse"][1]["hooks"][0]["timeout"],
            json!(90)
        );
    }

    #[test]
    fn cursor_gets_a_versioned_file_with_each_event() {
        let made = cursor(None, "faramesh hook cursor").unwrap();
        let file: Value = serde_json::from_str(&made.text).unwrap();
        assert_eq!(file["version"], json!(1));
        for event in crate::cursor::EVENTS {
            assert_eq!(
                file["hooks"][event],
                json!([{"command": "faramesh hook cursor"}])
            );
        }
        let kept = cursor(
            Some(
                r#"{"version": 1, "hooks": {"beforeShellExecution": [{"command": "./audit.sh"}]}}"#,
            ),
            "faramesh hook cursor",
        )
        .unwrap();
        let file: Value = serde_json::from_str(&kept.text).unwrap();
        assert_eq!(
            file["hooks"]["beforeShellExecution"],
            json!([{"command": "./audit.sh"}, {"command": "faramesh hook cursor"}])
        );
    }

    #[test]
    fn a_file_that_cannot_be_merged_is_refused() {
        assert!(matches!(
            claude_code(Some("{nope"), "faramesh hook claude-code", 60),
            Err(SettingsError::NotJson(_))
        ));
        assert!(matches!(
            claude_code(Some("[]"), "faramesh hook claude-code", 60),
            Err(SettingsError::NotAnObject(_))
        ));
        assert_eq!(
            claude_code(Some(r#"{"hooks": []}"#), "faramesh hook claude-code", 60),
            Err(SettingsError::NotAnObject("`hooks`".into()))
        );
        assert_eq!(
            cursor(
                Some(r#"{"hooks": {"beforeReadFile": {}}}"#),
                "faramesh hook cursor"
            ),
            Err(SettingsError::NotAnObject(
                "`hooks.beforeReadFile` (it must be a list)".into()
            ))
        );
    }
}
