// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork C shim: the state of eventfd, epoll and pipe descriptors, which a
 * module can read and fill but not create (eventfd(), epoll_create() and
 * pipe() have no exported kernel entry: the restorer creates them, see
 * restore_fds.rs). What Rust cannot reach: f_op->show_fdinfo (the text
 * /proc/PID/fdinfo shows, parsed in Rust), the pipe ring, kernel_write.
 */
#include <linux/eventfd.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/magic.h>
#include <linux/net.h>
#include <linux/pipe_fs_i.h>
#include <linux/seq_file.h>
#include "shim.h"

/* The anonymous inode's name ("[eventpoll]"), as anon_inode_getfile gave it. */
static bool anon_named(struct file *file, const char *name)
{
	return !strcmp(file->f_path.dentry->d_name.name, name);
}

/* An anonymous pipe end (pipe2()): its pipe; NULL for anything else,
 * named FIFOs and notification pipes included. */
static struct pipe_inode_info *anon_pipe(struct file *file)
{
	struct inode *inode = file_inode(file);
	struct pipe_inode_info *pipe = file->private_data;

	/* An O_PATH file of a pipe does not keep the pipe alive: not an end. */
	if (!S_ISFIFO(inode->i_mode) || inode->i_sb->s_magic != PIPEFS_MAGIC || (file->f_mode & FMODE_PATH) ||
	    !pipe || pipe != inode->i_pipe)
		return NULL;
	if (pipe_has_watch_queue(pipe))
		return NULL;
	return pipe;
}

/* CXLFORK_FILE_* of a file. */
u32 cxlfork_file_kind(struct file *file)
{
	umode_t mode = file_inode(file)->i_mode;
	struct eventfd_ctx *ctx;

	if (S_ISREG(mode))
		return CXLFORK_FILE_REG;
	if (S_ISDIR(mode))
		return CXLFORK_FILE_DIR;
	if (S_ISCHR(mode))
		return CXLFORK_FILE_CHR;
	if (S_ISBLK(mode))
		return CXLFORK_FILE_BLK;
	if (S_ISFIFO(mode))
		return anon_pipe(file) ? CXLFORK_FILE_PIPE : CXLFORK_FILE_FIFO;
	if (S_ISSOCK(mode))
		return CXLFORK_FILE_SOCK;
	ctx = eventfd_ctx_fileget(file);
	if (!IS_ERR(ctx)) {
		eventfd_ctx_put(ctx);
		return CXLFORK_FILE_EVENTFD;
	}
	if (file->f_op->show_fdinfo && anon_named(file, "[eventpoll]"))
		return CXLFORK_FILE_EPOLL;
	return CXLFORK_FILE_OTHER;
}

/*
 * The file's own fdinfo lines (what f_op->show_fdinfo adds to
 * /proc/PID/fdinfo/N) into buf: their length, -EOVERFLOW if they do not
 * fit, -EOPNOTSUPP for a file without any.
 */
long cxlfork_file_fdinfo(struct file *file, char *buf, size_t len)
{
	struct seq_file m = { .buf = buf, .size = len, .file = file };

	if (!file->f_op->show_fdinfo)
		return -EOPNOTSUPP;
	file->f_op->show_fdinfo(&m, file);
	if (seq_has_overflowed(&m))
		return -EOVERFLOW;
	return m.count;
}

/* A pipe buffer's bytes, page by page (its page may be compound). */
static void copy_buf(char *dst, const struct pipe_buffer *b)
{
	size_t off = b->offset, left = b->len;

	while (left) {
		size_t o = offset_in_page(off), c = min_t(size_t, left, PAGE_SIZE - o);

		memcpy_from_page(dst, b->page + (off >> PAGE_SHIFT), o, c);
		dst += c;
		off += c;
		left -= c;
	}
}

/*
 * An anonymous pipe: its capacity in bytes (F_GETPIPE_SZ), whether it
 * holds packets (O_DIRECT writes), and, if buf is not NULL, its buffered
 * bytes copied to buf (at most len: -EOVERFLOW beyond). Returns the number
 * of bytes buffered (which can exceed the capacity: a splice from a socket
 * fills a slot with up to 32 KiB of a compound page), or -errno (-EINVAL:
 * not an anonymous pipe).
 */
long cxlfork_pipe_peek(struct file *file, u64 *capacity, bool *packet, char *buf, size_t len)
{
	struct pipe_inode_info *pipe = anon_pipe(file);
	typeof(pipe->head) i;
	long n = 0;
	int ret = 0;

	if (!pipe)
		return -EINVAL;
	pipe_lock(pipe);
	*capacity = (u64)pipe->max_usage << PAGE_SHIFT;
	*packet = false;
	for (i = pipe->tail; i != pipe->head; i++) {
		struct pipe_buffer *b = pipe_buf(pipe, i);

		*packet |= !!(b->flags & PIPE_BUF_FLAG_PACKET);
		if (!buf) {
			n += b->len;
			continue;
		}
		if (b->len > len - n) {
			ret = -EOVERFLOW;
			break;
		}
		ret = pipe_buf_confirm(pipe, b);
		if (ret)
			break;
		copy_buf(buf + n, b);
		n += b->len;
	}
	pipe_unlock(pipe);
	return ret ? ret : n;
}

/* Whether the file is open for writing (a pipe's write end). */
bool cxlfork_file_writable(struct file *file)
{
	return file->f_mode & FMODE_WRITE;
}

/* The inode number of a file (as an epoll's fdinfo names its targets). */
u64 cxlfork_file_ino(struct file *file)
{
	return file_inode(file)->i_ino;
}

/* f_flags of a file. */
u32 cxlfork_file_flags(struct file *file)
{
	return file->f_flags;
}

/* Writes len bytes of buf to the file (an eventfd's counter, a pipe's
 * bytes): the bytes written or -errno. */
long cxlfork_file_write(struct file *file, const void *buf, size_t len)
{
	loff_t pos = 0;

	return kernel_write(file, buf, len, &pos);
}

/* A reference to current's file at descriptor fd, NULL if none (or an
 * O_PATH one). */
struct file *cxlfork_current_fd_file(u32 fd)
{
	return fget(fd);
}

/* Whether current's descriptor fd is close-on-exec. */
bool cxlfork_current_fd_cloexec(u32 fd)
{
	bool r;

	rcu_read_lock();
	r = close_on_exec(fd, current->files);
	rcu_read_unlock();
	return r;
}
