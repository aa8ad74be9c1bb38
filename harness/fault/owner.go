package fault

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// chownLike gives path the owner and group info records, so that a file put back is the
// server's again (pgdrill runs as root, the servers as an account of their own).
func chownLike(path string, info fs.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give %s back to its owner: %w", path, err)
	}
	return nil
}
