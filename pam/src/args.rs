//! Module arguments from the PAM configuration line (admin-controlled):
//! `debug`, `ignore_root[=yes|no]` (default yes), `switch` (make the job
//! ccache the primary one of its DIR/KEYRING/KCM collection), and
//! `record_dir=/path` (default [`auks_record::DEFAULT_DIR`]).

use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub debug: bool,
    pub ignore_root: bool,
    pub switch: bool,
    pub record_dir: PathBuf,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            debug: false,
            ignore_root: true,
            switch: false,
            record_dir: PathBuf::from(auks_record::DEFAULT_DIR),
        }
    }
}

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" | "true" | "1" | "on" => Some(true),
        "no" | "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// Parse the arguments; unknown or bad ones are returned for a log line
/// and otherwise ignored (a typo must never block a login).
pub fn parse<S: AsRef<str>>(argv: &[S]) -> (Args, Vec<String>) {
    let mut a = Args::default();
    let mut problems = Vec::new();
    for arg in argv {
        let arg = arg.as_ref();
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg, None),
        };
        let flag = |v: Option<&str>| match v {
            None => Some(true),
            Some(v) => yes_no(v),
        };
        let ok = match key {
            "debug" => flag(value).map(|b| a.debug = b).is_some(),
            "ignore_root" => flag(value).map(|b| a.ignore_root = b).is_some(),
            "switch" => flag(value).map(|b| a.switch = b).is_some(),
            "record_dir" => match value {
                Some(v) if v.starts_with('/') => {
                    a.record_dir = PathBuf::from(v);
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if !ok {
            problems.push(format!("ignoring unknown or bad argument \"{arg}\""));
        }
    }
    (a, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let (a, p) = parse::<&str>(&[]);
        assert_eq!(a, Args::default());
        assert!(a.ignore_root && !a.debug && !a.switch);
        assert!(p.is_empty());
        let (a, p) = parse(&["debug", "ignore_root=no", "switch=yes", "record_dir=/x/y"]);
        assert!(a.debug && !a.ignore_root && a.switch);
        assert_eq!(a.record_dir, PathBuf::from("/x/y"));
        assert!(p.is_empty());
    }

    #[test]
    fn bad_arguments_are_reported_and_ignored() {
        let (a, p) = parse(&["debgu", "ignore_root=maybe", "record_dir=relative"]);
        assert_eq!(a, Args::default());
        assert_eq!(p.len(), 3);
        assert!(p[0].contains("debgu"));
    }
}
