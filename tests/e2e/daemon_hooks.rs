//! Hooks through the ledger, end to end: a webhook posted to a local HTTP server with the documented
//! body, and a command hook whose job name tries to inject a command.

use std::collections::BTreeMap;

use plotty_host::events::{self, DaemonEvent};
use plotty_host::hooks::{Hook, HookRunner, HookSet};
use plotty_host::job::{JobEvent, JobState, Reason};
use plotty_host::ledger::Ledger;
use plotty_host::store::{NewJob, Store, TransitionRequest};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::task::TaskTracker;

#[tokio::test]
async fn a_webhook_gets_the_documented_body_and_a_hostile_name_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/plotty", server.local_addr().unwrap());
    let marker = dir.path().join("pwned");
    let mut map = BTreeMap::new();
    map.insert(
        JobState::Queued,
        vec![
            Hook::webhook(&url, None).unwrap(),
            Hook::command_argv(
                &["echo".into(), "{job_name}".into(), "{reason}".into()],
                None,
            )
            .unwrap(),
        ],
    );
    let tracker = TaskTracker::new();
    let runner = HookRunner::new(HookSet::new(map), tracker.clone());
    let (store, _) = Store::open(&dir.path().join("plotty.db")).unwrap();
    let bus = events::bus();
    let mut rx = bus.subscribe();
    let ledger = Ledger::new(store, dir.path(), bus, Some(runner));

    let receive = tokio::spawn(async move {
        let (mut s, _) = server.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if body.len() >= len {
                    s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                        .await
                        .unwrap();
                    return (head.to_owned(), body.to_owned());
                }
            }
        }
    });

    let name = format!("plot; touch {}", marker.display());
    let job = ledger
        .submit(NewJob {
            name: name.clone(),
            ..NewJob::default()
        })
        .await
        .unwrap();
    ledger
        .apply(TransitionRequest {
            job_id: job.id.clone(),
            event: JobEvent::Enqueue,
            reason: Reason::User,
            error: None,
            metadata: Value::Null,
        })
        .await
        .unwrap();
    let (head, body) = receive.await.unwrap();
    assert!(head.starts_with("POST /plotty HTTP/1.1\r\n"), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["job_id"], job.id.as_str());
    assert_eq!(body["event"], "state_transition");
    assert_eq!(
        (body["from_state"].as_str(), body["to_state"].as_str()),
        (Some("NEW"), Some("QUEUED"))
    );
    assert_eq!(body["context"]["job_name"], name.as_str());

    // Wait for the hook task to record its results.
    let results = loop {
        match rx.recv().await.unwrap() {
            DaemonEvent::HooksExecuted { results, .. } => break results,
            DaemonEvent::JobStateChanged(_) => {}
            other => panic!("unexpected event: {other:?}"),
        }
    };
    assert_eq!(results[0]["http_status"], 204);
    assert_eq!(results[1]["stdout"], format!("{name} user\n"));
    assert!(!marker.exists(), "the job name was run as a command");
    tracker.close();
    tracker.wait().await;
}
