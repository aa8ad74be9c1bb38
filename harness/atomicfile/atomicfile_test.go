package atomicfile_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/atomicfile"
)

var _ = Describe("Write", func() {
	It("replaces a file whole, with the asked mode, and leaves no temporary file", func() {
		dir := GinkgoT().TempDir()
		path := filepath.Join(dir, "state.json")
		Expect(atomicfile.Write(path, []byte("old"), 0o600)).To(Succeed())
		Expect(atomicfile.Write(path, []byte("new"), 0o640)).To(Succeed())
		Expect(os.ReadFile(path)).To(Equal([]byte("new")))
		st, err := os.Stat(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o640)))
		entries, err := os.ReadDir(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(HaveLen(1))
	})

	It("fails, changing nothing, when the directory is missing", func() {
		path := filepath.Join(GinkgoT().TempDir(), "missing", "state.json")
		Expect(atomicfile.Write(path, []byte("x"), 0o600)).To(MatchError(ContainSubstring("missing")))
		Expect(path).NotTo(BeAnExistingFile())
	})
})
