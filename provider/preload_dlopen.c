/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What our dlsym(), dlopen() and dlmopen() do around a load: run init()
 * once libssl is in the process (so that the SSL_CTX watch runs even if no
 * call reaches our libssl functions), tell whether a load can be examined
 * from here without changing which file glibc finds, and after one, report
 * what escapes us (RTLD_DEEPBIND, another namespace).
 */
#include <string.h>
#include "preload_shared.h"

static int count_adds(struct dl_phdr_info *info, size_t size, void *data)
{
    if (size >= offsetof(struct dl_phdr_info, dlpi_adds) + sizeof(info->dlpi_adds))
        *(unsigned long long *)data = info->dlpi_adds;
    return 1; /* the first object is enough */
}

/*
 * Runs init() once libssl is in the process, so that ctx_made() watches
 * from then on, even if no call ever reaches our libssl functions.  Looks
 * only when objects were loaded since it last did.
 */
void init_if_libssl_loaded(void)
{
    static unsigned long long seen_adds;
    unsigned long long adds = 0;
    void *h;

    if (__atomic_load_n(&init_done, __ATOMIC_ACQUIRE) || in_emsguard > 0)
        return;
    dl_iterate_phdr(count_adds, &adds);
    if (adds == __atomic_load_n(&seen_adds, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&seen_adds, adds, __ATOMIC_RELAXED);
    if ((h = open_here("libssl.so.3", RTLD_LAZY | RTLD_NOLOAD)) == NULL)
        return;
    dlclose(h);
    ready();
}

/*
 * True when an object whose dynamic section is |dyn| has a library search
 * path of its own (DT_RPATH, DT_RUNPATH) or skips the default directories.
 */
static int own_search_path(const ElfW(Dyn) *dyn)
{
    for (; dyn != NULL && dyn->d_tag != DT_NULL; dyn++)
        if (dyn->d_tag == DT_RPATH || dyn->d_tag == DT_RUNPATH
            || (dyn->d_tag == DT_FLAGS_1 && (dyn->d_un.d_val & DF_1_NODEFLIB) != 0))
            return 1;
    return 0;
}

static int rpath_in_object(struct dl_phdr_info *info, size_t size, void *data)
{
    ElfW(Half) i;

    (void)size;
    (void)data;
    if (info->dlpi_name == NULL || info->dlpi_name[0] == '\0')
        return 0; /* the program: its DT_RPATH applies from anywhere */
    for (i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Dyn) *dyn;

        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
            continue;
        for (dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
             dyn->d_tag != DT_NULL; dyn++)
            if (dyn->d_tag == DT_RPATH)
                return 1;
    }
    return 0;
}

/*
 * Would glibc find the same file for |file| if we called dlopen() on behalf
 * of |caller|?  A path with '/' is not searched; $ORIGIN is expanded against
 * the caller.  A bare name is searched in the caller's DT_RPATH (and that of
 * the objects that loaded it), the program's DT_RPATH, LD_LIBRARY_PATH, the
 * caller's DT_RUNPATH, then the cache and default directories.  This
 * library has no search path of its own and was loaded by the program, so
 * the answer is the same when neither the caller nor any loaded library has
 * one.
 */
int same_file_from_here(const char *file, const void *caller)
{
    struct link_map *lm = NULL;
    Dl_info info;

    if (file == NULL || strchr(file, '$') != NULL)
        return 0;
    if (strchr(file, '/') != NULL)
        return 1;
    if (dladdr1(caller, &info, (void **)&lm, RTLD_DL_LINKMAP) == 0 || lm == NULL
        || own_search_path(lm->l_ld))
        return 0;
    return dl_iterate_phdr(rpath_in_object, NULL) == 0;
}

/*
 * After a dlopen()/dlmopen() we could look at: libssl arrived (init() and
 * the SSL_CTX watch), an RTLD_DEEPBIND object that binds to libssl itself
 * (its calls never reach us), libssl in another namespace.
 */
void after_load(void *h, int flags)
{
    struct link_map *opened = NULL, *definer = NULL;
    Lmid_t lmid = LM_ID_BASE;
    void *ctx_new;
    Dl_info info;

    if (dlinfo(h, RTLD_DI_LMID, &lmid) == 0 && lmid != LM_ID_BASE) {
        check_namespace(h);
        return;
    }
    init_if_libssl_loaded();
    /*
     * RTLD_DEEPBIND on libssl itself changes only whom libssl's own calls
     * bind to; the program reaches it through dlsym(), which is ours.  On
     * any other object that has libssl in its scope, it binds that object's
     * libssl calls past us.
     */
    if ((flags & RTLD_DEEPBIND) == 0
        || (ctx_new = next_dlsym()(h, "SSL_CTX_new")) == NULL
        || dlinfo(h, RTLD_DI_LINKMAP, &opened) != 0
        || dladdr1(ctx_new, &info, (void **)&definer, RTLD_DL_LINKMAP) == 0
        || definer == opened || ready() == PRELOAD_PASSIVE)
        return;
    say_loud("error: %s was loaded with RTLD_DEEPBIND and binds to %s directly: "
             "SSL_CTXs it makes escape this library and get no emsguard policy",
        opened->l_name, info.dli_fname);
}
