//! `report.html`: one self-contained page per run directory (config, numbers, training curves,
//! pictures), built from the files in the directory alone, with every image embedded as a
//! `data:` URI, so it opens in a browser with no network and no other file.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::error::LabError;
use crate::plots::{line_charts, Line, Panel};
use crate::run_dir::RunDir;

/// The pictures a report shows when the run wrote them, with their captions.
const PICTURES: [(&str, &str); 9] = [
    ("curves.png", "Training curves: every named term per epoch (train, validation, test)"),
    ("reconstructions.png", "Test images (top) over their reconstructions (bottom)"),
    ("samples.png", "Decoder means of prior samples"),
    (
        "interpolations.png",
        "Decoded linear (upper row of each pair) and spherical (lower row) interpolations between test codes",
    ),
    ("latents.png", "Test codes coloured by label"),
    (
        "traversals.png",
        "Latent traversals: one latent dimension per row (ordered by its KL to the prior) swept from −2 to 2, the others at a test image's code",
    ),
    (
        "posterior.png",
        "Draws of q(z|x) for test images, coloured by label (2-d latent spaces)",
    ),
    (
        "chain_strips.png",
        "Markov chains from prior samples: one row per step of chain.strip_steps (top: the prior samples), one column per chain (decoder means)",
    ),
    (
        "interpolations_refined.png",
        "Interpolations between test images: plain (upper row of each pair) and after chain.interpolation_steps chain steps on every point (lower row)",
    ),
];

/// Writes `curves.png` (when there are metrics) and `report.html` into `run_dir`; returns the
/// report's path.
pub fn write_report(run_dir: &RunDir) -> Result<std::path::PathBuf, LabError> {
    let read = |name: &str| std::fs::read_to_string(run_dir.file(name)).ok();
    let config = read("config.toml").unwrap_or_default();
    let metrics: Vec<Value> = read("metrics.jsonl")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let summary: Option<Value> = read("summary.json").and_then(|t| serde_json::from_str(&t).ok());

    if !metrics.is_empty() {
        draw_curves(&metrics, &run_dir.file("curves.png"))?;
    }
    let name = run_dir
        .path()
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n",
        title = escape(&name)
    );
    match &summary {
        Some(s) => summary_section(&mut html, s),
        None => html.push_str(
            "<p class=\"warn\">No <code>summary.json</code>: the run has not finished (or was \
             stopped); the table shows the epochs it completed.</p>\n",
        ),
    }
    metrics_section(&mut html, &metrics);
    if let Some(s) = &summary {
        chain_section(&mut html, s);
    }
    for (file, caption) in PICTURES {
        if let Ok(bytes) = std::fs::read(run_dir.file(file)) {
            let _ = writeln!(
                html,
                "<figure><img alt=\"{file}\" src=\"data:image/png;base64,{}\">\
                 <figcaption>{} (<code>{file}</code>)</figcaption></figure>",
                base64::engine::general_purpose::STANDARD.encode(&bytes),
                escape(caption)
            );
        }
    }
    let _ = write!(
        html,
        "<h2>Config</h2>\n<pre>{}</pre>\n</body></html>\n",
        escape(&config)
    );
    run_dir.write_atomic("report.html", html.as_bytes())?;
    Ok(run_dir.file("report.html"))
}

