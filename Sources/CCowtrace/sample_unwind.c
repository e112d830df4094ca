// libunwind over a perf sample: the registers and the copy of the top of the user stack the
// kernel took at the fault, and the ELF files the process maps (their .eh_frame_hdr is found
// through PT_GNU_EH_FRAME and searched with libunwind's own table search, as perf does). Nothing
// is read from the live process: by the time a sample is unwound its stack has moved on.
#include "sample_unwind.h"
#include <elf.h>
#include <fcntl.h>
#include <libunwind.h>
#include "unwind_registers.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip, unw_dyn_info_t *di, unw_proc_info_t *pi,
                                              int need_unwind_info, void *arg);

// One ELF file, opened once: where its .eh_frame_hdr table is.
struct elf_file {
    char path[PATH_MAX];
    int fd;
    int usable;
    uint64_t first_load;   // p_vaddr of the PT_LOAD at file offset 0, page-aligned
    uint64_t hdr_vaddr;    // PT_GNU_EH_FRAME p_vaddr
    uint64_t hdr_offset;
    uint64_t table_offset; // from the header's start
    uint64_t fde_count;
    // The last page read, for the many word reads of one table search.
    uint64_t page_offset;
    int page_valid;
    unsigned char page[4096];
};

struct mapping {
    uint64_t start, end, offset;
    struct elf_file *file;  // NULL: not a file
};

#define MEMO_WORDS 128
#define MEMO_REGS 24
struct memo {
    int valid;
    uint64_t rip;
    int nregs, nwords, nframes;
    int regnums[MEMO_REGS];
    unw_word_t regvals[MEMO_REGS];
    uint64_t addrs[MEMO_WORDS];
    unw_word_t words[MEMO_WORDS];
    uint64_t frames[64];
};

struct process {
    pid_t pid;
    int stale;
    struct mapping *maps;
    int count;
    unw_addr_space_t space;
    struct memo memo, scratch;
    int recording, overflow;
};

struct cow_sample_unwinder {
    struct process *processes;
    int process_count;
    struct elf_file **files;
    int file_count;
};

// What the accessors see during one unwind.
struct context {
    struct process *process;
    const struct user_regs_struct *regs;
    const unsigned char *stack;
    uint64_t stack_start, stack_size;
};

static struct elf_file *open_file(cow_sample_unwinder *u, const char *path) {
    for (int i = 0; i < u->file_count; i++) {
        if (strcmp(u->files[i]->path, path) == 0) return u->files[i];
    }
    struct elf_file *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    struct elf_file **grown = realloc(u->files, sizeof(*grown) * (size_t)(u->file_count + 1));
    if (!grown) {
        free(f);
        return NULL;
    }
    u->files = grown;
    u->files[u->file_count++] = f;
    snprintf(f->path, sizeof f->path, "%s", path);
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) return f;
    Elf64_Ehdr eh;
    if (pread(f->fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
        return f;
    int found_hdr = 0, found_load = 0;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(f->fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph)) != (ssize_t)sizeof ph) return f;
        if (ph.p_type == PT_GNU_EH_FRAME) {
            f->hdr_vaddr = ph.p_vaddr;
            f->hdr_offset = ph.p_offset;
            found_hdr = 1;
        } else if (ph.p_type == PT_LOAD && ph.p_offset == 0 && !found_load) {
            f->first_load = ph.p_vaddr & ~(uint64_t)4095;
            found_load = 1;
        }
    }
    unsigned char hdr[12];
    if (!found_hdr || !found_load || pread(f->fd, hdr, sizeof hdr, (off_t)f->hdr_offset) != (ssize_t)sizeof hdr) return f;
    // version 1; eh_frame_ptr pcrel|sdata4; fde_count udata4; table datarel|sdata4: the usual
    // encoding (the only one perf accepts too).
    if (hdr[0] != 1 || hdr[1] != 0x1b || hdr[2] != 0x03 || hdr[3] != 0x3b) return f;
    uint32_t count;
    memcpy(&count, hdr + 8, sizeof count);
    f->fde_count = count;
    f->table_offset = 12;
    f->usable = 1;
    return f;
}

static int read_file_word(struct elf_file *f, uint64_t offset, unw_word_t *val) {
    if (f->fd < 0) return -1;
    uint64_t base = offset & ~(uint64_t)4095;
    if ((offset & 4095) <= 4096 - sizeof(*val)) {
        if (!f->page_valid || f->page_offset != base) {
            ssize_t n = pread(f->fd, f->page, sizeof f->page, (off_t)base);
            if (n <= 0) return -1;
            if (n < (ssize_t)sizeof f->page) memset(f->page + n, 0, sizeof f->page - (size_t)n);
            f->page_offset = base;
            f->page_valid = 1;
        }
        memcpy(val, f->page + (offset & 4095), sizeof(*val));
        return 0;
    }
    return pread(f->fd, val, sizeof(*val), (off_t)offset) == (ssize_t)sizeof(*val) ? 0 : -1;
}

