//! Checkpoints in the C2SP `tlog-checkpoint` format, signed as C2SP signed notes with Ed25519
//! (the formats of Go's `golang.org/x/mod/sumdb/note` and of Sigstore's and Certificate
//! Transparency's witnesses).
//!
//! A checkpoint is three lines: the log's origin, the tree size in decimal, and the root hash
//! in base64. A signed note is that text, a blank line, and one line per signature:
//! `— <name> <base64(key id ‖ signature)>`, where the key id is the first four bytes of
//! `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)` and 0x01 names Ed25519.
//!
//! Keys are written as Go's `note` package writes them: the verifier key
//! `<name>+<key id, 8 hex digits>+<base64(0x01 ‖ public key)>`, and the signer key
//! `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>`.

use crate::tree::Hash;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// The algorithm byte of Ed25519 in key ids and keys.
const ED25519: u8 = 0x01;

/// What starts a signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A note, a key or a checkpoint that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the key name {0:?} is not valid: it must be non-empty, without spaces or '+'")]
    BadName(String),
    #[error("the key is not valid: {0}")]
    BadKey(String),
    #[error("the note is not valid: {0}")]
    Malformed(String),
    #[error("the note has no signature by {0}")]
    Unsigned(String),
    #[error("the signature by {0} does not verify: the note was changed or signed by another key")]
    BadSignature(String),
    #[error("the checkpoint is not valid: {0}")]
    BadCheckpoint(String),
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::BadName(name.to_owned()));
    }
    Ok(())
}

fn key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public.as_bytes());
    let digest = h.finalize();
    let mut id = [0u8; 4];
    id.copy_from_slice(digest.get(..4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(id)
}

/// A key that signs checkpoints.
pub struct Signer {
    name: String,
    key: SigningKey,
    id: u32,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        write!(f, "Signer({}+{:08x})", self.name, self.id)
    }
}

impl Signer {
    /// A key named `name` from 32 random bytes.
    pub fn new(name: &str, seed: [u8; 32]) -> Result<Signer, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, &key.verifying_key());
        Ok(Signer {
            name: name.to_owned(),
            key,
            id,
        })
    }

    /// Reads a signer key (`PRIVATE+KEY+<name>+<id>+<base64>`).
    pub fn parse(text: &str) -> Result<Signer, NoteError> {
        let bad = |why: &str| NoteError::BadKey(why.to_owned());
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("a signer key starts with PRIVATE+KEY+"))?;
        let (name, id, key) = three_parts(rest).ok_or_else(|| bad("expected name+id+key"))?;
        let bytes = BASE64
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let seed: [u8; 32] = match bytes.as_slice() {
            [ED25519, seed @ ..] => seed
                .try_into()
                .map_err(|_| bad("an Ed25519 key has 32 bytes"))?,
            _ => return Err(bad("only Ed25519 keys (algorithm 1) are supported")),
        };
        let signer = Signer::new(name, seed)?;
        if format!("{:08x}", signer.id) != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(signer)
    }

    /// The signer key, as [`Signer::parse`] reads it. Secret.
    pub fn secret_text(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            BASE64.encode(bytes)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key that verifies this signer's notes.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// `text` (ending in a newline) signed: the signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut bytes = self.id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(bytes)
        ))
    }
}

/// A key that checks signed notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key: VerifyingKey,
    id: u32,
}

impl Verifier {
    /// Reads a verifier key (`<name>+<id>+<base64(0x01 ‖ public key)>`).
    pub fn parse(text: &str) -> Result<Verifier, NoteError> {
        let bad = |why: &str| NoteError::BadKey(why.to_owned());
        let (name, id, key) =
            three_parts(text.trim()).ok_or_else(|| bad("expected name+id+key"))?;
        check_name(name)?;
        let bytes = BASE64
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let public: [u8; 32] = match bytes.as_slice() {
            [ED25519, public @ ..] => public
                .try_into()
                .map_err(|_| bad("an Ed25519 key has 32 bytes"))?,
            _ => return Err(bad("only Ed25519 keys (algorithm 1) are supported")),
        };
        let key =
            VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 public key"))?;
        let verifier = Verifier {
            name: name.to_owned(),
            id: key_id(name, &key),
            key,
        };
        if format!("{:08x}", verifier.id) != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(verifier)
    }

    /// The verifier key, as [`Verifier::parse`] reads it.
    pub fn text(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(bytes))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The note's text, once a signature by this key verifies. Signatures by other keys (a
    /// witness's cosignature, say) are left alone.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let bad = |why: &str| NoteError::Malformed(why.to_owned());
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = note.get(..=split).ok_or_else(|| bad("no text"))?;
        let signatures = note.get(split + 2..).unwrap_or_default();
        if !signatures.ends_with('\n') {
            return Err(bad("the last signature line does not end in a newline"));
        }
        check_text(text)?;
        for line in signatures.lines() {
            let rest = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| bad("a signature line starts with an em dash and a space"))?;
            let (name, encoded) = rest
                .split_once(' ')
                .ok_or_else(|| bad("a signature line is `— <name> <signature>`"))?;
            let bytes = BASE64
                .decode(encoded)
                .map_err(|_| bad("a signature is not base64"))?;
            let (id, signature) = match bytes.split_first_chunk::<4>() {
                Some((id, signature)) => (u32::from_be_bytes(*id), signature),
                None => return Err(bad("a signature is shorter than its key id")),
            };
            if name != self.name || id != self.id {
                continue;
            }
            let signature = Signature::from_slice(signature)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            self.key
                .verify(text.as_bytes(), &signature)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            return Ok(text);
        }
        Err(NoteError::Unsigned(self.name.clone()))
    }
}

fn three_parts(text: &str) -> Option<(&str, &str, &str)> {
    let mut parts = text.splitn(3, '+');
    let (name, id, key) = (parts.next()?, parts.next()?, parts.next()?);
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((name, id, key))
}

/// Note text: UTF-8 ending in a newline, no control characters but newlines, no blank line.
fn check_text(text: &str) -> Result<(), NoteError> {
    let bad = |why: &str| NoteError::Malformed(why.to_owned());
    if !text.ends_with('\n') {
        return Err(bad("the text must end in a newline"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad("the text holds a control character"));
    }
    if text.starts_with('\n') || text.contains("\n\n") {
        return Err(bad("the text holds a blank line"));
    }
    Ok(())
}

/// A checkpoint: the log's origin, its size, and its root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint's text (the body of its signed note).
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Reads a checkpoint's text; extension lines after the root are allowed and ignored.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |why: &str| NoteError::BadCheckpoint(why.to_owned());
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size_text = lines.next().ok_or_else(|| bad("no size line"))?;
        let canonical = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        let size: u64 = canonical
            .then(|| size_text.parse().ok())
            .flatten()
            .ok_or_else(|| bad("the size is not a decimal number"))?;
        let root_text = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root: Hash = BASE64
            .decode(root_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("the root hash is not 32 bytes of base64"))?;
        if !text.ends_with('\n') {
            return Err(bad("the text must end in a newline"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}
