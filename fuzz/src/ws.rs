//! Fuzz target of the daemon's WebSocket protocol parser (client messages are outside text).

use plotty_host::api::protocol::{self, ServerMessage};

/// Arbitrary bytes as a text frame → client message: a request or an `error` reply with a code
/// and a message, never a panic; the reply encodes as one JSON object with `type` and `timestamp`.
pub fn ws_message(data: &[u8]) {
    // Text frames are UTF-8 by the time they reach the parser (the WebSocket layer checks).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match protocol::parse(text) {
        Ok(_) => {}
        Err(e) => {
            assert!(!e.code.is_empty() && !e.message.is_empty(), "{e:?}");
            let reply = protocol::encode(&e.to_message());
            let v: serde_json::Value =
                serde_json::from_str(reply.as_str()).expect("replies are JSON");
            assert_eq!(v["type"], "error");
            assert!(v["timestamp"].is_string());
            assert!(matches!(e.to_message(), ServerMessage::Error { .. }));
        }
    }
}
