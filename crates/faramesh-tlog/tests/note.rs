//! Signed checkpoints: the C2SP signed-note and tlog-checkpoint formats, checked against Go's
//! `golang.org/x/mod/sumdb/note` test key and its documented key id, and refused when altered.

use faramesh_tlog::{Checkpoint, NoteError, Signer, Verifier};

// The example key pair of Go's note package documentation.
const GO_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
// Go's documented signed note for that key.
const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#[test]
fn go_notes_keys_and_signatures_read_and_verify() {
    let signer = Signer::parse(GO_SKEY).unwrap();
    let verifier = Verifier::parse(GO_VKEY).unwrap();
    assert_eq!(signer.verifier(), verifier);
    assert_eq!(signer.secret_text(), GO_SKEY);
    assert_eq!(verifier.text(), GO_VKEY);
    assert_eq!(
        verifier.open(GO_NOTE).unwrap(),
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    );
    // Ed25519 signatures are deterministic: signing the same text gives Go's note exactly.
    let text = verifier.open(GO_NOTE).unwrap();
    assert_eq!(signer.sign(text).unwrap(), GO_NOTE);
}

#[test]
fn a_checkpoint_round_trips_and_any_change_is_refused() {
    let signer = Signer::new("faramesh.example/log", [7; 32]).unwrap();
    let checkpoint = Checkpoint {
        origin: "faramesh.example/log".into(),
        size: 1234,
        root: [9; 32],
    };
    let text = checkpoint.text();
    assert_eq!(
        text,
        "faramesh.example/log\n1234\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"
    );
    let note = signer.sign(&text).unwrap();
    let verifier = Verifier::parse(&signer.verifier().text()).unwrap();
    assert_eq!(
        Checkpoint::parse(verifier.open(&note).unwrap()).unwrap(),
        checkpoint
    );

    // Another size, another root, another key: each refused.
    let altered = note.replacen("1234", "1235", 1);
    assert_eq!(
        verifier.open(&altered),
        Err(NoteError::BadSignature("faramesh.example/log".into()))
    );
    let other = Signer::new("faramesh.example/log", [8; 32])
        .unwrap()
        .verifier();
    assert_eq!(
        other.open(&note),
        Err(NoteError::Unsigned("faramesh.example/log".into()))
    );
    assert!(matches!(
        verifier.open("no signatures\n"),
        Err(NoteError::Malformed(_))
    ));

    for bad in [
        "",
        "origin\n",
        "origin\n01\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
        "origin\n5\nshort\n",
        "origin\n5\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
    ] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
    // Extension lines are allowed.
    let extended = format!("{text}extra line\n");
    assert_eq!(Checkpoint::parse(&extended).unwrap(), checkpoint);
}

#[test]
fn keys_that_cannot_be_right_are_refused() {
    assert!(matches!(
        Signer::new("has space", [1; 32]),
        Err(NoteError::BadName(_))
    ));
    assert!(matches!(
        Signer::new("a+b", [1; 32]),
        Err(NoteError::BadName(_))
    ));
    assert!(matches!(
        Verifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::BadKey(_))
    ));
    assert!(matches!(
        Verifier::parse("PeterNeumann+c74f20a3+AhpjZA=="),
        Err(NoteError::BadKey(_))
    ));
    assert!(matches!(Signer::parse(GO_VKEY), Err(NoteError::BadKey(_))));
    // A signer's Debug never shows the key.
    let shown = format!("{:?}", Signer::parse(GO_SKEY).unwrap());
    assert!(!shown.contains("AYEKFALV"), "{shown}");
}
