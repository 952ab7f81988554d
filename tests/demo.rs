//! The demo, the main job, as a person runs it: it completes, and two runs (one reusing the
//! data folder, one in a new folder) print the same checksums.

use crate::support;

use std::process::Command;

fn demo(dir: &std::path::Path) -> Vec<(String, String)> {
    let out = Command::new(support::BIN).args(["--data-dir", dir.to_str().unwrap(), "demo", "--rows", "20000"]).output().unwrap();
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<(String, String)> = stdout
        .lines()
        .filter(|l| l.ends_with(|c: char| c.is_ascii_hexdigit()) && !l.starts_with(' ') && !l.starts_with("export"))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0].to_string(), cols[cols.len() - 1].to_string())
        })
        .collect();
    assert_eq!(rows.len(), 3, "three exports with a checksum each:\n{stdout}");
    for (_, sha) in &rows {
        assert_eq!(sha.len(), 64);
    }
    // Where the files are is printed, and they are there.
    for line in stdout.lines().filter(|l| l.starts_with("    /")) {
        assert!(std::path::Path::new(line.trim()).is_file(), "{line}");
    }
    rows
}

#[test]
fn the_demo_prints_the_same_checksums_every_time() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = demo(a.path());
    assert_eq!(demo(a.path()), first, "a second run on the same data folder");
    assert_eq!(demo(b.path()), first, "a run in a new data folder");
}
