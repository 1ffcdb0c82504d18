package store

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// residentFileBytes returns the process's resident file-backed (and
// shared) memory: the third field of /proc/self/statm, in pages, which is
// RssFile + RssShmem of /proc/self/status. It is cheaper to read than
// status and, for this process, the same: besides bbolt's mapping the
// only file-backed pages are the executable's.
func residentFileBytes() (int64, bool) {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(data)
	if len(f) < 3 {
		return 0, false
	}
	pages, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}

// dropMapped tells the kernel that this process does not need the size
// bytes mapped at addr (madvise MADV_DONTNEED). The caller guarantees that
// the range is bbolt's live, shared, read-only mapping (see trimMapped).
// The raw syscall takes the address as an integer, so no Go pointer to
// the range is made.
func dropMapped(addr uintptr, size int64) error {
	if addr == 0 || size <= 0 {
		return nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED); errno != 0 {
		return os.NewSyscallError("madvise", errno)
	}
	return nil
}
