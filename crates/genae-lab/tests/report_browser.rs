//! `report.html` in a real browser: a headless Chromium opens a run's report, every picture
//! must decode and nothing may be fetched from the network; a screenshot is saved. Skipped,
//! with a message, where no Chromium is installed (Debian: `apt-get install chromium`;
//! `GENAE_BROWSER` names another binary).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use genae_lab::run_experiment;

use common::{config_in, torch_rng_lock};

const TINY: &str = r#"
    name = "report"
    device = "cpu"
    threads = 1
    [data]
    train_size = 200
    test_size = 40
    image_size = 16
    n_positions = 6
    [model]
    latent_dim = 2
    hidden = [32]
    [train]
    epochs = 2
    batch_size = 50
    [eval]
    batch_size = 20
    samples = 16
    reconstructions = 4
    interpolations = 2
    latent_points = 40
    log_likelihood_k = 10
    log_likelihood_images = 10
"#;

/// The browser to use, if any.
fn browser() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("GENAE_BROWSER") {
        return Some(PathBuf::from(b));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Headless Chromium with no way out to the network.
fn headless(browser: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--allow-file-access-from-files",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=15000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Appended to a copy of the report: once the page has loaded (the load event waits for every
/// picture to be decoded or to fail), adds one element `RESULT {json}`: each image's name, whether it
/// decoded and its width, and every resource the page fetched.
const PROBE: &str = r#"<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images).map(i =>
    ({name: i.alt, ok: i.complete && i.naturalWidth > 0, width: i.naturalWidth}));
  const resources = performance.getEntriesByType('resource').map(e => e.name);
  const out = document.createElement('pre');
  out.id = 'genae-probe';
  out.textContent = 'RESULT ' + JSON.stringify({images: images, resources: resources});
  document.body.appendChild(out);
});
</script>"#;

#[test]
fn the_report_opens_offline_in_a_browser_with_every_picture_decoded() {
    let Some(browser) = browser() else {
        eprintln!(
            "SKIPPED: no Chromium found (apt-get install chromium, or set GENAE_BROWSER); \
             report.html was not checked in a browser"
        );
        return;
    };
    let _lock = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let config = config_in(TINY, "report.toml", out.path(), &[]);
    let run_dir = run_experiment(&config).unwrap().run_dir;
    let page = out.path().join("page");
    std::fs::create_dir(&page).unwrap();
    let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(report.contains("</body>"));
    std::fs::write(page.join("report.html"), &report).unwrap();
    let probed = report.replacen("</body>", &format!("{PROBE}</body>"), 1);
    std::fs::write(page.join("probe.html"), probed).unwrap();
    if let Some(keep) = std::env::var_os("GENAE_PROBE_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(page.join("probe.html"), keep.join("probe.html")).unwrap();
    }
    let profile = out.path().join("profile");

    let output = headless(&browser, &profile)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.join("probe.html").display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    let line = dom
        .split_once("<pre id=\"genae-probe\">RESULT ")
        .map(|(_, rest)| {
            rest.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .unwrap_or_else(|| {
            panic!(
                "the probe never reported: {dom}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let line = line.split("</pre>").next().unwrap();
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    let images = result["images"].as_array().unwrap();
    let names: Vec<&str> = images.iter().filter_map(|i| i["name"].as_str()).collect();
    for expected in ["curves.png", "samples.png", "reconstructions.png"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for image in images {
        assert_eq!(image["ok"], true, "did not decode: {image}");
    }
    for resource in result["resources"].as_array().unwrap() {
        let url = resource.as_str().unwrap();
        assert!(
            url.starts_with("data:") || url.starts_with("file:"),
            "the report fetched {url}"
        );
        assert!(!url.contains("http"), "the report fetched {url}");
    }

    // A screenshot of the report itself (kept when GENAE_SCREENSHOT names a file).
    let shot = std::env::var_os("GENAE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| out.path().join("report.png"));
    let status = headless(&browser, &profile)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,1600")
        .arg(format!("file://{}", page.join("report.html").display()))
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let bytes = std::fs::read(&shot).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000);
}
