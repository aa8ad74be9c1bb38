package drilltest

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
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
	reason := fmt.Sprintf("%s is not installed (%s)", program, install)
	if os.Getenv(CIEnv) != "" {
		ginkgo.Fail(fmt.Sprintf("%s and %s is set, so this spec fails instead of skipping: %s", reason, CIEnv, why))
	}
	ginkgo.AddReportEntry(notRunEntry, reason, ginkgo.ReportEntryVisibilityNever)
	ginkgo.Skip(reason + ": " + why)
	return ""
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
