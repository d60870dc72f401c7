//! Generates Rust declarations for the subset of libkrb5 that auks-rs uses,
//! straight from the installed MIT headers (no download, no vendored copy).
//! The allowlists name exactly what `src/krb5` (and `src/spank`) call: add
//! a symbol here when a wrapper starts using it, remove it when none does.
use std::env;
use std::path::PathBuf;

const FUNCTIONS: &[&str] = &[
    "krb5_init_context",
    "krb5_free_context",
    "krb5_get_error_message",
    "krb5_free_error_message",
    "krb5_parse_name",
    "krb5_unparse_name",
    "krb5_free_unparsed_name",
    "krb5_free_principal",
    "krb5_copy_principal",
    "krb5_aname_to_localname",
    "krb5_cc_default",
    "krb5_cc_default_name",
    "krb5_cc_set_default_name",
    "krb5_cc_resolve",
    "krb5_cc_new_unique",
    "krb5_cc_close",
    "krb5_cc_destroy",
    "krb5_cc_initialize",
    "krb5_cc_store_cred",
    "krb5_cc_get_principal",
    "krb5_cc_get_name",
    "krb5_cc_get_type",
    "krb5_cc_get_full_name",
    "krb5_cc_start_seq_get",
    "krb5_cc_next_cred",
    "krb5_cc_end_seq_get",
    "krb5_cc_switch",
    "krb5_cc_support_switch",
    "krb5_free_cred_contents",
    "krb5_free_string",
    "krb5_get_credentials",
    "krb5_get_cred_via_tkt",
    "krb5_kt_resolve",
    "krb5_kt_close",
    "krb5_kt_start_seq_get",
    "krb5_kt_next_entry",
    "krb5_kt_end_seq_get",
    "krb5_kt_add_entry", // unit tests: fill a MEMORY keytab
    "krb5_free_keytab_entry_contents",
    "krb5_get_init_creds_opt_alloc",
    "krb5_get_init_creds_opt_free",
    "krb5_get_init_creds_opt_set_tkt_life",
    "krb5_get_init_creds_opt_set_renew_life",
    "krb5_get_init_creds_keytab",
    "krb5_get_init_creds_opt_set_forwardable",
    "krb5_get_init_creds_opt_set_address_list",
    "krb5_get_init_creds_password",
    "krb5_verify_init_creds",
    "krb5_verify_init_creds_opt_init",
    "krb5_verify_init_creds_opt_set_ap_req_nofail",
    "krb5_auth_con_init",
    "krb5_auth_con_free",
    "krb5_auth_con_setflags",
    "krb5_auth_con_setaddrs",
    "krb5_auth_con_setrcache",
    "krb5_auth_con_getauthenticator",
    "krb5_free_authenticator",
    "krb5_get_profile",
    "profile_get_integer",
    "profile_release",
    "krb5_get_server_rcache",
    "k5_rc_resolve",
    "krb5_mk_req_extended",
    "krb5_rd_req",
    "krb5_mk_rep",
    "krb5_rd_rep",
    "krb5_free_ap_rep_enc_part",
    "krb5_free_ticket",
    "krb5_mk_error",
    "krb5_rd_error",
    "krb5_free_error",
    "krb5_free_data_contents",
    "krb5_mk_priv",
    "krb5_rd_priv",
    // a large KRB-PRIV (DUMP reply) without copies (src/krb5/priv_in_place.rs)
    "krb5_auth_con_getrecvsubkey_k",
    "krb5_auth_con_getkey_k",
    "krb5_auth_con_getremoteseqnumber",
    "krb5_k_key_enctype",
    "krb5_k_decrypt_iov",
    "krb5_k_free_key",
    "krb5_k_key_keyblock",
    "krb5_free_keyblock",
    "krb5_k_create_key", // unit tests: a libkrb5 key from raw bytes
    "krb5_auth_con_getsendsubkey_k",
    // one key object for both directions (AuthContext::share_subkey)
    "krb5_auth_con_setsendsubkey_k",
    "krb5_auth_con_getlocalseqnumber",
    "krb5_k_encrypt_iov",
    "krb5_c_crypto_length",
    "krb5_c_padding_length",
    "krb5_mk_ncred",
    "krb5_rd_cred",
    "krb5_timeofday",
    "krb5_us_timeofday",
    "krb5_kt_get_entry",
    "krb5_free_enctypes",
    "krb5_get_permitted_enctypes",
    "krb5_auth_con_setrecvsubkey",
    "krb5_is_config_principal",
    "krb5_get_time_offsets",
    "krb5_set_real_time", // unit tests: a context with a KDC time offset
];

