// PAGEMAP_SCAN (Linux 6.7+): the ranges of present pages of an address range, found by the
// kernel walking the page tables, so an untouched terabyte costs nothing. Debian 12's
// <linux/fs.h> predates it: the ABI is spelled out here and checked against its sizes.
#include "CCowtrace.h"
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

struct cow_pm_scan_arg {
    uint64_t size;
    uint64_t flags;
    uint64_t start;
    uint64_t end;
    uint64_t walk_end;
    uint64_t vec;
    uint64_t vec_len;
    uint64_t max_pages;
    uint64_t category_inverted;
    uint64_t category_mask;
    uint64_t category_anyof_mask;
    uint64_t return_mask;
};
_Static_assert(sizeof(struct cow_pm_scan_arg) == 96, "struct pm_scan_arg is 96 bytes (include/uapi/linux/fs.h)");
_Static_assert(sizeof(cow_page_region) == 24, "struct page_region is 24 bytes (include/uapi/linux/fs.h)");

// _IOWR('f', 16, struct pm_scan_arg)
#define COW_PAGEMAP_SCAN _IOWR('f', 16, struct cow_pm_scan_arg)
_Static_assert(COW_PAGEMAP_SCAN == 0xc0606610, "PAGEMAP_SCAN ioctl number");
#define COW_PAGE_IS_PRESENT (1 << 3)

long cow_pagemap_scan_present(int fd, uint64_t start, uint64_t end, cow_page_region *regions, uint64_t count,
                              uint64_t *walk_end) {
    struct cow_pm_scan_arg arg;
    memset(&arg, 0, sizeof(arg));
    arg.size = sizeof(arg);
    arg.start = start;
    arg.end = end;
    arg.vec = (uint64_t)(uintptr_t)regions;
    arg.vec_len = count;
    arg.category_mask = COW_PAGE_IS_PRESENT;
    arg.return_mask = COW_PAGE_IS_PRESENT;
    long n = ioctl(fd, COW_PAGEMAP_SCAN, &arg);
    *walk_end = arg.walk_end;
    return n;
}
