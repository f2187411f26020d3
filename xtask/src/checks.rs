//! `cargo xtask test`: setup, then formatting, clippy, the API docs (warnings are errors) and
//! the whole test suite, stopping at the first step that fails.

use anyhow::{Context, Result};

use crate::{process, setup};

/// The steps after setup: a name for messages and the `cargo` arguments.
const STEPS: &[(&str, &[&str])] = &[
    ("formatting check", &["fmt", "--all", "--", "--check"]),
    (
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    ),
    ("docs", &["doc", "--workspace", "--no-deps"]),
    ("tests", &["test", "--workspace"]),
];

/// Runs setup and every step in order; the error names the step that failed.
pub fn run() -> Result<()> {
    let total = STEPS.len() + 1;
    println!("== [1/{total}] setup");
    setup::run().with_context(|| format!("`cargo xtask test`: step 1/{total} (setup) failed"))?;
    for (i, (name, args)) in STEPS.iter().enumerate() {
        let n = i + 2;
        println!("== [{n}/{total}] {name}");
        let mut cmd = process::cargo();
        cmd.args(*args);
        // Setup installed Fashion-MNIST: the tests that read it must not skip.
        cmd.env("GENAE_REQUIRE_FASHION_MNIST", "1");
        if *name == "docs" {
            // Broken intra-doc links and stray HTML in doc comments fail this step.
            cmd.env("RUSTDOCFLAGS", "-D warnings");
        }
        process::run(&mut cmd)
            .with_context(|| format!("`cargo xtask test`: step {n}/{total} ({name}) failed"))?;
    }
    println!("all {total} steps passed: setup, formatting, clippy, docs, tests");
    Ok(())
}
