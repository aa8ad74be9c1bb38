package cli

import (
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/pgdrill/pgdrill/fixtures"
)

// fillProgress returns a fill callback that draws a progress bar on stderr when it is a terminal
// (and logs each stage otherwise, so CI logs stay readable), and a function to call when the
// fill is over.
func (a *app) fillProgress(total int64) (update func(fixtures.Progress), done func()) {
	if !a.st.StderrIsTerminal {
		last := fixtures.Stage("")
		return func(p fixtures.Progress) {
			if p.Stage != last {
				last = p.Stage
				a.log.Info("fill", "stage", p.Stage, "rows", p.RowsDone, "of", p.RowsTotal)
			}
		}, func() {}
	}
	var stage atomic.Value // read by the bar's render goroutine
	stage.Store(string(fixtures.StageLoad))
	p := mpb.New(mpb.WithOutput(a.st.Stderr), mpb.WithWidth(40))
	b := p.AddBar(total,
		mpb.PrependDecorators(decor.Name("fill "),
			decor.Any(func(decor.Statistics) string { return stage.Load().(string) }, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.CountersNoUnit("%d / %d rows", decor.WCSyncSpace), decor.Percentage(decor.WCSyncSpace)))
	return func(pr fixtures.Progress) {
			stage.Store(string(pr.Stage))
			b.SetCurrent(pr.RowsDone)
		}, func() {
			b.SetTotal(-1, true)
			p.Wait()
		}
}
