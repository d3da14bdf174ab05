//! Text output of the client commands: tables, job details, the status screen, monitor lines.
//! Everything reads the daemon's JSON defensively: a missing field prints as `-`, never fails.

use std::fmt::Write as _;

use serde_json::Value;

/// `k=v&…` with the values percent-encoded.
pub(super) fn query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The job's paper as it lies and the paper check's warnings: from the analysis (with the
/// strokes) once there is one, else from the submission (the page the file declares).
fn paper(j: &Value) -> (String, Vec<String>) {
    let analysed = j["events"].as_array().and_then(|events| {
        events
            .iter()
            .rev()
            .find(|e| e["metadata"]["paper"].is_object())
            .map(|e| (&e["metadata"]["paper"], &e["metadata"]["warnings"]))
    });
    let check = &j["metadata"]["paper_check"];
    let (sheet, warnings) = analysed.unwrap_or((&check["sheet"], &check["warnings"]));
    // 148 and 215.9, not 148.0 and 215.89999.
    let mm = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".into(), |v| ((v * 10.0).round() / 10.0).to_string())
    };
    let label = match (sheet["name"].as_str(), sheet["orientation"].as_str()) {
        (Some(name), Some(o)) => format!(
            "{name} {o} ({} × {} mm)",
            mm(&sheet["width_mm"]),
            mm(&sheet["height_mm"])
        ),
        _ => text(&j["paper"]),
    };
    let warnings = warnings
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    (label, warnings)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Seconds as `1h 02m 03s`, `4m 05s` or `6.2s`.
pub(super) fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".into();
    }
    let whole = s.round() as u64;
    match whole {
        0..60 => format!("{s:.1}s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!(
            "{}h {:02}m {:02}s",
            whole / 3600,
            (whole % 3600) / 60,
            whole % 60
        ),
    }
}

fn seconds(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".into(), duration)
}

/// Where a paused job resumes, counted from 1 as people count layers and strokes: `layer 2,
/// stroke 8, segment 5`. The stored indices start at 0, and the markers of the park and
/// re-entry moves (`u32::MAX`, `u32::MAX − 1`) are internal values, never shown as numbers.
fn resume_point(r: &serde_json::Map<String, Value>) -> String {
    let one_based = |v: &Value| {
        v.as_u64()
            .map_or_else(|| "?".into(), |i| (i + 1).to_string())
    };
    let layer = one_based(&r["layer"]);
    match r["vertex"].as_u64() {
        Some(v) if v == u64::from(crate::plot::PARK_VERTEX) => {
            format!("layer {layer}: parking at home")
        }
        Some(v) if v == u64::from(crate::plot::REENTRY_VERTEX) => format!(
            "layer {layer}, stroke {}: moving back to where it stopped",
            one_based(&r["stroke"])
        ),
        // Heading for vertex v (from 0) is drawing segment v (from 1).
        v => format!(
            "layer {layer}, stroke {}, segment {}",
            one_based(&r["stroke"]),
            v.map_or_else(|| "?".into(), |v| v.to_string())
        ),
    }
}

/// `45.0% (layer 2/4, eta 1m 02s)` from a progress object.
pub(super) fn progress(p: &Value) -> String {
    if p.is_null() {
        return "-".into();
    }
    let mut s = format!("{:.1}%", p["progress_percentage"].as_f64().unwrap_or(0.0));
    if let (Some(l), Some(t)) = (p["current_layer"].as_u64(), p["total_layers"].as_u64()) {
        let _ = write!(s, " layer {l}/{t}");
    }
    if let Some(eta) = p["eta_seconds"].as_f64() {
        let _ = write!(s, " eta {}", duration(eta));
    }
    s
}

/// A job's state, a READY one with whether it waits for `plotty start` or is queued to start
/// (`READY (queued to start)`).
pub(super) fn state(j: &Value) -> String {
    match (j["state"].as_str(), j["start"].as_bool()) {
        (Some("READY"), Some(true)) => "READY (queued to start)".into(),
        (Some("READY"), _) => "READY (waiting for start)".into(),
        // A plot on the simulator never passes for a drawn one.
        (Some("COMPLETED"), _) if j["simulated"].as_bool() == Some(true) => {
            "COMPLETED (simulated, nothing drawn)".into()
        }
        (Some(s), _) if j["simulated"].as_bool() == Some(true) => format!("{s} (simulated)"),
        _ => text(&j["state"]),
    }
}

