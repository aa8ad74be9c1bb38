package drilltest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/pgdrill/pgdrill/harness/image"
)

// CIEnv is the environment variable CI services set. Where it is set, a spec that needs a tool
// the machine lacks fails instead of skipping: CI is where every spec must run.
const CIEnv = "CI"

// notRunEntry names the report entry NeedTool leaves on a spec it skips; the suite's closing
// "not run, because" line counts them.
const notRunEntry = "not run, because"

// NeedTool returns the path of program, which the calling spec needs, found on PATH. When it is
// missing the spec cannot test what it is for, and how that ends depends on where it runs:
//
//   - with CI set, the spec fails, naming the program and install (e.g. "apt-get install
//     chromium"): a CI machine without it would otherwise go green having tested nothing;
//   - elsewhere, the spec is skipped, and RunSpecs ends the suite with one line counting such
//     specs by reason ("not run, because: chromium is not installed (apt-get install
//     chromium): 4 specs"), so that a local run says what it left untested instead of skipping
//     silently.
//
// why says what goes untested without the program, e.g. "the scorecard was not opened in a
// browser".
func NeedTool(program, install, why string) string {
	ginkgo.GinkgoHelper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	notRun(fmt.Sprintf("%s is not installed (%s)", program, install), why)
	return ""
}

// NeedImage makes sure the Docker engine holds the image tag, which the calling spec runs, built
// from this pgdrill's recipe; where it does not, the spec fails in CI and is skipped elsewhere,
// as NeedTool's are. build says how to make it (e.g. "pgdrill image build").
func NeedImage(ctx context.Context, tag, build, why string) {
	ginkgo.GinkgoHelper()
	spec := image.DefaultSpec()
	spec.Tag = tag
	st, err := image.Inspect(ctx, spec)
	switch {
	case err != nil:
		notRun(fmt.Sprintf("no Docker engine answers (%v)", err), why)
	case !st.Present:
		notRun(fmt.Sprintf("image %s is not built (%s)", tag, build), why)
	case !st.Current:
		notRun(fmt.Sprintf("image %s is from another recipe (%s)", tag, build), why)
	}
}

// notRun fails the calling spec in CI, or skips it elsewhere with reason counted in the suite's
// "not run, because" line; why says what goes untested.
func notRun(reason, why string) {
	ginkgo.GinkgoHelper()
	if os.Getenv(CIEnv) != "" {
		ginkgo.Fail(fmt.Sprintf("%s and %s is set, so this spec fails instead of skipping: %s", reason, CIEnv, why))
	}
	ginkgo.AddReportEntry(notRunEntry, reason, ginkgo.ReportEntryVisibilityNever)
	ginkgo.Skip(reason + ": " + why)
}

// notRunLine is the suite's closing line: the specs NeedTool skipped, counted by reason, the
// reasons in order; empty when NeedTool skipped none.
func notRunLine(r types.Report) string {
	counts := map[string]int{}
	for _, s := range r.SpecReports {
		if s.State != types.SpecStateSkipped {
			continue
		}
		for _, e := range s.ReportEntries {
			if e.Name == notRunEntry {
				counts[e.Value.String()]++
				break
			}
		}
	}
	if len(counts) == 0 {
		return ""
	}
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(counts)) {
		noun := "specs"
		if counts[reason] == 1 {
			noun = "spec"
		}
		parts = append(parts, fmt.Sprintf("%s: %d %s", reason, counts[reason], noun))
	}
	return notRunEntry + ": " + strings.Join(parts, "; ")
}