const VARS: &[&str] = &[
    "KRB5_AUTH_CONTEXT_DO_SEQUENCE",
    "AP_OPTS_MUTUAL_REQUIRED",
    "AP_OPTS_USE_SUBKEY",
    "KDC_OPT_CANONICALIZE",
    "KDC_OPT_FORWARDED",
    "KDC_OPT_RENEW",
    "TKT_FLG_FORWARDABLE",
    "TKT_FLG_PROXIABLE",
    "TKT_FLG_MAY_POSTDATE",
    "TKT_FLG_RENEWABLE",
    "TKT_FLG_INVALID",
    "ADDRTYPE_INET",
    "ADDRTYPE_INET6",
    "KRB5_CC_BADNAME",
    "KRB5_CC_END",
    "KRB5_CC_FORMAT",
    "KRB5_CC_NOTFOUND",
    "KRB5_FCC_NOFILE",
    "KRB5_FCC_PERM",
    "KRB5_KT_END",
    "KRB5KRB_AP_ERR_REPEAT",
    // password login and its verification (auks-gateway, src/krb5/password.rs)
    "KRB5KDC_ERR_CLIENT_REVOKED",
    "KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN",
    "KRB5KDC_ERR_KEY_EXP",
    "KRB5KDC_ERR_NAME_EXP",
    "KRB5KDC_ERR_POLICY",
    "KRB5KDC_ERR_PREAUTH_FAILED",
    "KRB5KDC_ERR_PREAUTH_REQUIRED",
    "KRB5KRB_AP_ERR_BAD_INTEGRITY",
    "KRB5_KDC_UNREACH",
    "KRB5_REALM_CANT_RESOLVE",
    "KRB5_LIBOS_CANTREADPWD",
    "KRB5_LIBOS_PWDINTR",
    "KRB5_PREAUTH_FAILED",
    "KRB5KRB_ERR_GENERIC",
    "KRB5KRB_AP_ERR_TKT_EXPIRED",
    "KRB5KDC_ERR_TGT_REVOKED",
    "ERROR_TABLE_BASE_krb5",
    "KRB5_KEYUSAGE_KRB_PRIV_ENCPART",
    "KRB5_CRYPTO_TYPE_STREAM",
    "KRB5_CRYPTO_TYPE_DATA",
    "KRB5_CRYPTO_TYPE_HEADER",
    "KRB5_CRYPTO_TYPE_PADDING",
    "KRB5_CRYPTO_TYPE_TRAILER",
];

fn main() {
    krb5_bindings();
    spank_bindings();
    built_against();
    // libauks.so is never unmapped (dlclose is a no-op): a thread it
    // started may outlive the hook that started it (the client's service
    // ticket request left to finish after the request's Timeout).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    static_unwinder();
}

/// Link GCC's unwinder statically (`libgcc_eh.a`) instead of
/// `libgcc_s.so.1`, into libauks.so and every program of this crate.
///
/// Why: loading libgcc_s.so.1 runs its constructor `__cpu_indicator_init`,
/// a series of `cpuid` instructions; under a hypervisor each one traps, and
/// the load cost about 0.1 ms of CPU per process on the testbed
/// (`perf stat` of an empty C program with and without it). A `--auks=yes`
/// step loaded it four times: the plugin in srun and in slurmstepd, srun's
/// ADD helper and the renewer; a step inside an allocation twice (issue 9).
///
/// How: the standard library asks the linker for `-lgcc_s`; a linker
/// script of that name in a directory searched first (as Debian's own
/// `libgcc_s.so` is a script) hands it `libgcc_eh.a` instead, which is
/// what `gcc -static-libgcc` links. The unwinder's symbols stay local
/// (libauks.so exports only its SPANK symbols), and a panic never leaves
/// the plugin (every hook catches it), so a second unwinder in the
/// process (slurmstepd's own libgcc_s, if it has one) never meets ours.
fn static_unwinder() {
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "linux" || target_env != "gnu" {
        return;
    }
    let dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("static-unwinder");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/static-unwinder");
    std::fs::write(
        dir.join("libgcc_s.so"),
        "/* auks-rs build.rs: GCC's unwinder, linked statically */\nINPUT ( -lgcc_eh )\n",
    )
    .expect("write OUT_DIR/static-unwinder/libgcc_s.so");
    println!("cargo:rustc-link-search=native={}", dir.display());
}

