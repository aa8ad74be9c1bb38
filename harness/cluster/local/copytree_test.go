package local_test

import (
	"bytes"
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
)

var _ = Describe("copying a data directory", func() {
	// tree writes a source tree: a file bigger than one copy chunk (so workers share it), small
	// and empty files, modes of its own, a nested directory and a symbolic link.
	tree := func() string {
		src := filepath.Join(GinkgoT().TempDir(), "src")
		Expect(os.MkdirAll(filepath.Join(src, "base", "5"), 0o700)).To(Succeed())
		big := make([]byte, 64<<20+12345)
		_, _ = rand.NewChaCha8([32]byte{1}).Read(big)
		Expect(os.WriteFile(filepath.Join(src, "base", "5", "16384"), big, 0o600)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(src, "PG_VERSION"), []byte("15\n"), 0o640)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(src, "base", "empty"), nil, 0o600)).To(Succeed())
		Expect(os.Chmod(filepath.Join(src, "base"), 0o750)).To(Succeed())
		Expect(os.Symlink("/elsewhere/tablespace", filepath.Join(src, "base", "link"))).To(Succeed())
		return src
	}
	// sameTree expects dst to hold what src holds: the same names, types, modes, owners,
	// contents and link targets.
	sameTree := func(src, dst string) {
		GinkgoHelper()
		var seen int
		Expect(filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			Expect(err).NotTo(HaveOccurred())
			rel, _ := filepath.Rel(src, path)
			to := filepath.Join(dst, rel)
			want, err := os.Lstat(path)
			Expect(err).NotTo(HaveOccurred())
			got, err := os.Lstat(to)
			Expect(err).NotTo(HaveOccurred(), rel)
			Expect(got.Mode()).To(Equal(want.Mode()), rel)
			Expect(got.Sys().(*syscall.Stat_t).Uid).To(Equal(want.Sys().(*syscall.Stat_t).Uid), rel)
			switch {
			case want.Mode()&fs.ModeSymlink != 0:
				Expect(os.Readlink(to)).To(Equal("/elsewhere/tablespace"))
			case want.Mode().IsRegular():
				a, _ := os.ReadFile(path)
				b, err := os.ReadFile(to)
				Expect(err).NotTo(HaveOccurred())
				Expect(bytes.Equal(a, b)).To(BeTrue(), "%s holds the same bytes", rel)
			}
			seen++
			return nil
		})).To(Succeed())
		Expect(seen).To(Equal(7))
	}

	It("copies files, modes, owners and links exactly, into a new directory or an empty one", func(ctx context.Context) {
		src := tree()
		dst := filepath.Join(GinkgoT().TempDir(), "dst")
		Expect(local.CopyTree(ctx, src, dst)).To(Succeed())
		sameTree(src, dst)

		mounted := GinkgoT().TempDir() // a filesystem of its own is an empty directory already there
		Expect(local.CopyTree(ctx, src, mounted)).To(Succeed())
		sameTree(src, mounted)
	})

	It("refuses a destination that holds anything, and a source with what it cannot copy", func(ctx context.Context) {
		src := tree()
		dst := filepath.Join(GinkgoT().TempDir(), "dst")
		Expect(local.CopyTree(ctx, src, dst)).To(Succeed())
		Expect(local.CopyTree(ctx, src, dst)).To(MatchError(ContainSubstring("destination " + dst + " exists")))

		Expect(syscall.Mkfifo(filepath.Join(src, "base", "fifo"), 0o600)).To(Succeed())
		Expect(local.CopyTree(ctx, src, filepath.Join(GinkgoT().TempDir(), "other"))).To(
			MatchError(ContainSubstring("fifo is neither a file, a directory nor a symbolic link")))
	})
})
