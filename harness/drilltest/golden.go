package drilltest

import (
	"fmt"
	"os"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// UpdateGoldenEnv names the environment variable that, set to 1, makes ExpectGolden rewrite the
// golden files it compares with.
const UpdateGoldenEnv = "PGDRILL_UPDATE_GOLDEN"

// rewritten lists the golden files the running spec rewrote, reported together when it ends.
// Specs of one process run one at a time, so one list is enough.
var rewritten []string

// ExpectGolden compares got with the golden file at path, byte for byte. With
// PGDRILL_UPDATE_GOLDEN=1 it writes got to path instead and fails the spec when the spec ends
// (after every golden file it compares has been rewritten, so one run updates them all): a
// rewritten golden file is a change to review with git diff, and a run that compared output
// with itself proves nothing, so it must never be a green one. Run again without the variable
// to compare.
func ExpectGolden(path string, got []byte) {
	ginkgo.GinkgoHelper()
	if os.Getenv(UpdateGoldenEnv) == "1" {
		gomega.Expect(os.WriteFile(path, got, 0o644)).To(gomega.Succeed())
		if len(rewritten) == 0 {
			ginkgo.DeferCleanup(failRewritten)
		}
		rewritten = append(rewritten, path)
		return
	}
	want, err := os.ReadFile(path)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "no golden file %s: run with %s=1 to create it, review it, and run again without", path, UpdateGoldenEnv)
	gomega.Expect(string(got)).To(gomega.Equal(string(want)),
		"%s differs from its golden file; if the change is intended, run with %s=1, review the diff and run again without", path, UpdateGoldenEnv)
}

// failRewritten fails the spec that rewrote golden files, naming them.
func failRewritten() {
	paths := rewritten
	rewritten = nil
	noun := "golden file"
	if len(paths) > 1 {
		noun = "golden files"
	}
	ginkgo.Fail(fmt.Sprintf("%s %s rewritten; review the diff and run again without %s", noun, strings.Join(paths, ", "), UpdateGoldenEnv))
}
