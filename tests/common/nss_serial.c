/* Test infrastructure only (never part of a package): cwrap's nss_wrapper
 * (Debian 1.1.12) is not safe for concurrent lookups: ten threads calling
 * getpwnam_r on a large passwd file crash it (strcmp on freed memory) or
 * make it answer "no such user". auksd looks accounts up from its worker
 * threads, as it must with the system's NSS, which is thread-safe. Preloaded
 * before nss_wrapper, this library takes one lock around each lookup and
 * calls nss_wrapper's own function (the next definition of the symbol). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stddef.h>

static pthread_mutex_t nss_lock = PTHREAD_MUTEX_INITIALIZER;

#define SERIAL(ret, name, params, args)                                      \
    ret name params                                                          \
    {                                                                        \
        static ret(*next) params;                                            \
        ret r;                                                               \
        pthread_mutex_lock(&nss_lock);                                       \
        if (next == NULL)                                                    \
            next = (ret(*) params)dlsym(RTLD_NEXT, #name);                   \
        r = next args;                                                       \
        pthread_mutex_unlock(&nss_lock);                                     \
        return r;                                                            \
    }

SERIAL(int, getpwnam_r,
       (const char *n, struct passwd *p, char *b, size_t l, struct passwd **o),
       (n, p, b, l, o))
SERIAL(int, getpwuid_r,
       (uid_t u, struct passwd *p, char *b, size_t l, struct passwd **o),
       (u, p, b, l, o))
SERIAL(int, getgrnam_r,
       (const char *n, struct group *g, char *b, size_t l, struct group **o),
       (n, g, b, l, o))
SERIAL(int, getgrgid_r,
       (gid_t i, struct group *g, char *b, size_t l, struct group **o),
       (i, g, b, l, o))
SERIAL(int, getgrouplist, (const char *u, gid_t g, gid_t *gs, int *n),
       (u, g, gs, n))
SERIAL(struct passwd *, getpwnam, (const char *n), (n))
SERIAL(struct passwd *, getpwuid, (uid_t u), (u))
SERIAL(struct group *, getgrnam, (const char *n), (n))
SERIAL(struct group *, getgrgid, (gid_t i), (i))