static void read_maps(cow_sample_unwinder *u, struct process *p) {
    free(p->maps);
    p->maps = NULL;
    p->count = 0;
    p->stale = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", p->pid);
    FILE *file = fopen(path, "re");
    if (!file) return;
    char line[PATH_MAX + 128];
    int capacity = 0;
    while (fgets(line, sizeof line, file)) {
        unsigned long long start, end, offset;
        char perms[8];
        int name_at = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &offset, &name_at) < 4) continue;
        char *name = name_at > 0 ? line + name_at : NULL;
        if (name) name[strcspn(name, "\n")] = 0;
        if (p->count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            struct mapping *grown = realloc(p->maps, sizeof(*grown) * (size_t)capacity);
            if (!grown) break;
            p->maps = grown;
        }
        struct mapping *m = &p->maps[p->count++];
        m->start = start;
        m->end = end;
        m->offset = offset;
        m->file = name && name[0] == '/' ? open_file(u, name) : NULL;
    }
    fclose(file);
}

static struct mapping *mapping_at(struct process *p, uint64_t address) {
    for (int i = 0; i < p->count; i++) {
        if (address >= p->maps[i].start && address < p->maps[i].end) return &p->maps[i];
    }
    return NULL;
}

static struct process *process_for(cow_sample_unwinder *u, pid_t pid) {
    for (int i = 0; i < u->process_count; i++) {
        if (u->processes[i].pid == pid) return &u->processes[i];
    }
    return NULL;
}

// ---- accessors -------------------------------------------------------------------


static int in_stack(const struct context *c, uint64_t addr) {
    return addr >= c->stack_start && addr - c->stack_start + sizeof(unw_word_t) <= c->stack_size;
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need, void *arg) {
    struct context *c = arg;
    struct mapping *m = mapping_at(c->process, ip);
    if (!m || !m->file || !m->file->usable) return -UNW_ENOINFO;
    struct elf_file *f = m->file;
    // Load bias: where the file's offset-0 mapping is, against where the file asks for it.
    uint64_t base = 0, low = UINT64_MAX, high = 0;
    int based = 0;
    for (int i = 0; i < c->process->count; i++) {
        struct mapping *other = &c->process->maps[i];
        if (other->file != f) continue;
        if (other->offset == 0 && !based) {
            base = other->start;
            based = 1;
        }
        if (other->start < low) low = other->start;
        if (other->end > high) high = other->end;
    }
    if (!based) return -UNW_ENOINFO;
    uint64_t bias = base - f->first_load;
    unw_dyn_info_t di;
    memset(&di, 0, sizeof di);
    di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    di.start_ip = low;
    di.end_ip = high;
    di.u.rti.segbase = bias + f->hdr_vaddr;
    di.u.rti.table_data = bias + f->hdr_vaddr + f->table_offset;
    di.u.rti.table_len = f->fde_count * 8 / sizeof(unw_word_t);
    return _Ux86_64_dwarf_search_unwind_table(as, ip, &di, pi, need, arg);
}

static void put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg) {
    (void)as; (void)pi; (void)arg;
}

static int get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg) {
    (void)as; (void)addr; (void)arg;
    return -UNW_ENOINFO;
}

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg) {
    (void)as;
    struct context *c = arg;
    if (write) return -UNW_EINVAL;
    if (in_stack(c, addr)) {
        memcpy(val, c->stack + (addr - c->stack_start), sizeof(*val));
        struct process *p = c->process;
        if (p->recording) {
            if (p->scratch.nwords < MEMO_WORDS) {
                p->scratch.addrs[p->scratch.nwords] = addr;
                p->scratch.words[p->scratch.nwords++] = *val;
            } else {
                p->overflow = 1;
            }
        }
        return 0;
    }
    // Outside the copied stack only file contents can be trusted (they do not change).
    struct mapping *m = mapping_at(c->process, addr);
    if (!m || !m->file || addr + sizeof(*val) > m->end) return -UNW_EINVAL;
    return read_file_word(m->file, addr - m->start + m->offset, val) == 0 ? 0 : -UNW_EINVAL;
}

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg) {
    (void)as;
    struct context *c = arg;
    if (write) return -UNW_EREADONLYREG;
    int rc = register_value(c->regs, reg, val);
    struct process *p = c->process;
    if (rc == 0 && p->recording) {
        if (p->scratch.nregs < MEMO_REGS) {
            p->scratch.regnums[p->scratch.nregs] = reg;
            p->scratch.regvals[p->scratch.nregs++] = *val;
        } else {
            p->overflow = 1;
        }
    }
    return rc;
}

