//! Command-line arguments.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "faramesh",
    version,
    about = "Execution gatekeeper for AI agents",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Server URL for client commands (default http://<host>:<port>).
    #[arg(long, global = true, env = "FARAMESH_URL")]
    pub url: Option<String>,
    /// Server host: where client commands connect, and the address `serve` binds [env: FARAMESH_HOST, default 127.0.0.1].
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// Server port: where client commands connect, and the port `serve` listens on [env: FARAMESH_PORT, default 8000].
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// API token for client commands.
    #[arg(long, global = true, env = "FARAMESH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Machine-readable JSON output (no colour).
    #[arg(long, global = true)]
    pub json: bool,
    /// Never colour the output (colour is used only on a terminal anyway).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server: the HTTP API on the embedded SQLite database by default.
    Serve(ServeArgs),
    /// List actions, newest first.
    List(ListArgs),
    /// Show one action in full.
    Get { id: String },
    /// Show an action's ledger events (the hash chain), oldest first.
    Events { id: String },
    /// An action's status transitions, oldest first.
    Logs { id: String },
    /// Follow the live stream, one line per change, until Ctrl-C; reconnects by itself.
    Tail {
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        #[arg(long)]
        agent: Option<String>,
    },
    /// Approve a pending action (fetches its approval token itself).
    #[command(visible_alias = "allow")]
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a pending action.
    Deny {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Start an allowed or approved action (a built-in executor may run it).
    Start { id: String },
    /// Report how an executing action ended.
    Result(ResultArgs),
    /// Submit actions.
    #[command(subcommand)]
    Action(ActionCommand),
    /// Why an action got its decision: the rule that decided (with its line), risk and hashes.
    Explain { id: String },
    /// Ready-to-copy curl commands for an action (get, events, approve, deny).
    Curl { id: String },
    /// Submit a copy of an allowed, approved or succeeded action (context gets `replayed_from`).
    Replay { id: String },
    /// Submit the action described in a YAML or JSON file.
    Apply { file: PathBuf },
    /// Recompute the hash chain of one action's events, or of every action (--all); exit 1 on a break.
    VerifyLog {
        /// The action to check.
        #[arg(required_unless_present_any = ["all", "file"], conflicts_with = "all")]
        id: Option<String>,
        /// Check every action.
        #[arg(long)]
        all: bool,
        /// Check an export written by `faramesh audit export` instead of a server.
        #[arg(long, conflicts_with_all = ["db", "id"])]
        file: Option<PathBuf>,
        /// Check a SQLite database file directly (read-only, no server needed).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// API tokens with roles (agent, approver, admin); needs an admin token.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Audit records.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Re-decide a stored action with the current policy, profile and runtime and compare field
    /// by field; exit 0 when identical, 1 when something differs.
    ReplayDecision { id: String },
    /// Write a Dockerfile and docker-compose.yaml (server + PostgreSQL); never overwrites.
    InitDocker,
    /// Check the setup: configuration, policy, profile, database, port and auth (✓/✗ with the fix).
    Doctor,
    /// Write policies/default.yaml, profiles/default.yaml and .env.example (never overwrites).
    Init,
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Write, check, test and compare policy files, without a server.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Govern MCP servers: every tools/call becomes an action, decided and recorded before the
    /// server sees it.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Govern coding agents through their hooks: each tool call they are about to make is
    /// submitted and decided, and its outcome recorded (`hook install claude-code` sets it up).
    #[command(subcommand)]
    Hook(HookCommand),
    /// The ledger as a transparency log: its signing key, and checking it against signed
    /// checkpoints (verify, prove, watch).
    #[command(subcommand)]
    Log(LogCommand),
    /// Where pending approvals are announced (the server's routes file) and how their
    /// delivery went.
    #[command(subcommand)]
    Notify(NotifyCommand),
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through a route and wait for its delivery; exit 1 if it was not
    /// delivered in time.
    Test {
        route: String,
        /// Seconds to wait for the delivery.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        wait: u64,
    },
    /// Notifications and their delivery state, newest first.
    List {
        /// Only those about this action (its full id).
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        route: Option<String>,
        /// pending, delivered or failed.
        #[arg(long, value_parser = ["pending", "delivered", "failed"])]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The routes of the server's routes file.
    Routes,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Run an MCP server over stdio behind Faramesh. Put this in the MCP client's configuration
    /// in place of the server's command: `faramesh mcp wrap --name files -- npx -y
    /// @modelcontextprotocol/server-filesystem /data`.
    ///
    /// Only MCP messages are written to stdout; logs go to stderr. Exit code: 0 when the client
    /// ends the session, 1 when the server stops first, 2 when it cannot start.
    Wrap(WrapArgs),
    /// The MCP servers `faramesh serve` serves at /mcp/{name} (its servers file), with their
    /// sessions.
    Servers,
}

#[derive(Debug, Args)]
pub struct WrapArgs {
    /// The server's name: the `tool` of its actions, as policies name it.
    #[arg(long)]
    pub name: String,
    /// The actions' agent_id [default: mcp:NAME].
    #[arg(long, env = "FARAMESH_AGENT_ID")]
    pub agent_id: Option<String>,
    /// Seconds a call waits for a human's approval before the client is told to make it again
    /// once approved.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub approval_wait: u64,
    /// Seconds a forwarded call may take before it is failed and cancelled.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub call_timeout: u64,
    /// Keep the tools the policy denies for every call in tools/list.
    #[arg(long)]
    pub show_denied: bool,
    /// The MCP server's command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy (or, with --profile, a profile too) and report every problem with its line and column.
    ///
    /// Exit code: 0 valid, 1 invalid, 2 unreadable.
    Validate {
        /// The policy file.
        file: PathBuf,
        /// Also check this execution profile.
        #[arg(long)]
        profile: Option<PathBuf>,
    },
    /// Decide one action offline, or run a file of test cases against the policy.
    ///
    /// With a cases file: prints PASS/FAIL per case; exit code 0 all pass, 1 any failure,
    /// 2 when the policy or cases file is unreadable or invalid.
    Test(TestArgs),
    /// Compare two policies: rules added, removed, moved and changed; with a cases file, the
    /// decisions that change.
    ///
    /// Exit code: 0 no differences, 1 differences, 2 error.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// A cases file whose actions are decided under both policies.
        cases: Option<PathBuf>,
    },
    /// What the server's shadow policy (`faramesh serve --shadow-policy FILE`) would have
    /// decided otherwise: disagreements by outcome, and the latest ones. Needs a running
    /// server.
    ///
    /// Exit code: 0 no disagreement, 1 some, 2 error or no shadow policy.
    ShadowReport {
        /// Report on the shadow policy with this hash instead of the loaded one.
        #[arg(long)]
        policy_hash: Option<String>,
        /// How many of the latest disagreements to list.
        #[arg(long, default_value_t = 20)]
        latest: u32,
    },
    /// Write a commented starter policy.
    New {
        /// Name of the policy; the file is policies/<name>.yaml unless --output is given.
        name: String,
        /// Where to write the policy.
        #[arg(long, short, conflicts_with = "stdout")]
        output: Option<PathBuf>,
        /// Print the policy instead of writing a file.
        #[arg(long)]
        stdout: bool,
    },
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The policy file.
    pub policy: PathBuf,
    /// A cases file (YAML with `cases:`); omit it to decide the one action given by flags.
    pub cases: Option<PathBuf>,
    /// Tool of the action (e.g. shell, http, stripe).
    #[arg(long, conflicts_with = "cases")]
    pub tool: Option<String>,
    /// Operation of the action (e.g. run, get, refund).
    #[arg(long, visible_alias = "operation", conflicts_with = "cases")]
    pub op: Option<String>,
    /// A params entry, key=value; the value is read as JSON when it parses (5000, true, {"a":1}), else as text.
    #[arg(long = "param", value_name = "KEY=VALUE", conflicts_with = "cases")]
    pub params: Vec<String>,
    /// The whole params object as JSON (entries from --param are added to it).
    #[arg(long, value_name = "JSON", conflicts_with = "cases")]
    pub params_json: Option<String>,
    /// A context entry, key=value (value read as with --param).
    #[arg(long = "context", value_name = "KEY=VALUE", conflicts_with = "cases")]
    pub context: Vec<String>,
    /// Agent id of the action.
    #[arg(long, default_value = faramesh_core::cases::DEFAULT_AGENT, conflicts_with = "cases")]
    pub agent: String,
    /// Decide with this execution profile as well.
    #[arg(long)]
    pub profile: Option<PathBuf>,
}

/// Flags of `faramesh serve`; each overrides its environment variable (which overrides `.env`).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Policy file [env: FARA_POLICY_FILE, default policies/default.yaml].
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Execution profile, used if the file exists [env: FARAMESH_PROFILE_FILE, default profiles/default.yaml].
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Decide with the policy alone, even if a profile file exists.
    #[arg(long, conflicts_with = "profile")]
    pub no_profile: bool,
    /// SQLite database file [env: FARA_SQLITE_PATH, default data/actions.db].
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Reload policy and profile when their files change [env: FARAMESH_HOT_RELOAD=1].
    #[arg(long)]
    pub hot_reload: bool,
    /// Seed a few demonstration actions into an empty database [env: FARAMESH_DEMO=1].
    #[arg(long)]
    pub demo: bool,
    /// Start even if the policy file is missing, denying every action until one is loaded.
    #[arg(long)]
    pub allow_missing_policy: bool,
    /// MCP servers file: each server in it is served at /mcp/{name} [env: FARAMESH_MCP_CONFIG,
    /// default mcp.yaml if it exists].
    #[arg(long, value_name = "FILE")]
    pub mcp_config: Option<PathBuf>,
    /// A candidate policy every submission is also decided with and never enforced; its
    /// disagreements are recorded (`faramesh policy shadow-report`) [env:
    /// FARAMESH_SHADOW_POLICY].
    #[arg(long, value_name = "FILE")]
    pub shadow_policy: Option<PathBuf>,
    /// Routes file: where pending approvals are announced (webhook, Slack, email)
    /// [env: FARAMESH_NOTIFY_FILE, default notify.yaml if it exists].
    #[arg(long, value_name = "FILE")]
    pub notify: Option<PathBuf>,
    /// Log format: `text` or `json` (level from RUST_LOG, default info).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// The statuses an action can have, for the flags that filter by one.
pub const STATUSES: [&str; 8] = [
    "allowed",
    "denied",
    "pending_approval",
    "approved",
    "executing",
    "succeeded",
    "failed",
    "timeout",
];

#[derive(Debug, Args)]
pub struct ListArgs {
    /// How many (1..1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    #[arg(long, value_parser = STATUSES)]
    pub status: Option<String>,
    #[arg(long)]
    pub tool: Option<String>,
    #[arg(long)]
    pub agent: Option<String>,
    /// Only actions whose agent, tool or operation contains this text, ignoring case.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Show full ids and params.
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("how").required(true).args(["success", "failure"]))]
pub struct ResultArgs {
    pub id: String,
    /// The action succeeded.
    #[arg(long)]
    pub success: bool,
    /// The action failed.
    #[arg(long)]
    pub failure: bool,
    /// What went wrong.
    #[arg(long)]
    pub error: Option<String>,
    /// Output as JSON (or text).
    #[arg(long)]
    pub output: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Submit one action from flags.
    Submit {
        #[arg(long)]
        tool: String,
        #[arg(long, visible_alias = "operation")]
        op: String,
        /// A params entry, key=value (value read as JSON when it parses).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// A context entry, key=value.
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
        #[arg(long, default_value = "cli")]
        agent: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Every action followed by its ledger events, as JSON lines on stdout; a whole export ends
    /// with the log's latest signed checkpoint (`faramesh log verify --file` checks it).
    Export {
        /// Only actions created at or after this time (ISO-8601, e.g. 2026-11-01 or 2026-11-01T12:00:00Z).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown only once; the server keeps a hash).
    Create {
        /// A unique name, recorded as `by` when this token approves or denies.
        #[arg(long)]
        name: String,
        /// agent: submit, read, start, report; approver: read, approve, deny; admin: everything.
        #[arg(long, value_enum)]
        role: Role,
    },
    /// List tokens (never their secrets), revoked ones dimmed.
    List,
    /// Revoke a token by name or id; its secret stops working at once. The last admin token
    /// is kept unless --force.
    Revoke {
        name: String,
        /// Revoke it even if it is the last admin token.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Role {
    Agent,
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// The Claude Code hook command: reads a PreToolUse, PostToolUse or PostToolUseFailure
    /// payload on stdin. Before a tool runs it submits the call (tool `claude-code`, operation
    /// the tool's name, params its input) and answers allow, deny (the reason goes to the
    /// model) or ask; afterwards it records the outcome on the same action.
    ///
    /// Fails closed: when Faramesh cannot be asked the call is denied (see --on-unreachable).
    /// A payload it cannot read exits 2, which Claude Code takes as a refusal.
    ClaudeCode(HookArgs),
    /// The Cursor hook command: reads a beforeShellExecution, beforeMCPExecution or
    /// beforeReadFile payload on stdin and answers allow, deny or ask (a file read: allow or
    /// deny). Fails closed like the Claude Code hook.
    Cursor(HookArgs),
    /// Write the hook into the agent's settings, keeping every other setting and hook.
    Install(HookInstallArgs),
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// When the policy requires approval, wait up to this many seconds for a decision in
    /// Faramesh (then deny, withdrawing the action). 0: hand the call to the agent's own
    /// permission prompt instead ("ask").
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub wait: u64,
    /// What to answer when Faramesh cannot be asked.
    #[arg(long, value_enum, default_value_t = Unreachable::Deny)]
    pub on_unreachable: Unreachable,
    /// The actions' agent id (default: the agent's name, `claude-code` or `cursor`).
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unreachable {
    /// Refuse the call.
    Deny,
    /// Leave it to the agent's own permission prompt.
    Ask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookAgent {
    /// Claude Code: .claude/settings.json (project) or ~/.claude/settings.json (user).
    ClaudeCode,
    /// Cursor: .cursor/hooks.json (project) or ~/.cursor/hooks.json (user).
    Cursor,
}

#[derive(Debug, Args)]
pub struct HookInstallArgs {
    pub agent: HookAgent,
    /// Into the project's settings in the current directory (the default).
    #[arg(long, conflicts_with = "user")]
    pub project: bool,
    /// Into the user's settings in the home directory.
    #[arg(long)]
    pub user: bool,
    /// Seconds the hook waits for an approval (passed as --wait; 0: ask in the agent instead).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub wait: u64,
    /// What the hook answers when Faramesh cannot be asked.
    #[arg(long, value_enum, default_value_t = Unreachable::Deny)]
    pub on_unreachable: Unreachable,
    /// The actions' agent id.
    #[arg(long, value_name = "ID")]
    pub agent_id: Option<String>,
    /// Print the file that would be written instead of writing it.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Create the key that signs the log's checkpoints (Ed25519, C2SP signed-note format).
    ///
    /// Writes the signer key (readable by you only) and, beside it with the extension .pub,
    /// the verifier key, which it also prints: give that to whoever checks the log. An existing
    /// key is kept unless --force. Exit code: 0 written, 2 not written.
    Keygen {
        /// The key's name, also the log's origin line in its checkpoints (no spaces or '+');
        /// default `<host name>/faramesh`.
        #[arg(long)]
        name: Option<String>,
        /// Where to write the signer key.
        #[arg(long, default_value = faramesh_server::log_key::DEFAULT_KEY_FILE)]
        key_file: PathBuf,
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// Print the verifier key of a signer key file (refused when others may read the file).
    Key {
        #[arg(long, default_value = faramesh_server::log_key::DEFAULT_KEY_FILE)]
        key_file: PathBuf,
    },
    /// Check the whole ledger against a signed checkpoint, as a third party would: the
    /// signature, every event's record_hash recomputed from its content, and the root rebuilt
    /// from every leaf. Reads the server (--url), a SQLite file (--db) or an export (--file).
    ///
    /// Exit code: 0 the ledger is the one the checkpoint signed, 1 it is not (each problem
    /// named), 2 could not check.
    Verify {
        /// The verifier key (a file, or the key text `name+hash+key`).
        #[arg(long)]
        key: String,
        /// The signed checkpoint to check against (default: the latest the source keeps).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A SQLite database file, read directly (read-only, no server needed).
        #[arg(long, conflicts_with = "file")]
        db: Option<PathBuf>,
        /// An export written by `faramesh audit export` (it carries its checkpoint).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Prove that every event of an action is in the log: each event's record_hash recomputed,
    /// and its inclusion proof checked against a signed checkpoint. Waits a few seconds for a
    /// checkpoint that covers a new action. Exit code: 0 proved, 1 not, 2 could not check.
    Prove {
        /// The action id (or a unique prefix).
        id: String,
        /// The verifier key (a file, or the key text). Without it the server's own key is
        /// used, which proves only that the server agrees with itself.
        #[arg(long)]
        key: Option<String>,
        /// The signed checkpoint to prove against (default: the server's latest).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// How long to wait for a checkpoint that covers the action.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Watch the log as a witness: keep the last checkpoint seen in --state, and check that each
    /// new one is signed and extends it (a consistency proof). Exit code 1 on a fork or a
    /// rollback, with both checkpoints in the report; 2 could not check.
    Watch {
        /// The verifier key (a file, or the key text).
        #[arg(long)]
        key: String,
        /// A folder of the witness's own, where it keeps the last checkpoint it accepted.
        #[arg(long)]
        state: PathBuf,
        /// Seconds between checks.
        #[arg(long, default_value_t = 10)]
        every: u64,
        /// Check once and exit (for cron or CI).
        #[arg(long)]
        once: bool,
    },
}