/// Left-aligned columns.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = String>| -> String {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let pad = w.saturating_sub(c.chars().count());
            s.push_str(&c);
            s.push_str(&" ".repeat(pad + 2));
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(&mut headers.iter().map(|h| (*h).to_owned()));
    for row in rows {
        out.push_str(&line(&mut row.iter().cloned()));
    }
    out
}

/// `plotty jobs`.
pub(crate) fn jobs_table(v: &Value) -> String {
    let jobs = v["jobs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if jobs.is_empty() {
        return "no jobs\n".into();
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                text(&j["id"]),
                state(j),
                device_cell(j),
                text(&j["priority"]),
                progress(&j["progress"]),
                text(&j["name"]),
                text(&j["updated_at"]),
            ]
        })
        .collect();
    table(
        &[
            "ID", "STATE", "DEVICE", "PRIORITY", "PROGRESS", "NAME", "UPDATED",
        ],
        &rows,
    )
}

/// What a job asks of its plotter (`requirements` of the job view): a plotter by name, a
/// model, tags.
fn asked(req: &Value) -> (Option<&str>, Option<u64>, Vec<&str>) {
    let tags = req["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    (req["device"].as_str(), req["model"].as_u64(), tags)
}

/// The `DEVICE` cell of `plotty jobs`: the plotter the job was armed on, else what it asks
/// for (`→left`: waits for `left`; `[a3+red]`: for a plotter with those tags), else `-`.
fn device_cell(j: &Value) -> String {
    if let Some(d) = j["device"].as_str() {
        return d.to_owned();
    }
    let (device, model, tags) = asked(&j["requirements"]);
    let mut parts = Vec::new();
    parts.extend(device.map(|d| format!("→{d}")));
    parts.extend(model.map(|m| format!("model {m}")));
    if !tags.is_empty() {
        parts.push(format!("[{}]", tags.join("+")));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

/// What a job asks of its plotter, in words (`device right, model 2, tags a3, red`).
fn requirements_text(req: &Value) -> Option<String> {
    let (device, model, tags) = asked(req);
    let mut parts = Vec::new();
    parts.extend(device.map(|d| format!("device {d}")));
    parts.extend(model.map(|m| format!("model {m}")));
    if !tags.is_empty() {
        parts.push(format!("tags {}", tags.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `plotty job ID`.
pub(super) fn job_details(j: &Value) -> String {
    let mut s = String::new();
    let t = &j["timing"];
    let _ = writeln!(s, "job       {}", text(&j["id"]));
    let _ = writeln!(s, "name      {}", text(&j["name"]));
    let id = text(&j["id"]);
    match (j["state"].as_str(), j["start"].as_bool()) {
        (Some("READY"), Some(true)) => {
            let _ = writeln!(
                s,
                "state     READY, queued to start: it plots as soon as the plotter is free"
            );
        }
        (Some("READY"), _) => {
            let _ = writeln!(
                s,
                "state     READY, waiting for start: `plotty start {id}` sends it to the plotter"
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "state     {}{}",
                text(&j["state"]),
                j["state_reason"]
                    .as_str()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(e) = j["error"].as_str() {
        let _ = writeln!(s, "error     {e}");
    }
    if j["simulated"].as_bool() == Some(true) {
        let _ = writeln!(
            s,
            "plotter   the built-in simulator: simulated, nothing drawn on paper"
        );
    }
    // Several plotters: the one it is (or was last) on, and what it asks of one.
    if let Some(d) = j["device"].as_str() {
        let _ = writeln!(s, "device    {d}");
    }
    if let Some(asks) = requirements_text(&j["requirements"]) {
        let _ = writeln!(s, "asks      {asks}");
    }
    // Several daemons on one database: where the job plots (its paper) and where it came in.
    match (j["daemon"].as_str(), j["submitted_by"].as_str()) {
        (Some(d), Some(by)) if d != by => {
            let _ = writeln!(s, "daemon    {d} (submitted to {by})");
        }
        (Some(d), _) => {
            let _ = writeln!(s, "daemon    {d}");
        }
        (None, Some(by)) => {
            let _ = writeln!(s, "daemon    not claimed yet (submitted to {by})");
        }
        (None, None) => {}
    }
    let _ = writeln!(s, "priority  {}", text(&j["priority"]));
    let (paper, warnings) = paper(j);
    let _ = writeln!(s, "paper     {paper}");
    for w in warnings {
        let _ = writeln!(s, "          warning: {w}");
    }
    let _ = writeln!(
        s,
        "layers    {}",
        j["layers_selected"].as_str().unwrap_or("all")
    );
    // The job's plot options (axicli's names), when it was added with some.
    if let Some(o) = j["metadata"]["options"].as_object() {
        let shown: Vec<String> = o
            .iter()
            .filter(|(k, _)| k.as_str() != "seed")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !shown.is_empty() {
            let _ = writeln!(s, "options   {}", shown.join(" "));
        }
    }
    let _ = writeln!(s, "submitted {}", text(&j["created_at"]));
    if let Some(r) = j["retry_of"].as_str() {
        let _ = writeln!(s, "retry of  {r}");
    }
    let _ = writeln!(s, "progress  {}", progress(&j["progress"]));
    let _ = writeln!(
        s,
        "estimate  {} before optimisation, {} after",
        seconds(&t["estimate_pre_s"]),
        seconds(&t["estimate_post_s"])
    );
    let taken = if t["finished_at"].is_null() {
        "so far"
    } else {
        "in total"
    };
    let _ = writeln!(
        s,
        "actual    {} {taken} (started {}, finished {})",
        seconds(&t["elapsed_s"]),
        text(&t["started_at"]),
        text(&t["finished_at"])
    );
    if let Some(r) = j["resume_point"].as_object() {
        let _ = writeln!(s, "resume at {}", resume_point(r));
    }
    let layers = j["layers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if layers.is_empty() {
        let _ = writeln!(s, "\nlayers: not analysed yet");
    } else {
        let rows: Vec<Vec<String>> = layers
            .iter()
            .map(|l| {
                vec![
                    // Stored from 0; people count layers from 1.
                    l["index"]
                        .as_u64()
                        .map_or_else(|| "-".into(), |i| (i + 1).to_string()),
                    text(&l["name"]),
                    text(&l["color"]),
                    text(&l["strokes"]),
                    text(&l["points"]),
                    l["pen_down_mm"]
                        .as_f64()
                        .map_or_else(|| "-".into(), |m| format!("{m:.1}")),
                    seconds(&l["estimate_s"]),
                    if l["pause_before"].as_bool() == Some(true) {
                        "pause".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        s.push('\n');
        s.push_str(&table(
            &[
                "#",
                "LAYER",
                "COLOR",
                "STROKES",
                "POINTS",
                "PEN-DOWN MM",
                "ESTIMATE",
                "",
            ],
            &rows,
        ));
    }
    let events = j["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if !events.is_empty() {
        let _ = writeln!(s, "\nhistory:");
        for e in events {
            let _ = writeln!(
                s,
                "  {}  {:<19} {} → {}  {}",
                text(&e["timestamp"]),
                text(&e["type"]),
                text(&e["from_state"]),
                text(&e["to_state"]),
                // Where a resumed plot went on from says more than its (absent) reason.
                e["metadata"]["resumed"]
                    .as_str()
                    .or_else(|| e["reason"].as_str())
                    .unwrap_or("")
            );
        }
    }
    s
}

/// `plotty status`.
pub(super) fn status(v: &Value, address: &str) -> String {
    let mut s = String::new();
    let q = &v["queue"];
    let _ = writeln!(
        s,
        "daemon   plotty {} at {address}: {}, up {}, {} client(s){}",
        text(&v["daemon_version"]),
        text(&v["status"]),
        seconds(&v["uptime"]),
        text(&v["connections"]),
        v["memory_rss_bytes"]
            .as_f64()
            .map(|b| format!(", {:.1} MiB", b / 1048576.0))
            .unwrap_or_default()
    );
    for p in v["problems"].as_array().into_iter().flatten() {
        let _ = writeln!(s, "         problem: {}", text(p));
    }
    let devices = v["devices"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if devices.is_empty() {
        let _ = writeln!(s, "device   no plotter attached");
    }
    for d in devices {
        let _ = writeln!(s, "device   {}", device_line(d));
    }
    let _ = writeln!(
        s,
        "queue    {} waiting, {} active",
        text(&q["length"]),
        text(&q["active"])
    );
    for j in q["running"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "  {} {:<9} {}  {}",
            text(&j["id"]),
            state(j),
            progress(&j["progress"]),
            text(&j["name"])
        );
    }
    let next = q["next"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if !next.is_empty() {
        let _ = writeln!(s, "next:");
        for j in next {
            let _ = writeln!(
                s,
                "  {} {:<9} {}",
                text(&j["id"]),
                state(j),
                text(&j["name"])
            );
        }
    }
    s
}

/// One device as a line.
pub(crate) fn device_line(d: &Value) -> String {
    let mut s = format!(
        "{} ({}) {}",
        text(&d["device_id"]),
        text(&d["device_type"]),
        text(&d["status"])
    );
    // A farm: another daemon's plotter, driven there.
    if d["remote"].as_bool() == Some(true) {
        let _ = write!(s, ", on daemon {}", text(&d["daemon"]));
    }
    if let Some(fw) = d["firmware_version"].as_str() {
        let _ = write!(s, ", firmware {fw}");
    }
    if let Some(up) = d["pen_up"].as_bool() {
        s.push_str(if up { ", pen up" } else { ", pen down" });
    }
    if let (Some(x), Some(y)) = (d["position"]["x"].as_f64(), d["position"]["y"].as_f64()) {
        let _ = write!(s, ", at ({x:.1}, {y:.1}) mm");
    }
    if let Some(j) = d["current_job_id"].as_str() {
        let _ = write!(s, ", job {j}");
    } else if let Some(j) = d["held_by"]["job_id"].as_str() {
        match d["held_by"]["state"].as_str() {
            Some("PAUSED") => {
                let _ = write!(
                    s,
                    ", held by paused job {j} (resume or abort it to free the plotter)"
                );
            }
            Some(state) => {
                let _ = write!(s, ", held by job {j} ({state})");
            }
            None => {
                let _ = write!(s, ", held by job {j}");
            }
        }
    }
    if let Some(e) = d["error_message"].as_str() {
        let _ = write!(s, ", error: {e}");
    }
    if let Some(n) = d["notice"].as_str() {
        let _ = write!(s, "\n         NOTE: {n}");
    }
    s
}

/// A line for `plotty monitor` (text mode), or `None` for messages shown otherwise (progress bars)
/// or not at all.
pub(super) fn monitor_line(m: &Value) -> Option<String> {
    let time = m["timestamp"]
        .as_str()
        .and_then(|t| t.get(11..19))
        .unwrap_or("--:--:--");
    let line = match m["type"].as_str()? {
        "hello" => format!(
            "connected to plotty {} (protocol {})",
            text(&m["daemon_version"]),
            text(&m["protocol_version"])
        ),
        "subscribed" => format!("watching {}", channels(&m["channels"])),
        "job_state_change" if m["snapshot"].as_bool() == Some(true) => format!(
            "job {} is {}  {}",
            text(&m["job_id"]),
            text(&m["to_state"]),
            text(&m["job_name"])
        ),
        "job_state_change" => format!(
            "job {} {} → {} ({}){}  {}",
            text(&m["job_id"]),
            text(&m["from_state"]),
            text(&m["to_state"]),
            text(&m["reason"]),
            m["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
            text(&m["job_name"])
        ),
        "job_deleted" => format!("job {} deleted", text(&m["job_id"])),
        "device_status" => format!("device {}", device_line(m)),
        "device_removed" if m["remote"].as_bool() == Some(true) => format!(
            "device {} removed, on daemon {}",
            text(&m["device_id"]),
            text(&m["daemon"])
        ),
        "device_removed" => format!("device {} removed", text(&m["device_id"])),
        // Replayed from the daemon's backlog on subscribing: raised before this connection, at
        // the time it carries (not news).
        "system_alert" if m["snapshot"].as_bool() == Some(true) => format!(
            "earlier alert, raised {}: {}: {}: {}",
            m["timestamp"]
                .as_str()
                .and_then(|t| t.get(..19))
                .map_or_else(
                    || "before you connected".to_owned(),
                    |t| t.replace('T', " ")
                ),
            text(&m["severity"]).to_uppercase(),
            text(&m["title"]),
            text(&m["message"])
        ),
        "system_alert" => format!(
            "{}: {}: {}",
            text(&m["severity"]).to_uppercase(),
            text(&m["title"]),
            text(&m["message"])
        ),
        "system_status" => format!(
            "daemon {}: {} waiting, {} active, {} client(s), cpu {}, memory {}",
            text(&m["status"]),
            text(&m["queue_length"]),
            text(&m["active_jobs"]),
            text(&m["connections"]),
            percent(&m["cpu_usage"]),
            percent(&m["memory_usage"])
        ),
        "error" => format!(
            "error {}: {}",
            text(&m["error_code"]),
            text(&m["error_message"])
        ),
        _ => return None,
    };
    Some(format!("{time} {line}"))
}

fn channels(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "-".into())
}

fn percent(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |f| format!("{:.1}%", f * 100.0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `plotty monitor` says which plotter left its id, and whose.
    #[test]
    fn a_removed_plotter_is_shown() {
        let at = "2026-12-06T12:00:00Z";
        let own = json!({ "type": "device_removed", "timestamp": at, "device_id": "simulator" });
        assert_eq!(
            monitor_line(&own).as_deref(),
            Some("12:00:00 device simulator removed")
        );
        let theirs = json!({ "type": "device_removed", "timestamp": at,
                             "device_id": "simulator", "remote": true, "daemon": "a" });
        assert_eq!(
            monitor_line(&theirs).as_deref(),
            Some("12:00:00 device simulator removed, on daemon a")
        );
    }

    #[test]
    fn durations_and_encoding() {
        assert_eq!(duration(6.24), "6.2s");
        assert_eq!(duration(245.0), "4m 05s");
        assert_eq!(duration(3723.0), "1h 02m 03s");
        assert_eq!(duration(f64::NAN), "-");
        assert_eq!(encode("a b/ü&"), "a%20b%2F%C3%BC%26");
        assert_eq!(
            query(&[("name", "x y".into()), ("start", "true".into())]),
            "name=x%20y&start=true"
        );
    }

    #[test]
    fn odd_json_never_fails() {
        for v in [
            json!(null),
            json!([]),
            json!({"jobs": 3}),
            json!({"queue": "x"}),
        ] {
            let _ = jobs_table(&v);
            let _ = job_details(&v);
            let _ = status(&v, "h:1");
            let _ = monitor_line(&v);
        }
    }

    #[test]
    fn a_parked_resume_point_is_not_shown_as_a_vertex_number() {
        let parked = json!({"resume_point": {"layer": 1, "stroke": 7, "vertex": 4_294_967_295u64}});
        let d = job_details(&parked);
        assert!(d.contains("resume at layer 2: parking at home"), "{d}");
        assert!(!d.contains("4294967295"), "{d}");
        let back = json!({"resume_point": {"layer": 0, "stroke": 2, "vertex": 4_294_967_294u64}});
        let d = job_details(&back);
        assert!(
            d.contains("resume at layer 1, stroke 3: moving back to where it stopped"),
            "{d}"
        );
        assert!(!d.contains("4294967294"), "{d}");
        let mid = json!({"resume_point": {"layer": 0, "stroke": 2, "vertex": 5}});
        let d = job_details(&mid);
        assert!(d.contains("resume at layer 1, stroke 3, segment 5"), "{d}");
    }

    #[test]
    fn the_history_says_where_a_resumed_plot_went_on_from() {
        let j = json!({"events": [{
            "timestamp": "2026-12-06T19:00:00Z",
            "type": "progress_checkpoint",
            "from_state": null,
            "to_state": "PLOTTING",
            "reason": null,
            "metadata": {"resumed": "resumed where the pen stopped, layer 1, stroke 1, segment 120"},
        }]});
        let d = job_details(&j);
        assert!(
            d.contains("PLOTTING  resumed where the pen stopped, layer 1, stroke 1, segment 120"),
            "{d}"
        );
    }

    #[test]
    fn a_jobs_plot_options_are_shown() {
        let j = json!({"metadata": {"options": {"speed_pendown": 30.0, "model": 2, "seed": 7}}});
        let d = job_details(&j);
        assert!(d.contains("options   model=2 speed_pendown=30.0"), "{d}");
        assert!(!d.contains("seed"), "{d}");
        assert!(!job_details(&json!({"metadata": {}})).contains("options"));
    }

    #[test]
    fn a_farm_job_names_its_daemon() {
        let d = job_details(&json!({"daemon": "right", "submitted_by": "left"}));
        assert!(d.contains("daemon    right (submitted to left)"), "{d}");
        let d = job_details(&json!({"daemon": null, "submitted_by": "left"}));
        assert!(
            d.contains("daemon    not claimed yet (submitted to left)"),
            "{d}"
        );
        assert!(
            !job_details(&json!({})).contains("daemon"),
            "one daemon: nothing"
        );
    }

    #[test]
    fn layers_are_numbered_from_one() {
        let j = json!({"layers": [
            {"index": 0, "name": "outline", "strokes": 3},
            {"index": 1, "name": "fill", "strokes": 2}
        ]});
        let d = job_details(&j);
        let rows: Vec<&str> = d.lines().skip_while(|l| !l.contains("LAYER")).collect();
        assert!(
            rows[1].trim_start().starts_with("1 ") && rows[1].contains("outline"),
            "{d}"
        );
        assert!(
            rows[2].trim_start().starts_with("2 ") && rows[2].contains("fill"),
            "{d}"
        );
    }

    #[test]
    fn ready_jobs_say_whether_they_wait_for_start() {
        let waiting = json!({"id": "a", "state": "READY", "start": false});
        let queued = json!({"id": "b", "state": "READY", "start": true});
        assert_eq!(state(&waiting), "READY (waiting for start)");
        assert_eq!(state(&queued), "READY (queued to start)");
        assert_eq!(state(&json!({"state": "PAUSED", "start": true})), "PAUSED");
        let t = jobs_table(&json!({ "jobs": [waiting.clone(), queued.clone()] }));
        assert!(
            t.contains("a   READY (waiting for start)")
                && t.contains("b   READY (queued to start)"),
            "{t}"
        );
        assert!(
            job_details(&waiting).contains("waiting for start: `plotty start a`"),
            "{}",
            job_details(&waiting)
        );
        assert!(job_details(&queued).contains("READY, queued to start"));
    }

    #[test]
    fn a_device_held_by_a_paused_job_says_so() {
        let d = json!({"device_id": "sim", "device_type": "simulator", "status": "connected",
                       "held_by": {"job_id": "j1", "state": "PAUSED"}});
        assert!(
            device_line(&d)
                .ends_with("held by paused job j1 (resume or abort it to free the plotter)"),
            "{}",
            device_line(&d)
        );
        let busy = json!({"device_id": "sim", "current_job_id": "j2",
                          "held_by": {"job_id": "j2", "state": "PLOTTING"}});
        assert!(
            device_line(&busy).ends_with(", job j2"),
            "{}",
            device_line(&busy)
        );
    }

    /// Issue 15: another daemon's plotter says which daemon drives it.
    #[test]
    fn another_daemons_plotter_names_its_daemon() {
        let d = json!({"device_id": "a1", "device_type": "simulator", "status": "connected",
                       "daemon": "a", "remote": true});
        assert_eq!(device_line(&d), "a1 (simulator) connected, on daemon a");
        let own = json!({"device_id": "b1", "device_type": "simulator", "status": "connected",
                         "daemon": "b"});
        assert_eq!(device_line(&own), "b1 (simulator) connected");
    }

    #[test]
    fn tables_line_up() {
        let v = json!({"jobs": [
            {"id": "abc", "state": "QUEUED", "priority": 0, "name": "a.svg", "updated_at": "t"},
            {"id": "d", "state": "PLOTTING", "priority": 10, "name": "b", "updated_at": "t",
             "progress": {"progress_percentage": 45.0, "current_layer": 2, "total_layers": 4}},
        ]});
        let t = jobs_table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].contains("45.0% layer 2/4"), "{t}");
        let col = |l: &str| {
            l.find("STATE")
                .or_else(|| l.find("QUEUED"))
                .or_else(|| l.find("PLOTTING"))
        };
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[2]));
    }

    /// Issue 15: `plotty jobs` and `plotty job ID` name the plotter of a job, or what it asks.
    #[test]
    fn jobs_name_their_plotter_or_what_they_ask() {
        let v = json!({"jobs": [
            {"id": "a", "state": "PLOTTING", "priority": 0, "name": "a", "updated_at": "t",
             "device": "left", "requirements": {"tags": ["a3"]}},
            {"id": "b", "state": "READY", "priority": 0, "name": "b", "updated_at": "t",
             "device": null, "requirements": {"device": "right", "tags": ["a3", "red"]}},
            {"id": "c", "state": "QUEUED", "priority": 0, "name": "c", "updated_at": "t",
             "requirements": {}},
        ]});
        let t = jobs_table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("DEVICE"), "{t}");
        assert!(lines[1].contains(" left "), "{t}");
        assert!(lines[2].contains("→right [a3+red]"), "{t}");
        assert!(lines[3].contains(" - "), "{t}");
        let details = job_details(&json!({
            "id": "b", "name": "b", "state": "PAUSED", "priority": 0, "device": "left",
            "requirements": {"model": 2, "tags": ["a3", "red"]}, "timing": {}, "metadata": {}
        }));
        assert!(details.contains("device    left\n"), "{details}");
        assert!(
            details.contains("asks      model 2, tags a3, red\n"),
            "{details}"
        );
    }
}
