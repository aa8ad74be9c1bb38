package exitcode_test

import (
	"errors"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/exitcode"
)

var _ = Describe("exit codes", func() {
	It("keeps the innermost code through wrapping", func() {
		inner := exitcode.With(errors.New("bad objective"), exitcode.InvalidInput)
		outer := exitcode.With(fmt.Errorf("load scenario: %w", inner), exitcode.HarnessError)
		Expect(exitcode.Of(outer)).To(Equal(exitcode.InvalidInput))
		Expect(outer).To(MatchError(ContainSubstring("load scenario: bad objective")))
	})

	It("treats an unclassified error as the harness's fault, never as a drill verdict", func() {
		Expect(exitcode.Of(errors.New("boom"))).To(Equal(exitcode.HarnessError))
		Expect(exitcode.Of(nil)).To(Equal(exitcode.OK))
		Expect(exitcode.With(nil, exitcode.ObjectivesMissed)).To(Succeed())
	})

	It("documents every code", func() {
		for _, c := range []exitcode.Code{exitcode.OK, exitcode.ObjectivesMissed, exitcode.InvalidInput,
			exitcode.HarnessError, exitcode.Aborted, exitcode.Inconclusive} {
			Expect(exitcode.Help).To(MatchRegexp(fmt.Sprintf(`(?m)^\s+%d\s`, c)))
		}
	})
})
