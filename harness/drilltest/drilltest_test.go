package drilltest

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
)

// The specs are in the package, with Ginkgo imported by name: its RunSpecs is this package's.

// skipped is the report of a spec NeedTool skipped for reason.
func skipped(reason string) types.SpecReport {
	return types.SpecReport{State: types.SpecStateSkipped,
		ReportEntries: types.ReportEntries{{Name: notRunEntry, Value: types.WrapEntryValue(reason)}}}
}

var _ = ginkgo.Describe("the closing \"not run, because\" line", func() {
	const chromium, pgbackrest = "chromium is not installed (apt-get install chromium)", "pgbackrest is not installed (apt-get install pgbackrest)"

	ginkgo.DescribeTable("counts the specs NeedTool skipped, by reason, and nothing else",
		func(specs []types.SpecReport, want string) {
			Expect(notRunLine(types.Report{SpecReports: specs})).To(Equal(want))
		},
		ginkgo.Entry("nothing skipped: no line", []types.SpecReport{{State: types.SpecStatePassed}}, ""),
		ginkgo.Entry("a spec skipped otherwise (a label, Skip) is not counted",
			[]types.SpecReport{{State: types.SpecStateSkipped}, {State: types.SpecStateSkipped, ReportEntries: types.ReportEntries{{Name: "screenshot"}}}}, ""),
		ginkgo.Entry("one spec, singular", []types.SpecReport{skipped(chromium)}, "not run, because: "+chromium+": 1 spec"),
		ginkgo.Entry("reasons in order, each counted",
			[]types.SpecReport{skipped(pgbackrest), skipped(chromium), {State: types.SpecStatePassed}, skipped(chromium)},
			"not run, because: "+chromium+": 2 specs; "+pgbackrest+": 1 spec"),
		ginkgo.Entry("a spec that failed after all (CI) is not listed as not run",
			[]types.SpecReport{{State: types.SpecStateFailed, ReportEntries: skipped(chromium).ReportEntries}}, ""),
	)
})

var _ = ginkgo.Describe("NeedTool", func() {
	ginkgo.It("returns the path of a program on PATH", func() {
		want, err := exec.LookPath("sh")
		Expect(err).NotTo(HaveOccurred())
		Expect(NeedTool("sh", "apt-get install dash", "nothing could run")).To(Equal(want))
	})
})

var _ = ginkgo.Describe("ExpectGolden", func() {
	var path string
	ginkgo.BeforeEach(func() {
		path = filepath.Join(ginkgo.GinkgoT().TempDir(), "x.golden")
		Expect(os.WriteFile(path, []byte("want\n"), 0o644)).To(Succeed())
	})

	ginkgo.It("passes output equal to the golden file", func() {
		Expect(InterceptGomegaFailures(func() { ExpectGolden(path, []byte("want\n")) })).To(BeEmpty())
	})

	ginkgo.DescribeTable("fails, naming the file and how to update it",
		func(got string, remove bool, why string) {
			if remove {
				Expect(os.Remove(path)).To(Succeed())
			}
			failures := InterceptGomegaFailures(func() { ExpectGolden(path, []byte(got)) })
			Expect(failures).NotTo(BeEmpty())
			Expect(failures[0]).To(And(ContainSubstring(why), ContainSubstring(path), ContainSubstring(UpdateGoldenEnv+"=1")))
		},
		ginkgo.Entry("when the output differs, if only by a trailing newline", "want", false, "differs from its golden file"),
		ginkgo.Entry("when there is no golden file", "want\n", true, "no golden file"),
	)
})
