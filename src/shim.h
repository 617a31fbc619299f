/* SPDX-License-Identifier: GPL-2.0 */
/* cxlfork C shim: prototypes of shim.c, mirrored for Rust in ffi.rs. */
#ifndef CXLFORK_SHIM_H
#define CXLFORK_SHIM_H

#include <linux/types.h>

int cxlfork_check_range(u64 phys, u64 size);
void *cxlfork_memremap_wb(u64 phys, u64 size);
void cxlfork_memunmap(void *addr);
void cxlfork_pool_read(void *dst, const void *src, size_t len);
void cxlfork_pool_write(void *dst, const void *src, size_t len);
void cxlfork_pool_zero(void *dst, size_t len);
bool cxlfork_capable_sys_admin(void);
u64 cxlfork_realtime_ns(void);
u64 cxlfork_random_u64(void);
void cxlfork_random_uuid(u8 out[16]);
void cxlfork_nodename(char *buf, size_t len);

#endif