static int get_proc_name(unw_addr_space_t as, unw_word_t ip, char *buf, size_t len, unw_word_t *offset, void *arg) {
    (void)as; (void)ip; (void)buf; (void)len; (void)offset; (void)arg;
    return -UNW_ENOINFO;  // names come from libdw
}

static unw_accessors_t accessors = {
    find_proc_info, put_unwind_info, get_dyn_info_list_addr, access_mem, access_reg, access_fpreg, resume, get_proc_name,
};

// ---- the unwinder ------------------------------------------------------------------

cow_sample_unwinder *cow_sample_unwinder_create(void) { return calloc(1, sizeof(cow_sample_unwinder)); }

void cow_sample_unwinder_destroy(cow_sample_unwinder *u) {
    if (!u) return;
    for (int i = 0; i < u->process_count; i++) {
        free(u->processes[i].maps);
        if (u->processes[i].space) unw_destroy_addr_space(u->processes[i].space);
    }
    free(u->processes);
    for (int i = 0; i < u->file_count; i++) {
        if (u->files[i]->fd >= 0) close(u->files[i]->fd);
        free(u->files[i]);
    }
    free(u->files);
    free(u);
}

void cow_sample_unwinder_stale(cow_sample_unwinder *u, pid_t pid) {
    struct process *p = process_for(u, pid);
    if (p) {
        p->stale = 1;
        p->memo.valid = 0;
        if (p->space) unw_flush_cache(p->space, 0, 0);
    }
}

// Whether the last unwind of this process read the same registers and stack words.
static int memo_holds(struct process *p, const struct context *c) {
    struct memo *m = &p->memo;
    if (!m->valid || m->rip != c->regs->rip) return 0;
    for (int i = 0; i < m->nregs; i++) {
        unw_word_t v;
        if (register_value(c->regs, m->regnums[i], &v) != 0 || v != m->regvals[i]) return 0;
    }
    for (int i = 0; i < m->nwords; i++) {
        unw_word_t v;
        if (!in_stack(c, m->addrs[i])) return 0;
        memcpy(&v, c->stack + (m->addrs[i] - c->stack_start), sizeof v);
        if (v != m->words[i]) return 0;
    }
    return 1;
}

int cow_sample_unwind(cow_sample_unwinder *u, pid_t pid, const struct user_regs_struct *regs, const unsigned char *stack,
                      uint64_t stack_size, uint64_t *frames, int max) {
    struct process *p = process_for(u, pid);
    if (!p) {
        struct process *grown = realloc(u->processes, sizeof(*grown) * (size_t)(u->process_count + 1));
        if (!grown) return 0;
        u->processes = grown;
        p = &u->processes[u->process_count++];
        memset(p, 0, sizeof(*p));
        p->pid = pid;
        p->stale = 1;
    }
    if (!p->space) {
        p->space = unw_create_addr_space(&accessors, 0);
        if (!p->space) return 0;
        use_cache_without_lock(p->space);
    }
    if (p->stale || !mapping_at(p, regs->rip)) {
        read_maps(u, p);
        unw_flush_cache(p->space, 0, 0);
        p->memo.valid = 0;
    }
    struct context c = { p, regs, stack, regs->rsp, stack_size };
    if (memo_holds(p, &c)) {
        int n = p->memo.nframes < max ? p->memo.nframes : max;
        memcpy(frames, p->memo.frames, sizeof(uint64_t) * (size_t)n);
        return n;
    }
    memset(&p->scratch, 0, sizeof p->scratch);
    p->scratch.rip = regs->rip;
    p->recording = 1;
    p->overflow = 0;
    unw_cursor_t cursor;
    int n = 0;
    if (unw_init_remote(&cursor, p->space, &c) == 0) {
        do {
            unw_word_t ip = 0;
            unw_get_reg(&cursor, UNW_REG_IP, &ip);
            if (ip == 0) break;
            frames[n++] = ip;
        } while (n < max && unw_step(&cursor) > 0);
    }
    if (n == 0) frames[n++] = regs->rip;
    p->recording = 0;
    if (!p->overflow && n <= 64) {
        p->scratch.nframes = n;
        memcpy(p->scratch.frames, frames, sizeof(uint64_t) * (size_t)n);
        p->scratch.valid = 1;
        p->memo = p->scratch;
    } else {
        p->memo.valid = 0;
    }
    return n;
}
