//! Generates Rust declarations for the subset of libkrb5 that auks-rs uses,
//! straight from the installed MIT headers (no download, no vendored copy).
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
    "krb5_principal_compare",
    "krb5_build_principal_ext",
    "krb5_aname_to_localname",
    "krb5_cc_default",
    "krb5_cc_default_name",
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
    "krb5_cc_move",
    "krb5_free_cred_contents",
    "krb5_free_creds",
    "krb5_free_tgt_creds",
    "krb5_free_string",
    "krb5_get_credentials",
    "krb5_get_cred_via_tkt",
    "krb5_kt_resolve",
    "krb5_kt_default",
    "krb5_kt_close",
    "krb5_kt_start_seq_get",
    "krb5_kt_next_entry",
    "krb5_kt_end_seq_get",
    "krb5_free_keytab_entry_contents",
    "krb5_get_init_creds_opt_alloc",
    "krb5_get_init_creds_opt_free",
    "krb5_get_init_creds_opt_set_tkt_life",
    "krb5_get_init_creds_opt_set_renew_life",
    "krb5_get_init_creds_opt_set_forwardable",
    "krb5_get_init_creds_opt_set_address_list",
    "krb5_get_init_creds_keytab",
    "krb5_get_init_creds_password",
    "krb5_verify_init_creds",
    "krb5_verify_init_creds_opt_init",
    "krb5_verify_init_creds_opt_set_ap_req_nofail",
    "krb5_sname_to_principal",
    "krb5_auth_con_init",
    "krb5_auth_con_free",
    "krb5_auth_con_setflags",
    "krb5_auth_con_setaddrs",
    "krb5_auth_con_setrcache",
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
    "krb5_free_data",
    "krb5_mk_priv",
    "krb5_rd_priv",
    "krb5_mk_ncred",
    "krb5_rd_cred",
    "krb5_timeofday",
    "krb5_us_timeofday",
    "krb5_is_config_principal",
];

const VARS: &[&str] = &[
    "KRB5_AUTH_CONTEXT_.*",
    "AP_OPTS_.*",
    "KDC_OPT_.*",
    "TKT_FLG_.*",
    "ADDRTYPE_INET.*",
    "KRB5_TC_.*",
    "KRB5_CC_.*",
    "KRB5_FCC_.*",
    "KRB5_KT_END",
    "KRB5_LIBOS_.*",
    "KRB5_PREAUTH_FAILED",
    "KRB5_NT_.*",
    "KRB5_GC_.*",
    "KRB5_SENDAUTH_.*",
    "KRB5KRB_ERR_GENERIC",
    "KRB5KRB_AP_ERR_.*",
    "KRB5KDC_ERR_.*",
    "KRB5_KDCREP_SKEW",
    "KRB5_REALM_CANT_RESOLVE",
    "KRB5_KDC_UNREACH",
    "KRB5_LNAME_NOTRANS",
    "KRB5_NO_LOCALNAME",
    "ERROR_TABLE_BASE_krb5",
];

fn main() {
    krb5_bindings();
    spank_bindings();
}

fn krb5_bindings() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-lib=krb5");

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .allowlist_recursively(true)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
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
        "spank_remote",
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
