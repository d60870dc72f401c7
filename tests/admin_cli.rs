//! Admin-facing conventions of every program, without a KDC: `--version`
//! on each binary, the typo suggestion of `auks`, and the man pages render
//! without warnings (`man --warnings -l`, as lintian checks them).

use std::path::{Path, PathBuf};
use std::process::Command;

const BINS: &[(&str, &str)] = &[
    ("auks", env!("CARGO_BIN_EXE_auks")),
    ("auksd", env!("CARGO_BIN_EXE_auksd")),
    ("auksdrenewer", env!("CARGO_BIN_EXE_auksdrenewer")),
    ("aukspriv", env!("CARGO_BIN_EXE_aukspriv")),
    ("auksd-etcd", env!("CARGO_BIN_EXE_auksd-etcd")),
    ("auks-gateway", env!("CARGO_BIN_EXE_auks-gateway")),
];

#[test]
fn every_binary_answers_version() {
    let re =
        regex::Regex::new(r"^built against Slurm \d+\.\d+\.\d+, MIT krb5 \d+(\.\d+)+$").unwrap();
    for (name, path) in BINS {
        let out = Command::new(path).arg("--version").output().unwrap();
        assert!(out.status.success(), "{name} --version: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(format!("{name} (auks-rs) {}", env!("CARGO_PKG_VERSION")).as_str()),
            "{text}"
        );
        let built = lines.next().unwrap_or_default();
        assert!(re.is_match(built), "{name}: {built:?}");
        assert!(out.stderr.is_empty(), "{name}: {:?}", out.stderr);
    }
}

#[test]
fn auks_suggests_the_option_meant() {
    for (args, hint) in [
        (&["--gte"][..], "did you mean '--get'?"),
        (&["--remvoe"], "did you mean '--remove'?"),
        (&["ping"], "did you mean '--ping'?"),
        (&["-G"], "did you mean '-g'?"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_auks"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.lines().next().unwrap_or("").ends_with(hint),
            "{args:?}: {err}"
        );
    }
}

fn man_pages() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/man");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "1" || e == "5" || e == "8")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn man_pages_exist_for_every_program_and_file() {
    let names: Vec<String> = man_pages()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "auks.1",
        "auks.conf.5",
        "auks.acl.5",
        "auksd.8",
        "auksdrenewer.8",
        "aukspriv.8",
        "auks.so.8",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
}

#[test]
fn man_pages_render_without_warnings() {
    // Bold and underline are overstrikes (`N\x08N`) off a terminal.
    let overstrike = regex::Regex::new(".\x08").unwrap();
    for page in man_pages() {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("man(1) is needed (package man-db)");
        assert!(out.status.success(), "{}: {out:?}", page.display());
        assert!(
            out.stderr.is_empty(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let raw = String::from_utf8_lossy(&out.stdout);
        let text = overstrike.replace_all(&raw, "");
        assert!(
            text.contains("NAME"),
            "{}: nothing rendered",
            page.display()
        );
    }
}

#[test]
fn man_pages_document_every_option_of_the_usage() {
    // Each option that `auks -h` lists is in auks(1).
    let usage = Command::new(env!("CARGO_BIN_EXE_auks"))
        .arg("-h")
        .output()
        .unwrap();
    let usage = String::from_utf8(usage.stdout).unwrap();
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/man/auks.1"))
            .unwrap();
    let re = regex::Regex::new(r"--([a-z]+)").unwrap();
    for c in re.captures_iter(&usage) {
        let opt = format!(r"\-\-{}", &c[1]);
        assert!(page.contains(&opt), "auks(1) does not document --{}", &c[1]);
    }
}
