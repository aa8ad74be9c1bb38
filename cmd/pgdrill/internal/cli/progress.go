package cli

import (
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/pgdrill/pgdrill/harness/drill"
)

// fillProgress returns a fill callback that draws a progress bar on stderr when it is a terminal
// (and logs each stage otherwise, so CI logs stay readable), and a function to call when the
// fill is over.
func (a *app) fillProgress(total int64) (update func(drill.FillProgress), done func()) {
	if !a.st.StderrIsTerminal {
		last := drill.FillStage("")
		return func(p drill.FillProgress) {
			if p.Stage != last {
				last = p.Stage
				a.log.Info("fill", "stage", p.Stage, "rows", p.RowsDone, "of", p.RowsTotal)
			}
		}, func() {}
	}
	var stage atomic.Value // read by the bar's render goroutine
	stage.Store(string(drill.FillStageLoad))
	p := mpb.New(mpb.WithOutput(a.st.Stderr), mpb.WithWidth(40))
	b := p.AddBar(total,
		mpb.PrependDecorators(decor.Name("fill "),
			decor.Any(func(decor.Statistics) string { return stage.Load().(string) }, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.CountersNoUnit("%d / %d rows", decor.WCSyncSpace), decor.Percentage(decor.WCSyncSpace)))
	return func(pr drill.FillProgress) {
			stage.Store(string(pr.Stage))
			b.SetCurrent(pr.RowsDone)
		}, func() {
			b.SetTotal(-1, true)
			p.Wait()
		}
}