/// Writes the report of the run directory at `path` (for `genae report`).
///
/// A folder with neither `config.toml` nor `metrics.jsonl` is not a run: an error, and no
/// report is written.
pub fn write_report_for(path: &Path) -> Result<std::path::PathBuf, LabError> {
    let dir = RunDir::open(path)?;
    if !dir.file("config.toml").is_file() && !dir.file("metrics.jsonl").is_file() {
        return Err(LabError::Run {
            path: path.to_path_buf(),
            reason: "holds neither config.toml nor metrics.jsonl: not a genae run directory".into(),
        });
    }
    write_report(&dir)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;\
text-align:right}th{background:#eee}td.k{text-align:left}figure{margin:1.5em 0}\
img{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}\
pre{background:#f6f6f6;padding:1em;overflow:auto}.warn{color:#a40}";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A number as the tables show it (3 decimals; integers as integers).
fn show(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => n.as_f64().map_or_else(String::new, |f| format!("{f:.3}")),
        Value::String(s) => escape(s),
        Value::Null => String::new(),
        other => escape(&other.to_string()),
    }
}

/// Every scalar of the summary as `dotted.key | value` rows.
fn summary_section(html: &mut String, summary: &Value) {
    fn flatten(prefix: &str, v: &Value, rows: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, rows);
                }
            }
            other => rows.push((prefix.to_string(), show(other))),
        }
    }
    let mut rows = Vec::new();
    flatten("", summary, &mut rows);
    html.push_str("<h2>Summary</h2>\n<table>\n");
    for (k, v) in rows {
        let _ = writeln!(
            html,
            "<tr><td class=\"k\">{}</td><td>{v}</td></tr>",
            escape(&k)
        );
    }
    html.push_str("</table>\n");
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// The splits of a metrics line whose named terms the report shows.
const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// The numeric term names of `split` over all lines, in first-seen order.
fn term_names(metrics: &[Value], split: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for m in metrics {
        if let Some(map) = m[split].as_object() {
            for (name, v) in map {
                if v.is_number() && !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    names
}

fn metrics_section(html: &mut String, metrics: &[Value]) {
    if metrics.is_empty() {
        return;
    }
    // Every named term of every split, then the fixed columns some epoch has.
    let mut columns: Vec<(String, String)> = vec![
        ("epoch".into(), "epoch".into()),
        ("phase".into(), "phase".into()),
    ];
    for split in SPLITS {
        for name in term_names(metrics, split) {
            columns.push((format!("{split}.{name}"), format!("{split} {name}")));
        }
    }
    for (path, title) in [
        ("log_likelihood.value", "test L_k"),
        ("seconds", "seconds"),
        ("examples_per_s", "examples/s"),
    ] {
        columns.push((path.into(), title.into()));
    }
    let present: Vec<_> = columns
        .iter()
        .filter(|(path, _)| metrics.iter().any(|m| !get(m, path).is_null()))
        .collect();
    html.push_str("<h2>Per epoch</h2>\n<table>\n<tr>");
    for (_, title) in &present {
        let _ = write!(html, "<th>{}</th>", escape(title));
    }
    html.push_str("</tr>\n");
    for m in metrics {
        html.push_str("<tr>");
        for (path, _) in &present {
            let _ = write!(html, "<td>{}</td>", show(get(m, path)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
}

/// The chain evaluation as one row per step (when the summary has `chain`).
fn chain_section(html: &mut String, summary: &Value) {
    let chain = &summary["chain"];
    let Some(steps) = chain["steps"].as_array() else {
        return;
    };
    html.push_str(
        "<h2>Markov chains</h2>\n<table>\n<tr><th>step</th><th>Fréchet distance \
         (classifier features)</th><th>latent MMD²</th><th>class TV</th></tr>\n",
    );
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            show(step),
            show(&chain["frechet"][i]),
            show(&chain["latent_mmd"][i]),
            show(&chain["class_tv"][i])
        );
    }
    let _ = writeln!(
        html,
        "<tr><td class=\"k\">real images</td><td>{}</td><td>{}</td><td></td></tr>\n</table>",
        show(&chain["frechet_real"]),
        show(&chain["latent_mmd_floor"])
    );
}

/// `curves.png`: one panel per named term (train, validation and test lines where they
/// exist), and the mid-run `L_k` when logged; x is the epoch over the whole run.
fn draw_curves(metrics: &[Value], path: &Path) -> Result<(), LabError> {
    let series = |key: &str| -> Vec<(f64, f64)> {
        metrics
            .iter()
            .filter_map(|m| Some((m["epoch"].as_f64()?, get(m, key).as_f64()?)))
            .collect()
    };
    let mut names: Vec<String> = Vec::new();
    for split in SPLITS {
        for name in term_names(metrics, split) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let mut panels: Vec<Panel> = names
        .iter()
        .map(|name| Panel {
            title: name.clone(),
            lines: SPLITS
                .iter()
                .zip(0..)
                .map(|(split, colour)| Line {
                    name: split.to_string(),
                    colour,
                    points: series(&format!("{split}.{name}")),
                })
                .filter(|l| !l.points.is_empty())
                .collect(),
        })
        .collect();
    let ll = series("log_likelihood.value");
    if !ll.is_empty() {
        panels.push(Panel {
            title: "L_k (mid-run)".into(),
            lines: vec![Line {
                name: "test".into(),
                colour: 2,
                points: ll,
            }],
        });
    }
    line_charts(&panels, "epoch", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_embeds_everything_and_escapes_text() {
        let out = tempfile::tempdir().unwrap();
        let dir = RunDir::create(out.path(), "r").unwrap();
        dir.write_atomic("config.toml", b"name = \"<b>&\"\n")
            .unwrap();
        for epoch in 1..=3 {
            let line = format!(
                "{{\"epoch\":{epoch},\"train\":{{\"elbo\":{}}},\"test\":{{\"elbo\":{},\"kl\":1.5}}}}",
                -100.25 + epoch as f64,
                -101.0 + epoch as f64
            );
            dir.append_line("metrics.jsonl", &line).unwrap();
        }
        let html_path = write_report(&dir).unwrap();
        let html = std::fs::read_to_string(html_path).unwrap();
        assert!(html.contains("has not finished"), "no summary yet");
        assert!(html.contains("&lt;b&gt;&amp;"), "config text escaped");
        assert!(
            html.contains("<td>-97.250</td>"),
            "last train ELBO in the table"
        );
        assert!(
            !html.contains("validation ELBO"),
            "absent columns are left out"
        );
        assert!(html.contains("data:image/png;base64,"), "curves embedded");
        assert!(
            !html.contains("src=\"http") && !html.contains("href="),
            "no external assets"
        );

        dir.write_atomic(
            "summary.json",
            br#"{"test":{"elbo":-98.5,"active_units":3}}"#,
        )
        .unwrap();
        let html = std::fs::read_to_string(write_report(&dir).unwrap()).unwrap();
        assert!(html.contains("test.active_units</td><td>3<"), "{html}");
        assert!(!html.contains("has not finished"));
        assert!(
            !html.contains("Markov chains"),
            "no chain table without chain"
        );

        dir.write_atomic(
            "summary.json",
            br#"{"chain":{"steps":[0,5],"frechet":[12.5,3.25],"latent_mmd":[0.5,0.125],"frechet_real":1.5,"latent_mmd_floor":0.0}}"#,
        )
        .unwrap();
        let html = std::fs::read_to_string(write_report(&dir).unwrap()).unwrap();
        assert!(
            html.contains("<tr><td>5</td><td>3.250</td><td>0.125</td><td></td></tr>"),
            "{html}"
        );
    }

    #[test]
    fn a_vq_vae_report_shows_its_phases_and_mse_curves() {
        let out = tempfile::tempdir().unwrap();
        let dir = RunDir::create(out.path(), "vq").unwrap();
        for epoch in 1..=2 {
            let line = format!(
                "{{\"phase\":\"vqvae\",\"epoch\":{epoch},\"train\":{{\"reconstruction_mse\":{}}},\"test\":{{\"reconstruction_mse\":0.0125,\"perplexity\":99.5}}}}",
                0.05 / epoch as f64
            );
            dir.append_line("metrics.jsonl", &line).unwrap();
        }
        dir.append_line(
            "metrics.jsonl",
            r#"{"phase":"prior","epoch":3,"train":{"nll":120.5},"test":{"nll":118.25}}"#,
        )
        .unwrap();
        let html = std::fs::read_to_string(write_report(&dir).unwrap()).unwrap();
        for text in [
            "<th>phase</th>",
            "<th>test perplexity</th>",
            "<td>118.250</td>",
            "<td>0.025</td>",
        ] {
            assert!(html.contains(text), "{text} missing from {html}");
        }
        assert!(html.contains("data:image/png;base64,"), "curves embedded");
    }
}
