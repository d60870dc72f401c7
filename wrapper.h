/* Input for bindgen: the system MIT krb5 header, plus the few symbols the
 * AUKS protocol needs that libkrb5 exports without declaring them in krb5.h.
 * Prototypes below are checked against the installed library by the link
 * step and by the integration tests; they match MIT krb5 1.18 - 1.21. */
#include <krb5/krb5.h>
/* profile_get_integer, profile_release: libdefaults clockskew (exported by libkrb5). */
#include <profile.h>

/* TGS request with an explicit TGT and KDC options (lib/krb5/krb/gc_via_tkt.c). */
krb5_error_code KRB5_CALLCONV
krb5_get_cred_via_tkt(krb5_context context, krb5_creds *tkt,
                      krb5_flags kdcoptions, krb5_address *const *address,
                      krb5_creds *in_cred, krb5_creds **out_cred);

/* Replay cache by name, e.g. "none:" (lib/krb5/rcache/rc_base.c, MIT >= 1.18). */
krb5_error_code k5_rc_resolve(krb5_context context, const char *name,
                              krb5_rcache *rc_out);