fn krb5_bindings() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");
    // Nothing is linked: libkrb5 is loaded on first use (src/krb5/ffi.rs),
    // so a process that loads libauks.so and never needs Kerberos (a step
    // with --auks=no, a step that keeps its job's FILE ccache) does not pay for mapping
    // and relocating libkrb5 and its five libraries.

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .allowlist_recursively(true)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        // A struct of function pointers filled from the library by dlsym,
        // all of them required: a missing symbol fails the load, never a call.
        .dynamic_library_name("Krb5Lib")
        .dynamic_link_require_all(true);
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    let bindings = builder
        .generate()
        .expect("bindgen failed on wrapper.h: is libkrb5-dev (krb5.h) installed?");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("krb5_bindings.rs");
    bindings
        .write_to_file(out)
        .expect("cannot write krb5 bindings");
}

/// Declarations of the Slurm SPANK API used by `src/spank` (the plugin in
/// the cdylib), from the installed `<slurm/spank.h>`. Nothing is linked:
/// the `spank_*` and `slurm_*` symbols are resolved when srun, sbatch,
/// salloc, slurmd or slurmstepd load the plugin.
fn spank_bindings() {
    const SPANK_FUNCTIONS: &[&str] = &[
        "spank_context",
        "spank_option_register",
        "spank_get_item",
        "spank_getenv",
        "spank_setenv",
        "spank_strerror",
        "slurm_error",
        "slurm_info",
        "slurm_verbose",
    ];
    println!("cargo:rerun-if-changed=/usr/include/slurm/spank.h");
    println!("cargo:rerun-if-changed=/usr/include/slurm/slurm_version.h");
    let mut builder = bindgen::Builder::default()
        // spank.h does not include <stdint.h> itself
        .header_contents(
            "auks_spank_wrapper.h",
            "#include <stdint.h>\n#include <sys/types.h>\n#include <slurm/spank.h>\n",
        )
        .allowlist_type("spank_option")
        .allowlist_type("spank_item")
        .allowlist_type("spank_context")
        .allowlist_var("SLURM_VERSION_NUMBER")
        .allowlist_var("ESPANK_SUCCESS")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false);
    for f in SPANK_FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    let bindings = builder
        .generate()
        .expect("bindgen failed on <slurm/spank.h>: is libslurm-dev installed?");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("spank_bindings.rs");
    bindings
        .write_to_file(out)
        .expect("cannot write spank bindings");
}

/// The Slurm and MIT krb5 versions this build was made against, for
/// `--version` (`AUKS_BUILT_SLURM`, `AUKS_BUILT_KRB5`; "unknown" when they
/// cannot be found).
fn built_against() {
    let slurm = std::fs::read_to_string("/usr/include/slurm/slurm_version.h")
        .ok()
        .and_then(|h| {
            let n = h
                .lines()
                .find_map(|l| l.strip_prefix("#define SLURM_VERSION_NUMBER"))?;
            let n = u32::from_str_radix(n.trim().trim_start_matches("0x"), 16).ok()?;
            Some(format!("{}.{:02}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff))
        })
        .unwrap_or_else(|| "unknown".into());
    let krb5 = std::process::Command::new("pkg-config")
        .args(["--modversion", "krb5"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AUKS_BUILT_SLURM={slurm}");
    println!("cargo:rustc-env=AUKS_BUILT_KRB5={krb5}");
}
