//! What `--version` prints for every auks-rs program: the package version
//! and the Slurm and MIT krb5 versions the build was made against (read
//! from the installed headers and `pkg-config` by build.rs).

/// The package version (Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Slurm version of `<slurm/slurm_version.h>` at build time.
pub const BUILT_SLURM: &str = env!("AUKS_BUILT_SLURM");
/// The MIT krb5 version (`pkg-config --modversion krb5`) at build time.
pub const BUILT_KRB5: &str = env!("AUKS_BUILT_KRB5");

/// The `--version` text of `program`, e.g.
/// `auksd (auks-rs) 0.1.0\nbuilt against Slurm 22.05.8, MIT krb5 1.20.1\n`.
pub fn text(program: &str) -> String {
    format!(
        "{program} (auks-rs) {VERSION}\nbuilt against Slurm {BUILT_SLURM}, MIT krb5 {BUILT_KRB5}\nAUKS protocol and configuration compatible with the C AUKS 0.5\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_program_and_the_versions() {
        let t = super::text("auksd");
        assert!(t.starts_with(&format!("auksd (auks-rs) {}\n", super::VERSION)));
        assert!(t.contains("Slurm "));
        assert!(t.contains("MIT krb5 "));
    }
}
