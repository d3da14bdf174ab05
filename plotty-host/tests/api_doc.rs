//! `docs/api.md` is kept true: every route the router registers ([`Endpoint::ALL`], the list the
//! router itself is built from) and every WebSocket message type (what the server sends, learnt
//! from serde through `every_server_message`; what it accepts, [`CLIENT_TYPES`], the list its
//! parser checks first) has a heading there, and every heading names something that exists.

use std::collections::BTreeSet;

use plotty_host::api::Endpoint;
use plotty_host::api::protocol::{self, CLIENT_TYPES};

/// The reference, read at test time from the repository (not copied anywhere).
fn reference() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The `###` headings of the reference, each with the `##` section it is in.
fn headings(text: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if let Some(s) = line.strip_prefix("## ") {
            section = s.trim().to_owned();
        } else if let Some(h) = line.strip_prefix("### ") {
            out.push((section.clone(), h.trim().to_owned()));
        }
    }
    out
}

/// The message types documented under `section` (headings written as `` `type` ``).
fn documented_types(text: &str, section: &str) -> BTreeSet<String> {
    headings(text)
        .into_iter()
        .filter(|(s, _)| s == section)
        .map(|(_, h)| {
            h.strip_prefix('`')
                .and_then(|h| h.strip_suffix('`'))
                .unwrap_or_else(|| panic!("`{h}` under {section} is not written as `type`"))
                .to_owned()
        })
        .collect()
}

fn missing_and_extra(
    code: &BTreeSet<String>,
    doc: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    (
        code.difference(doc).cloned().collect(),
        doc.difference(code).cloned().collect(),
    )
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let text = reference();
    let code: BTreeSet<String> = Endpoint::ALL
        .iter()
        .map(|e| format!("{} {}", e.method(), e.path()))
        .collect();
    assert_eq!(code.len(), Endpoint::ALL.len(), "a route is listed twice");
    let doc: BTreeSet<String> = headings(&text)
        .into_iter()
        .filter(|(s, _)| s == "HTTP endpoints")
        .map(|(_, h)| h)
        .collect();
    assert!(
        !doc.is_empty(),
        "docs/api.md has no `## HTTP endpoints` section"
    );
    let (missing, extra) = missing_and_extra(&code, &doc);
    assert!(missing.is_empty(), "routes not in docs/api.md: {missing:?}");
    assert!(
        extra.is_empty(),
        "docs/api.md documents routes that do not exist: {extra:?}"
    );
}

#[test]
fn every_server_message_type_is_documented_and_exists() {
    let text = reference();
    let code: BTreeSet<String> = protocol::every_server_message()
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(&protocol::encode(m)).unwrap();
            v["type"].as_str().unwrap().to_owned()
        })
        .collect();
    let doc = documented_types(&text, "WebSocket: server to client");
    let (missing, extra) = missing_and_extra(&code, &doc);
    assert!(
        missing.is_empty(),
        "server messages not in docs/api.md: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "docs/api.md documents server messages that do not exist: {extra:?}"
    );
}

#[test]
fn every_client_message_type_is_documented_and_accepted() {
    let text = reference();
    let code: BTreeSet<String> = CLIENT_TYPES.iter().map(|t| (*t).to_owned()).collect();
    let doc = documented_types(&text, "WebSocket: client to server");
    let (missing, extra) = missing_and_extra(&code, &doc);
    assert!(
        missing.is_empty(),
        "client messages not in docs/api.md: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "docs/api.md documents client messages that do not exist: {extra:?}"
    );
    // What is documented is accepted by the parser (with the fields each needs).
    for t in &doc {
        let text = format!(r#"{{"type":"{t}","job_id":"0a3f5c2e9b1d","channels":["jobs"]}}"#);
        assert!(
            protocol::parse(&text).is_ok(),
            "`{t}` is refused: {:?}",
            protocol::parse(&text)
        );
    }
}

#[test]
fn the_readme_links_the_reference() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains("(docs/api.md)"),
        "README.md does not link docs/api.md"
    );
}
